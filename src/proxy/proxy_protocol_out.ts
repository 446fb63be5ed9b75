/**
 * PROXY protocol to instances (`berth.proxy-protocol=v1|v2`; README "PROXY protocol"): the
 * header each connection to an instance of such a service starts with, naming the client's
 * address and port (the declared ones when the client came through a trusted balancer,
 * proxy_protocol_in.ts) and the proxy address it connected to.
 *
 * - TCP routes and upgrades (WebSocket): one header per relayed connection, before its bytes.
 * - HTTP/1.1 routes: a pooled connection that began with a header speaks for that client
 *   connection only (`PrivateConn`): it is reused only for requests whose header would be the
 *   same (client address and port, and the address and port it connected to: in effect the
 *   same client connection, as HAProxy keeps a private server connection to its session), never
 *   lent to another's. While idle it holds no slot of the instance's (upstream_pool.ts closes
 *   it when another request needs the slot).
 * - h2c and gRPC routes: the same `PrivateConn` names HTTP/2 sessions private to the client
 *   connection (h2c_sessions.ts): its streams share them, no other client's do, and they close
 *   when it closes.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { parseProxyProtocol, PROXY_PROTOCOL_KEY } from "../store/mod.ts";
import { buildProxyHeader } from "./proxy_protocol.ts";
import type { ConnEnds } from "./proxy_protocol_in.ts";
import { readSetting, type RoutePart } from "./route_settings.ts";
import type { ServiceRoute } from "./routes.ts";

/** A route's PROXY protocol version; null: none (a value it cannot read: none). */
const PROXY_OUT_PART: RoutePart<1 | 2 | null> = {
  name: "proxy-protocol",
  compile: (s) => readSetting(s, PROXY_PROTOCOL_KEY, parseProxyProtocol),
};

/** The PROXY protocol version the route's instances ask for, or null. */
export function proxyVersionOf(route: ServiceRoute): 1 | 2 | null {
  return route.settings.size === 0 ? null : route.settings.compiled(PROXY_OUT_PART);
}

/** The header for a client connection with these ends (unknown ends: UNKNOWN / UNSPEC). */
export function proxyHeaderFor(version: 1 | 2, ends: ConnEnds): Uint8Array {
  return buildProxyHeader(
    version,
    { address: ends.remoteAddress ?? "", port: ends.remotePort ?? 0 },
    { address: ends.localAddress ?? "", port: ends.localPort ?? 0 },
  );
}

/**
 * What a relayed connection (TCP route, upgrade) starts with: the PROXY header when the route
 * asks for one, then `rest`.
 */
export function proxyPreamble(
  route: ServiceRoute,
  ends: ConnEnds,
  ...rest: Uint8Array[]
): Uint8Array[] {
  const version = proxyVersionOf(route);
  return version === null ? rest : [proxyHeaderFor(version, ends), ...rest];
}

/**
 * A pooled connection that speaks for one client connection: `key` (the header's bytes: version,
 * both addresses and ports) decides which requests may reuse it, `header` is what a new one
 * starts with.
 */
export interface PrivateConn {
  readonly key: string;
  readonly header: Uint8Array;
}

/** The private connection a request of `ends` needs on `route`, or undefined (a shared one). */
export function privateConnFor(route: ServiceRoute, ends: ConnEnds): PrivateConn | undefined {
  const version = proxyVersionOf(route);
  if (version === null) return undefined;
  const header = proxyHeaderFor(version, ends);
  return {
    key: Buffer.from(header.buffer, header.byteOffset, header.length).toString("latin1"),
    header,
  };
}
