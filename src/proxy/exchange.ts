/**
 * One client request while the HTTP proxy forwards it (`Exchange`, across retries), and the
 * plain-text answers and errors its parts share.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Target } from "./balancer.ts";
import type { ClientRequest, RequestBody, ResponseSink } from "./client_conn.ts";
import type { ConnInfo } from "./conn_info.ts";
import type { PathRoute, ServiceRoute } from "./routes.ts";

/** Methods a request may be retried with after the target got it (RFC 9110 §9.2.2). */
export const IDEMPOTENT: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

/**
 * Answers with a short plain-text body and any `headers` [name, value, …] (or cuts the client
 * off if headers went out).
 */
export function sendPlain(
  res: ResponseSink,
  status: number,
  text: string,
  headers: readonly string[] = [],
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(text + "\n");
  res.writeHead(status, "", [
    ...headers,
    "content-type",
    "text/plain; charset=utf-8",
    "content-length",
    String(body.length),
  ]);
  res.end(body);
}

/** The proxy's own answer to an exchange, with its X-Request-Id. */
export function answer(x: Exchange, status: number, text: string): void {
  sendPlain(x.res, status, text, ["x-request-id", x.requestId]);
}

/** An answer the proxy gives itself instead of forwarding (404, 503, a redirect, …). */
export interface PlainAnswer {
  status: number;
  text: string;
  /** Extra response headers, [name, value, …]. */
  headers?: readonly string[];
  /** The service the request matched, if any (a 503 for a gRPC route is answered as gRPC). */
  route?: ServiceRoute;
  /** The route (host and prefix) the request matched, if any (for its record). */
  path?: PathRoute;
}

/** A timeout the proxy imposed, told apart from socket errors. */
export class TimeoutError extends Error {
  constructor(readonly code: "ECONNECTTIMEOUT" | "ERESPONSETIMEOUT") {
    super(code);
  }
}

/**
 * One client request while it is being forwarded, across retries. It is also the request's
 * `RequestState` (middleware/pipeline.ts) as the route's middlewares see it.
 */
export interface Exchange {
  readonly req: ClientRequest;
  res: ResponseSink;
  /** How the client connected (plain or TLS). */
  readonly conn: ConnInfo;
  readonly route: ServiceRoute;
  /** Client IP (the PROXY protocol's source address when the listener trusts it). */
  readonly client: string;
  /** The client's Host header, if it sent one. */
  readonly host: string | undefined;
  /** The path prefix of the route the request matched (`/` for a route of a whole host). */
  readonly prefix: string;
  /** Path and query sent to the instance; strip-prefix/rewrite change it. */
  url: string;
  /** End-to-end request headers for the instance [name, value, …]; header middlewares edit. */
  headers: string[];
  /** The request's X-Request-Id (the client's when sane, else generated: request_id.ts). */
  readonly requestId: string;
  contentLength: string | undefined;
  withBody: boolean;
  tried: Target[];
  attempts: number;
  /** A reused connection was found closed and the request went again on a new one. */
  staleRetried: boolean;
  /** The body began streaming to a target: no retry is possible any more. */
  bodyStarted: boolean;
  /**
   * The try in flight (an `Attempt`), which the proxy aborts when the client goes away;
   * `queued`: it waits for a connection to its instance (nothing of it was sent yet).
   */
  current: { abort(): void; readonly queued?: boolean } | null;
  /** The instance whose response head went to the client (set just before it is written). */
  answeredBy?: Target;
}

/** A chunked body over `bytesMax`: 413, and the attempt under way is dropped. */
export function limitChunkedBody(body: RequestBody, x: Exchange, bytesMax: number): void {
  let bytes = 0;
  const onData = (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes <= bytesMax) return;
    body.off("data", onData);
    const res = x.res;
    res.shouldKeepAlive = false;
    // The instance got part of the body and waits for the rest: its connection must go.
    x.current?.abort();
    answer(x, 413, `request body over ${bytesMax} bytes`);
    body.destroy();
  };
  body.on("data", onData);
}
