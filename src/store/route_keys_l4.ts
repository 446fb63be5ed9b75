/**
 * Layer-4 route settings (labels and API Meta): the PROXY protocol header sent to a service's
 * instances, and UDP routes (README "PROXY protocol", "UDP routes"). Their rows for
 * route_keys.ts and the typed parsers the proxy reads them with (pure).
 *
 * @module
 */
import type { RouteKey } from "./route_key.ts";
import { CommandError, formatMs } from "./rule_basics.ts";
import { parseDurationIn, parseIntIn } from "./route_keys_lb.ts";

export const PROXY_PROTOCOL_KEY = "berth.proxy-protocol";
export const UDP_PORT_KEY = "berth.udp.port";
export const UDP_IDLE_TIMEOUT_KEY = "berth.udp.idle-timeout";

/** A UDP flow with no datagram either way for this long is forgotten (default). */
export const UDP_IDLE_TIMEOUT_MS_DEFAULT = 30_000;
/** Bounds of `berth.udp.idle-timeout`. */
export const UDP_IDLE_TIMEOUT_BOUNDS = [1_000, 3_600_000] as const;

/** `v1` or `v2` (case and spaces ignored) → the PROXY protocol version. */
export function parseProxyProtocol(text: string): 1 | 2 {
  const t = text.trim().toLowerCase();
  if (t === "v1" || t === "1") return 1;
  if (t === "v2" || t === "2") return 2;
  throw new CommandError(text, "v1 or v2");
}

/** A UDP route port, 1..65535. */
export function parseUdpPort(text: string): number {
  return parseIntIn(text, 1, 65535);
}

/** A UDP flow idle timeout (`30s`, 1 s to 1 h) → ms. */
export function parseUdpIdleTimeout(text: string): number {
  return parseDurationIn(text, UDP_IDLE_TIMEOUT_BOUNDS[0], UDP_IDLE_TIMEOUT_BOUNDS[1]);
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
  {
    key: UDP_PORT_KEY,
    example: "5353",
    doc: "every proxy member listens on UDP port N and balances datagrams per client flow " +
      "over the service's instances tagged `udp`",
    onBad: "no UDP route",
    parse: (v) => String(parseUdpPort(v)),
  },
  {
    key: UDP_IDLE_TIMEOUT_KEY,
    example: "30s",
    doc: "a UDP flow silent this long is forgotten (default 30 s; 1 s to 1 h)",
    onBad: `an idle timeout of ${formatMs(UDP_IDLE_TIMEOUT_MS_DEFAULT)}`,
    parse: (v) => formatMs(parseUdpIdleTimeout(v)),
  },
];
