/**
 * The HTTP load balancer. Every agent proxies for the whole cluster from its local replica: the
 * route table is rebuilt from the store's change feed and swapped atomically (no reloads), so a
 * request is routed by the table it arrived on and a removed instance drains.
 *
 * - Routes by Host (`berth.http.host`, case and port ignored), path prefix (`berth.http.path`,
 *   longest wins, on any host when no host is given) and `SERVICE.<edge-domain>`.
 * - Balancing per service by instance meta `berth.lb`: `round_robin` (default, smooth weighted
 *   as in nginx), `least_conn`, `p2c`; `berth.weight` weights, 0 takes an instance out.
 * - HTTP/1.1 and 1.0 clients with keep-alive and pipelining, parsed by llhttp (the parser of
 *   `node:http`, driven directly: `ClientConn`), 400/431/408/417 for bad, oversized, slow or
 *   unmet-expectation requests; pooled keep-alive upstream connections spoken to by the proxy's
 *   own strict client (`ResponseParser`: a malformed response is a 502, never a desynchronised
 *   connection). Neither side uses `node:http`'s server or `http.request`: together they cost
 *   about as much CPU as the proxying itself.
 * - `X-Forwarded-For` (appended), `-Proto`, `-Host`; hop-by-hop headers stripped; WebSocket
 *   and other `Upgrade` requests tunnelled.
 * - Per service `berth.http.proto`: `http1` (default), or `h2c` / `grpc`: pooled HTTP/2
 *   cleartext sessions to the instances (h2c_sessions.ts, h2c_upstream.ts), trailers passed on,
 *   gRPC statuses for the proxy's own errors on gRPC requests (grpc_status.ts).
 * - Retries another instance after a connection failure (and after a reset when no body was
 *   sent and the method is idempotent); instances failing 3 times in a row are ejected for a
 *   while (local only). Plain-text answers say why: 404 no route, 503 no healthy instance,
 *   502 bad gateway, 504 gateway timeout, 413 body too large.
 * - TCP routes: for each `berth.tcp.port=N` the proxy listens on N (on `tcpHost`, default the
 *   host of `listen`) and relays connections to the service's instances; listeners open and
 *   close with the routes. The proxy binds its own port first; a route port that is one of
 *   `reserved` (the agent's own listeners), is claimed by another service or cannot be bound is
 *   refused with one log line and listed as failed by `report()` (for `/v1/berth/routes`).
 * - UDP routes: for each `berth.udp.port=N` of instances tagged `udp`, datagrams on UDP port N
 *   are balanced per client flow (udp_proxy.ts; `udpHost`, null in proxy workers: the main
 *   thread serves them).
 * - PROXY protocol v1/v2: read on every listener from `proxyProtocolFrom` sources
 *   (proxy_protocol_in.ts), sent to instances of services with `berth.proxy-protocol`
 *   (proxy_protocol_out.ts); parse and build in proxy_protocol.ts.
 *
 * Options (ProxyOptions; every limit has a default): `source` (the store, or a worker's replica), `listen`, `edgeDomain`,
 * `retriesMax` 2, `connectTimeoutMs` 5000, `responseTimeoutMs` 60000, `headersTimeoutMs`
 * 10000, `requestTimeoutMs` 300000, `streamIdleTimeoutMs` 60000, `keepAliveTimeoutMs` 5000,
 * `connectionsMax` 10000, `headerBytesMax` 16 KiB, `bodyBytesMax` 1 GiB, `tunnelIdleTimeoutMs`
 * 1 h, `socketsMax` 256 per instance, `freeSocketsMax` 256, `idleTimeoutMs` 4000, `failuresMax`
 * 3, `ejectMs` 10000 (doubling up to `ejectMsMax` 120000), `drainMs` 30000, `tcpHost` (null: no
 * TCP routes), `reserved`, `log`, `now`, `random`. The client (headers, request, keep-alive), response and
 * stream-idle timeouts share one coarse tick (a tenth of the shortest, at most 1 s) instead of a
 * timer per request: they fire up to two ticks late, never early.
 *
 * @example
 * ```ts
 * const proxy = new HttpProxy({
 *   source: store,
 *   listen: { host: "0.0.0.0", port: 80 },
 *   edgeDomain: "edge.example.com.",
 * });
 * await proxy.start();
 * // curl -H 'Host: web.edge.example.com' http://127.0.0.1/   → an instance of service "web"
 * await proxy.close();
 * ```
 *
 * @module
 */
export {
  Balancer,
  LB_META_KEY,
  LB_POLICIES,
  type LbPolicy,
  parseLbPolicy,
  type Target,
} from "./balancer.ts";
export {
  buildRouteTable,
  normalizeHost,
  RouteTable,
  type RouteTableOptions,
  type ServiceRoute,
} from "./routes.ts";
export { HttpProxy, type ProxyOptions, type RoutesReport } from "./http_proxy.ts";
export { type ConnInfo, type DispatchSink, PLAIN_CONN } from "./conn_info.ts";
export {
  type AcmeTlsAlpnHook,
  type H2Frontend,
  HttpsListener,
  type ProxyTlsOptions,
} from "./https_listener.ts";
export { type ServedCert, SniIndex } from "./sni_index.ts";
export { ServedCerts } from "./served_certs.ts";
export { type ReservedListener, type TcpRouteInfo } from "./tcp_proxy.ts";
export { trustedSources } from "./proxy_protocol_in.ts";
export { requestIdSources } from "./request_id.ts";
export { type UdpRouteInfo } from "./udp_proxy.ts";
export { type UpstreamPoolOptions } from "./upstream_pool.ts";
