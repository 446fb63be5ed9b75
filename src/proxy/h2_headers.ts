/**
 * Header lists between HTTP/2 clients and the proxy's HTTP/1.1 path: a request's HTTP/2 header
 * list (pseudo-headers first) becomes the method, target and raw headers of a `ClientRequest`;
 * a response's flat [name, value, …] list becomes an HTTP/2 header list without the
 * connection-specific headers HTTP/2 forbids (RFC 9113 §8.2.2).
 *
 * @module
 */

/** What one header field costs in a header list (RFC 9113 §6.5.2: name + value + 32). */
export const FIELD_OVERHEAD_BYTES = 32;

/** A request's HTTP/2 header list as the proxy's HTTP/1.1 path takes it. */
export interface H2RequestHead {
  method: string;
  /** `:path` (origin form), or `*` for `OPTIONS *`. */
  url: string;
  /** [name, value, …]: `host` first (from `:authority`), cookies joined into one field. */
  rawHeaders: string[];
  /** The client takes trailers (`te: trailers`, the only `te` HTTP/2 allows). */
  trailers: boolean;
}

/** A request the proxy answers itself (never sent to an instance). */
export interface H2Refusal {
  status: 400 | 405 | 431;
  text: string;
}

/** The size of a header list by RFC 9113 §6.5.2 (what SETTINGS_MAX_HEADER_LIST_SIZE bounds). */
export function headerListBytes(raw: readonly string[]): number {
  let bytes = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    bytes += raw[i]!.length + raw[i + 1]!.length + FIELD_OVERHEAD_BYTES;
  }
  return bytes;
}

/**
 * Reads a request's header list ([name, value, …] as received, pseudo-headers first): refused
 * when over `headerListBytesMax` (431), for CONNECT (405: no tunnels over HTTP/2), without
 * `:authority` nor Host, or with a Host that names another authority (400: the route is chosen
 * by one name only). Cookie fields are joined with "; " (RFC 9113 §8.2.3).
 */
export function readH2RequestHead(
  raw: readonly string[],
  headerListBytesMax: number,
): H2RequestHead | H2Refusal {
  if (headerListBytes(raw) > headerListBytesMax) {
    return { status: 431, text: "request header fields too large" };
  }
  let method = "";
  let path = "";
  let authority: string | undefined;
  let host: string | undefined;
  let cookie: string | undefined;
  let trailers = false;
  const rest: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    switch (name) {
      case ":method":
        method = value;
        continue;
      case ":path":
        path = value;
        continue;
      case ":authority":
        authority = value;
        continue;
      case "host":
        if (host !== undefined) {
          return { status: 400, text: "bad request: more than one Host" };
        }
        host = value;
        continue;
      case "cookie":
        cookie = cookie === undefined ? value : `${cookie}; ${value}`;
        continue;
    }
    if (name.startsWith(":")) continue; // :scheme (the connection says it), :protocol
    if (name === "te" && value.toLowerCase() === "trailers") trailers = true;
    rest.push(name, value);
  }
  if (method === "CONNECT") return { status: 405, text: "CONNECT is not supported" };
  if (authority !== undefined && host !== undefined && !sameAuthority(authority, host)) {
    return { status: 400, text: "bad request: Host differs from :authority" };
  }
  const name = authority ?? host;
  if (name === undefined || name === "") {
    return { status: 400, text: "bad request: no :authority or Host" };
  }
  const rawHeaders = ["host", name];
  if (cookie !== undefined) rawHeaders.push("cookie", cookie);
  for (const v of rest) rawHeaders.push(v);
  return { method, url: path, rawHeaders, trailers };
}

function sameAuthority(a: string, b: string): boolean {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase();
}

/** Connection-specific headers: never in an HTTP/2 response (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "http2-settings",
]);

/** A field name (RFC 9110 §5.1: a token), lower-case. */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/** Values may hold neither CR, LF nor NUL (RFC 9110 §5.5). */
function badValue(value: string): boolean {
  return value.includes("\r") || value.includes("\n") || value.includes("\u0000");
}

/**
 * A response's or trailer section's flat [name, value, …] list as an HTTP/2 header list: names
 * lower-case (RFC 9113 §8.2.1), connection-specific headers dropped, `:status` first when
 * `status` is given. Throws on a name or value no HTTP message may carry.
 */
export function h2ResponseHeaders(status: number | null, headers: readonly string[]): string[] {
  const out: string[] = status === null ? [] : [":status", String(status)];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    const value = headers[i + 1]!;
    if (!FIELD_NAME.test(name) || badValue(value)) {
      throw new Error(`invalid header ${JSON.stringify(name.slice(0, 40))}`);
    }
    if (CONNECTION_SPECIFIC.has(name)) continue;
    out.push(name, value);
  }
  return out;
}
