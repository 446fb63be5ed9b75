/**
 * The per-process caps of the proxy, shared out over its worker threads: each worker's
 * HttpProxy gets 1/N of them (rounded up), so that N workers together stay near the figures
 * README gives (upstream sockets per instance, client connections, TLS handshakes). A service's
 * `berth.http.max-conns` is counted for all workers at once (conn_slots.ts); only an instance the
 * shared table has no room for is capped the same way, 1/N in each (`capShares`).
 *
 * @module
 */
import { HANDSHAKES_MAX, HANDSHAKES_PER_IP_MAX } from "../https_listener.ts";
import { CONNECTIONS_MAX } from "../proxy_options.ts";
import { UPSTREAM_FREE_SOCKETS_MAX, UPSTREAM_SOCKETS_MAX } from "../upstream_pool.ts";

/** One worker's share of the caps. */
export interface WorkerLimits {
  /** Upstream connections per instance (UpstreamPool `socketsMax`). */
  socketsMax: number;
  /** Idle upstream connections kept per instance (UpstreamPool `freeSocketsMax`). */
  freeSocketsMax: number;
  /** Client connections, HTTP and TCP routes (HttpProxy `connectionsMax`). */
  connectionsMax: number;
  /** TLS handshakes in progress (HttpsListener `handshakesMax`). */
  handshakesMax: number;
  /** TLS handshakes in progress from one address (HttpsListener `handshakesPerIpMax`). */
  handshakesPerIpMax: number;
  /** Workers dividing a `berth.http.max-conns` the shared table has no room for (`capShares`). */
  capShares: number;
}

/** The caps of one of `workers` proxy workers: each default divided by `workers`, rounded up. */
export function workerLimits(workers: number): WorkerLimits {
  const n = Math.max(1, Math.floor(workers));
  const share = (cap: number) => Math.ceil(cap / n);
  return {
    socketsMax: share(UPSTREAM_SOCKETS_MAX),
    freeSocketsMax: share(UPSTREAM_FREE_SOCKETS_MAX),
    connectionsMax: share(CONNECTIONS_MAX),
    handshakesMax: share(HANDSHAKES_MAX),
    handshakesPerIpMax: share(HANDSHAKES_PER_IP_MAX),
    capShares: n,
  };
}
