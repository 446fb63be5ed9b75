/**
 * One client request while the HTTP proxy forwards it (`Exchange`, across retries), and the
 * plain-text answers and errors its parts share.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Target } from "./balancer.ts";
import type { ClientRequest, ResponseSink } from "./client_conn.ts";
import type { ConnInfo } from "./conn_info.ts";
import type { ServiceRoute } from "./routes.ts";

/** Methods a request may be retried with after the target got it (RFC 9110 §9.2.2). */
export const IDEMPOTENT: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

/** Answers with a short plain-text body (or cuts the client off if headers went out). */
export function sendPlain(res: ResponseSink, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(text + "\n");
  res.writeHead(status, "", [
    "content-type",
    "text/plain; charset=utf-8",
    "content-length",
    String(body.length),
  ]);
  res.end(body);
}

/** A timeout the proxy imposed, told apart from socket errors. */
export class TimeoutError extends Error {
  constructor(readonly code: "ECONNECTTIMEOUT" | "ERESPONSETIMEOUT") {
    super(code);
  }
}

/** One client request while it is being forwarded, across retries. */
export interface Exchange {
  req: ClientRequest;
  res: ResponseSink;
  /** How the client connected (plain or TLS). */
  conn: ConnInfo;
  route: ServiceRoute;
  /** End-to-end request headers for the target, [name, value, …]. */
  headers: string[];
  /** The client's Host header, if it sent one. */
  host: string | undefined;
  contentLength: string | undefined;
  withBody: boolean;
  tried: Target[];
  attempts: number;
  /** A reused connection was found closed and the request went again on a new one. */
  staleRetried: boolean;
  /** The body began streaming to a target: no retry is possible any more. */
  bodyStarted: boolean;
  /** The try in flight (an `Attempt`), which the proxy aborts when the client goes away. */
  current: { abort(): void } | null;
}
