/**
 * Balancing route settings: sticky cookie, hash, timeout, retries, max-conns, slow start (owner topic: lb): their rows for route_keys.ts
 * and the typed parsers the proxy reads them with.
 *
 * @module
 */
import type { RouteKey } from "./route_key.ts";

/** Rows of the route key registry (route_keys.ts) for this topic. */
export const LB_KEYS: RouteKey[] = [];
