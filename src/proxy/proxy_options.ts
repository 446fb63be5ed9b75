/**
 * The HTTP proxy's options (http_proxy.ts `HttpProxy`), their defaults, and the report it gives
 * the routes API.
 *
 * @module
 */
import type { HostPort } from "../lib/host_port.ts";
import type { CidrList } from "../lib/cidr.ts";
import type { ProxyTlsOptions } from "./https_listener.ts";
import type { RouteSource } from "./route_feed.ts";
import type { HttpRouteInfo } from "./routes.ts";
import type { ReservedListener, TcpObserver, TcpRouteInfo } from "./tcp_proxy.ts";
import type { UdpObserver, UdpRouteInfo } from "./udp_proxy.ts";
import type { EjectedTarget, UpstreamPoolOptions } from "./upstream_pool.ts";
import type { RequestCounter, RequestObserver } from "./request_record.ts";
import type { MiddlewarePart } from "./middleware/pipeline.ts";

export const RETRIES_MAX = 2;
export const CONNECT_TIMEOUT_MS = 5_000;
export const RESPONSE_TIMEOUT_MS = 60_000;
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 300_000;
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
export const CONNECTIONS_MAX = 10_000;
export const HEADER_BYTES_MAX = 16 * 1024;
export const BODY_BYTES_MAX = 1024 * 1024 * 1024;
export const TUNNEL_IDLE_TIMEOUT_MS = 3_600_000;
export const STREAM_IDLE_TIMEOUT_MS = 60_000;

export interface ProxyOptions extends UpstreamPoolOptions {
  /**
   * The route rows and their change feed: the store on the main thread, a RouteReplica in a
   * proxy worker. A change naming `edge_certs` (the store's) also reloads the certificates.
   */
  source: RouteSource;
  /** Listen address of plain HTTP; port 0 picks a free port (see `address`); null: none. */
  listen: HostPort | null;
  /** The HTTPS listener (https_listener.ts); none when absent. */
  tls?: ProxyTlsOptions;
  /** HTTP/2 (ALPN h2) on the HTTPS listener (h2_frontend.ts). Default false; agent: true. */
  h2?: boolean;
  /**
   * The key authorization of an ACME HTTP-01 token, or null when it is not one being
   * validated; answered on the plain listener (edge_rules.ts `answeredAcme`).
   */
  acmeHttp01?: (token: string) => string | null;
  /** Each service also answers on `SERVICE.<edgeDomain>` (trailing dot optional). */
  edgeDomain: string | null;
  /** Other instances tried after a connection failure. Default 2. */
  retriesMax?: number;
  /** Connecting to a target. Default 5000. */
  connectTimeoutMs?: number;
  /** From sending a request to the target's response headers (then 504). Default 60000. */
  responseTimeoutMs?: number;
  /** A response body that stalls this long (after its headers) is cut off. Default 60000. */
  streamIdleTimeoutMs?: number;
  /** A client must send its request headers within this. Default 10000. */
  headersTimeoutMs?: number;
  /** A client must send its whole request (body included) within this. Default 300000. */
  requestTimeoutMs?: number;
  /** Idle client keep-alive connections close after this. Default 5000. */
  keepAliveTimeoutMs?: number;
  /** Client connections open at once; more are closed at once. Default 10000. */
  connectionsMax?: number;
  /** Request header bytes. Default 16 KiB. */
  headerBytesMax?: number;
  /** Request body bytes (413 above it). Default 1 GiB. */
  bodyBytesMax?: number;
  /** An upgraded (WebSocket) tunnel with no traffic either way closes after this. Default 1 h. */
  tunnelIdleTimeoutMs?: number;
  /** Random source for p2c. Default Math.random. */
  random?: () => number;
  /** Instances read per page while the route table is built (route_feed.ts). Default 2000. */
  routeSliceSize?: number;
  /**
   * Address the TCP route listeners (`berth.tcp.port`) bind; null turns TCP routes off.
   * Default: the host of `listen`.
   */
  tcpHost?: string | null;
  /**
   * Address the UDP route listeners (`berth.udp.port`) bind; null turns UDP routes off (proxy
   * workers: the main thread serves them). Default: that of the TCP routes.
   */
  udpHost?: string | null;
  /**
   * Logs route conflicts, refused TCP routes and TCP bind failures. Default `log`; proxy workers
   * other than worker 0 mute it (every worker has the same table).
   */
  routeLog?: (line: string) => void;
  /** The agent's own listeners: a TCP route on one of their ports is refused, not bound. */
  reserved?: readonly ReservedListener[];
  /**
   * Sources whose connections must start with a PROXY header (v1 or v2) on every listener
   * (plain, HTTPS, TCP routes); its client address replaces theirs (proxy_protocol_in.ts).
   * Default: none.
   */
  proxyProtocolFrom?: CidrList | null;
  /**
   * Whose sane X-Request-Id is kept: null or absent (the default), any client's; a list, only
   * clients in it (by the address `berth.http.allow` sees) or whose connection's PROXY header a
   * balancer in it sent; empty, no one's. Any other request gets a new id (request_id.ts, README
   * "X-Request-Id").
   */
  requestIdFrom?: CidrList | null;
  /**
   * Bind every listener (plain, HTTPS, TCP routes) with SO_REUSEPORT, so that several proxy
   * workers accept on one port (workers/). Default false.
   */
  reusePort?: boolean;
  /** Told of each TCP route client connection (the metrics). */
  tcpObserver?: TcpObserver;
  /** Told of each UDP route client flow (the metrics). */
  udpObserver?: UdpObserver;
  /** Told of every HTTP request routed and finished (request_record.ts). Default none. */
  observers?: RequestObserver[];
  /**
   * Counts every HTTP request (the metrics). Without `observers` no record is made: the client's
   * sink tells a `RequestMeter` (request_meter.ts); with them it is told the records too.
   * Default none.
   */
  requestMetrics?: RequestCounter;
  /** This member's node name, in request records. Default "". */
  member?: string;
  /**
   * The middlewares, in order (middleware/order.ts). Default `MIDDLEWARES`, run on the routes
   * whose settings turn them on; given (tests), they are built for every route.
   */
  middlewares?: readonly MiddlewarePart[];
}

/** The host the TCP route listeners bind (`tcpHost`, by default that of `listen` or `tls`). */
export function tcpHostOf(
  opts: Pick<ProxyOptions, "tcpHost" | "listen" | "tls">,
): string | null | undefined {
  return opts.tcpHost === undefined ? (opts.listen ?? opts.tls?.listen)?.host : opts.tcpHost;
}

/** What the routes API lists: the proxy's address, HTTP and TCP routes, clashes. */
export interface RoutesReport {
  /** The plain HTTP listener's address; null when it is off. */
  listen: string | null;
  /** The HTTPS listener's address; null when it is off. */
  https: string | null;
  http: HttpRouteInfo[];
  tcp: TcpRouteInfo[];
  /** UDP routes (served on the main thread; absent: none served here). */
  udp?: UdpRouteInfo[];
  conflicts: string[];
  /** Instances passive health skips now (with proxy workers: those of every worker). */
  ejected: EjectedTarget[];
}
