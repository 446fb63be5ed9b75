/**
 * What the HTTP proxy knows of the client connection a request came on (`ConnInfo`), and the
 * sink a request's response is written to. Every frontend (plain HTTP/1.1, HTTP/1.1 over TLS,
 * HTTP/2) hands its requests to `HttpProxy.dispatch(req, res, conn)`.
 *
 * @module
 */
import type { ResponseSink, SinkMeter } from "./client_conn.ts";

/** The client connection a request arrived on. */
export interface ConnInfo {
  /** Over TLS (the HTTPS listener): `X-Forwarded-Proto: https`, HSTS, no redirect. */
  readonly secure: boolean;
  /** The TLS server name the client sent (SNI), if any. */
  readonly servername?: string;
  /** The negotiated ALPN protocol (`h2`, `http/1.1`), if any. */
  readonly alpn?: string;
  /** The negotiated TLS version (`TLSv1.3`), if any. */
  readonly tlsVersion?: string;
  /**
   * Many requests at once (an HTTP/2 connection; this object is that connection's own): they
   * share a cap on the instance connections they hold (upstream_pool.ts `ownerSocketsMax`).
   */
  readonly multiplexed?: boolean;
}

/** A request on the plain HTTP listener. */
export const PLAIN_CONN: ConnInfo = Object.freeze({ secure: false, multiplexed: false });

/**
 * Where `dispatch` writes a response; `onAbort` is called if the client goes away first,
 * `onClientEnd` (HTTP/1.1 replies) if it half-closes first (true back: the request is
 * withdrawn). A sink with a `meter` field (the frontends' `Reply` and `H2Reply`; null until
 * set) tells the meter set there when the response is over; the proxy wraps a sink without one
 * to count it.
 */
export type DispatchSink = ResponseSink & {
  onAbort: (() => void) | null;
  onClientEnd?: (() => boolean) | null;
  meter?: SinkMeter | null;
};
