/**
 * The proxy's own errors for gRPC requests: instead of a plain-text 502/503/504 body (which a
 * gRPC client can only report as "unexpected HTTP status"), a response with status 200,
 * `content-type: application/grpc`, no message, and `grpc-status` with a percent-encoded
 * `grpc-message` in its trailers (HTTP/2 clients) or its headers (trailers-only, HTTP/1.1).
 *
 * A request gets gRPC errors when its route is `berth.http.proto=grpc` or its content type is
 * `application/grpc` (with or without `+proto`, `+json`, …); one no route matches, by its
 * content type alone (12 UNIMPLEMENTED: a gRPC client reads a plain-text body as a message).
 *
 * @module
 */
import type { ResponseSink } from "./client_conn.ts";
import { sendPlain } from "./exchange.ts";
import type { ServiceRoute } from "./routes.ts";

/** gRPC status codes the proxy answers with. */
export const GRPC_DEADLINE_EXCEEDED = 4;
export const GRPC_UNIMPLEMENTED = 12;
export const GRPC_INTERNAL = 13;
export const GRPC_UNAVAILABLE = 14;

/** Whether a raw header list [name, value, …] has an `application/grpc*` content type. */
export function hasGrpcContentType(raw: readonly string[]): boolean {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 12 || name.toLowerCase() !== "content-type") continue;
    return raw[i + 1]!.trimStart().toLowerCase().startsWith("application/grpc");
  }
  return false;
}

/** Whether the proxy's errors for this request are gRPC statuses (module doc). */
export function wantsGrpcErrors(route: ServiceRoute, raw: readonly string[]): boolean {
  return route.proto === "grpc" || hasGrpcContentType(raw);
}

/**
 * `grpc-message` text: bytes outside printable ASCII, and `%`, percent-encoded as UTF-8
 * (gRPC over HTTP/2).
 */
export function encodeGrpcMessage(text: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25
      ? String.fromCharCode(byte)
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The gRPC status a proxy error with this HTTP status stands for (404: no route). */
export function grpcStatusFor(httpStatus: number): number {
  if (httpStatus === 404) return GRPC_UNIMPLEMENTED;
  if (httpStatus === 504) return GRPC_DEADLINE_EXCEEDED;
  if (httpStatus === 502 || httpStatus === 503) return GRPC_UNAVAILABLE;
  return GRPC_INTERNAL;
}

/**
 * Ends a gRPC call with `code`. To a sink that can send trailers (HTTP/2): response headers, no
 * message, `grpc-status` in the trailers; clients read the status only from a HEADERS frame
 * that ends the stream, and a sink's headers go out before it knows whether a body follows.
 * To any other sink (HTTP/1.1): a trailers-only response, the status in the headers. Once the
 * headers went out: trailers, or the client is cut off (which it reports as an error).
 */
export function sendGrpcStatus(res: ResponseSink, code: number, text: string): void {
  if (res.destroyed || res.writableEnded) return;
  const status = ["grpc-status", String(code), "grpc-message", encodeGrpcMessage(text)];
  if (res.writeTrailers === undefined) {
    if (res.headersSent) return res.destroy();
    res.writeHead(200, "", ["content-type", "application/grpc", ...status, "content-length", "0"]);
    return res.end();
  }
  if (!res.headersSent) res.writeHead(200, "", ["content-type", "application/grpc"]);
  res.writeTrailers(status);
  res.end();
}

/**
 * An instance's trailers-only gRPC response (its one HEADERS frame carries `grpc-status` and
 * ends the stream) split for a sink that sends its headers at once (HTTP/2): the content type
 * stays in the headers and every other field moves to the trailers, where the client reads
 * the status and the trailing metadata of such a response. [name, value, …] lists.
 */
export function splitTrailersOnly(fields: readonly string[]): {
  headers: string[];
  trailers: string[];
} {
  const headers: string[] = [];
  const trailers: string[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const to = fields[i]!.toLowerCase() === "content-type" ? headers : trailers;
    to.push(fields[i]!, fields[i + 1]!);
  }
  return { headers, trailers };
}

/** Whether a header list [name, value, …] holds `grpc-status` (a trailers-only response). */
export function hasGrpcStatus(fields: readonly string[]): boolean {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i]!.toLowerCase() === "grpc-status") return true;
  }
  return false;
}

/**
 * Answers a proxy error: `status` with `text` as plain text, or its gRPC status (trailers-only)
 * when the request wants gRPC errors.
 */
export function sendProxyError(
  res: ResponseSink,
  grpc: boolean,
  status: number,
  text: string,
): void {
  if (grpc) sendGrpcStatus(res, grpcStatusFor(status), text);
  else sendPlain(res, status, text);
}
