/**
 * Layer-4 route settings: PROXY protocol and UDP routes (owner topic: l4): their rows for route_keys.ts
 * and the typed parsers the proxy reads them with.
 *
 * @module
 */
import type { RouteKey } from "./route_key.ts";

/** Rows of the route key registry (route_keys.ts) for this topic. */
export const L4_KEYS: RouteKey[] = [];
