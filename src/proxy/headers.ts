/**
 * Header rewriting for the HTTP proxy: requests keep their end-to-end headers and gain
 * `X-Forwarded-For/-Proto/-Host`; responses lose hop-by-hop headers. Headers stay flat raw
 * [name, value, …] lists (no objects per request), read in one pass.
 *
 * @module
 */
import type { ClientRequest } from "./client_conn.ts";
import { saneRequestId } from "./request_id.ts";

// Hop-by-hop headers (RFC 9110 §7.6.1) are for one connection, never forwarded.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
  // The proxy's own server already answered `Expect: 100-continue`.
  "expect",
]);

/**
 * Headers that say what only the proxy knows (the client's scheme, host and address, the user
 * basic-auth let in, the prefix strip-prefix removed): a client's own are dropped, on ordinary
 * requests and upgrades alike. berth writes X-Forwarded-For/-Proto/-Host (and -User, -Prefix
 * where those middlewares run); `Forwarded` (RFC 7239) and `X-Real-IP` are not written, so an
 * instance that prefers them falls back to X-Forwarded-* rather than trusting what the client
 * claimed (README, "Headers").
 */
export const CLIENT_SET_BY_PROXY: ReadonlySet<string> = new Set([
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-forwarded-prefix",
  "x-forwarded-server",
  "x-forwarded-user",
  "forwarded",
  "x-real-ip",
]);

/** Names dropped from a request on its way to an instance: one lookup per header. */
const DROPPED: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...CLIENT_SET_BY_PROXY]);

/** Longer than any hop-by-hop or X-Forwarded-* name: such headers skip the name checks. */
const HOP_BY_HOP_NAME_MAX = 20;

/** LENGTHS[n] is 1 when some name of `names` has n characters (a filter before lowercasing). */
function lengthsOf(names: Iterable<string>): Uint8Array {
  const lengths = new Uint8Array(HOP_BY_HOP_NAME_MAX);
  for (const name of names) lengths[name.length] = 1;
  return lengths;
}

/** Lengths of the hop-by-hop names: a response header of another length is never lowercased. */
const HOP_BY_HOP_LENGTHS = lengthsOf(HOP_BY_HOP);

/**
 * Names listed by a Connection header value other than the hop-by-hop set itself, lower-case
 * (RFC 9110 §7.6.1); null when it names none (`keep-alive`, `close`, the common case).
 */
function connectionNamed(value: string): Set<string> | null {
  let named: Set<string> | null = null;
  for (const part of value.split(",")) {
    const name = part.trim().toLowerCase();
    if (name === "" || name === "close" || name === "keep-alive") continue;
    (named ??= new Set()).add(name);
  }
  return named;
}

/**
 * Headers a Connection header can never remove: the message's framing and its Host (naming
 * them would otherwise let a client desynchronise the proxy and the instance).
 */
const NEVER_NAMED = new Set(["content-length", "transfer-encoding", "host"]);

/** Drops the headers a Connection header named from a flat [name, value, …] list. */
function dropNamed(out: string[], named: ReadonlySet<string>): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < out.length; i += 2) {
    const lower = out[i]!.toLowerCase();
    if (!named.has(lower) || NEVER_NAMED.has(lower)) kept.push(out[i]!, out[i + 1]!);
  }
  return kept;
}

/**
 * A response's headers as a flat [name, value, …] list for `writeHead`, without hop-by-hop
 * headers nor those its Connection header names. Raw names and repeats are kept as sent. With
 * `requestId`, the response says `X-Request-Id: requestId` (in place of any the instance sent).
 */
export function responseHeaders(raw: readonly string[], requestId?: string): string[] {
  const out: string[] = [];
  let connection: string | null = null;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const n = name.length;
    const lower = n < HOP_BY_HOP_NAME_MAX && HOP_BY_HOP_LENGTHS[n] === 1 ? name.toLowerCase() : "";
    if (lower !== "" && HOP_BY_HOP.has(lower)) {
      if (lower === "connection") connection = raw[i + 1]!;
      continue;
    }
    if (requestId !== undefined && isRequestIdName(name)) continue;
    out.push(name, raw[i + 1]!);
  }
  if (requestId !== undefined) out.push("x-request-id", requestId);
  const named = connection === null ? null : connectionNamed(connection);
  return named === null ? out : dropNamed(out, named);
}

/** `X-Request-Id` in any case (the first letter tested before any lowercasing). */
function isRequestIdName(name: string): boolean {
  return name.length === 12 && (name.charCodeAt(0) | 32) === 120 &&
    name.toLowerCase() === "x-request-id";
}

/** What the proxy needs from a request's headers, read in one pass over `rawHeaders`. */
export interface RequestHead {
  /** The first Host header (as the route was matched), or undefined. */
  host: string | undefined;
  contentLength: string | undefined;
  chunked: boolean;
  /**
   * End-to-end headers for the target, X-Forwarded-* included, as [name, value, …]; never
   * Content-Length nor Transfer-Encoding (the proxy writes the framing itself), nor
   * X-Request-Id (the proxy appends the one it settles on).
   */
  headers: string[];
  /** The client's first sane X-Request-Id (request_id.ts), if any. */
  requestId: string | undefined;
}

/**
 * Reads a request's raw headers: keeps the end-to-end ones (dropping hop-by-hop headers, those
 * Connection names, extra Host headers, X-Request-Id (returned apart) and the client's
 * X-Forwarded-Proto/-Host, Forwarded and X-Real-IP: `CLIENT_SET_BY_PROXY`), and appends
 * `X-Forwarded-For` (the client's list plus its address), `-Proto` (https when `secure`) and
 * `-Host`.
 */
export function readRequestHead(req: ClientRequest, secure: boolean): RequestHead {
  const raw = req.rawHeaders;
  const out: string[] = [];
  let host: string | undefined;
  let contentLength: string | undefined;
  let chunked = false;
  let connection: string | null = null;
  let forwardedFor: string | undefined;
  let requestId: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    // Every header the proxy looks at has a short name; longer ones pass through unread.
    if (name.length >= HOP_BY_HOP_NAME_MAX) {
      out.push(name, value);
      continue;
    }
    const lower = name.toLowerCase();
    switch (lower) {
      case "host":
        if (host !== undefined) continue;
        host = value;
        break;
      case "content-length":
        contentLength ??= value;
        continue;
      case "transfer-encoding":
        chunked = true;
        continue;
      case "connection":
        connection = connection === null ? value : `${connection}, ${value}`;
        continue;
      case "x-forwarded-for":
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      case "x-request-id":
        if (requestId === undefined && saneRequestId(value)) requestId = value;
        continue;
      default:
        if (DROPPED.has(lower)) continue;
    }
    out.push(name, value);
  }
  const named = connection === null ? null : connectionNamed(connection);
  const headers = named === null ? out : dropNamed(out, named);
  const ip = req.remoteAddress;
  headers.push("x-forwarded-for", forwardedFor ? `${forwardedFor}, ${ip}` : ip);
  headers.push("x-forwarded-proto", secure ? "https" : "http");
  if (host !== undefined) headers.push("x-forwarded-host", host);
  return { host, contentLength, chunked, headers, requestId };
}
