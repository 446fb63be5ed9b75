/**
 * Layer-4 route settings (labels and API Meta): the PROXY protocol header sent to a service's
 * instances (README "PROXY protocol"). Their rows for
 * route_keys.ts and the typed parsers the proxy reads them with (pure).
 *
 * @module
 */
import type { RouteKey } from "./route_key.ts";
import { CommandError } from "./rule_basics.ts";

export const PROXY_PROTOCOL_KEY = "berth.proxy-protocol";

/** `v1` or `v2` (case and spaces ignored) → the PROXY protocol version. */
export function parseProxyProtocol(text: string): 1 | 2 {
  const t = text.trim().toLowerCase();
  if (t === "v1" || t === "1") return 1;
  if (t === "v2" || t === "2") return 2;
  throw new CommandError(text, "v1 or v2");
}

/** Rows of the route key registry (route_keys.ts) for this topic. */
export const L4_KEYS: RouteKey[] = [
  {
    key: PROXY_PROTOCOL_KEY,
    example: "v2",
    doc: "send a PROXY protocol header (`v1` text or `v2` binary) with the client's address " +
      "on each connection to the instances (TCP and HTTP routes)",
    onBad: "no PROXY header sent",
    parse: (v) => `v${parseProxyProtocol(v)}`,
  },
];
