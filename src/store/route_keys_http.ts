/**
 * HTTP route settings (rewrites, redirects, headers, basic auth, allow-lists; owner topic: middlewares): their rows for route_keys.ts
 * and the typed parsers the proxy reads them with.
 *
 * @module
 */
import type { RouteKey } from "./route_key.ts";

/** Rows of the route key registry (route_keys.ts) for this topic. */
export const HTTP_KEYS: RouteKey[] = [];
