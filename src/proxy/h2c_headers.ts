/**
 * The headers of an h2c / gRPC forward (h2c_upstream.ts): the request's as one HTTP/2 stream's
 * (`:authority` the client's Host, its end-to-end headers, `te: trailers` when the client asked
 * for trailers or speaks gRPC), and a response's as the flat list the client's sink takes.
 *
 * @module
 */
import type http2 from "node:http2";
import type { Target } from "./balancer.ts";
import type { Exchange } from "./exchange.ts";

/** Request headers for the stream (module doc); names lower-case, repeats as arrays. */
export function h2RequestHeaders(
  x: Exchange,
  target: Target,
  grpc: boolean,
): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {
    ":method": x.req.method,
    ":path": x.url,
    ":scheme": "http",
    ":authority": x.host ?? `${target.address}:${target.port}`,
  };
  const h = x.headers;
  for (let i = 0; i + 1 < h.length; i += 2) {
    const name = h[i]!.toLowerCase();
    if (name === "host" || name.startsWith(":")) continue;
    const prev = out[name];
    if (prev === undefined) out[name] = h[i + 1]!;
    else if (Array.isArray(prev)) prev.push(h[i + 1]!);
    else out[name] = [String(prev), h[i + 1]!];
  }
  if (x.contentLength !== undefined) out["content-length"] = x.contentLength;
  if (grpc || asksForTrailers(x.req.rawHeaders)) out.te = "trailers";
  return out;
}

/** Whether the client's TE header lists `trailers`. */
function asksForTrailers(raw: readonly string[]): boolean {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.length === 2 && raw[i]!.toLowerCase() === "te") {
      if (/(^|,)\s*trailers\s*(;|,|$)/i.test(raw[i + 1]!)) return true;
    }
  }
  return false;
}

/** An HTTP/2 header object as a flat [name, value, …] list, pseudo-headers left out. */
export function flatHeaders(h: http2.IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name of Object.keys(h)) {
    if (name.startsWith(":")) continue;
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) { for (const one of v) out.push(name, one); }
    else out.push(name, String(v));
  }
  return out;
}
