/**
 * The request target as routes match it and instances receive it (README "Request paths"):
 * the path normalized once, before routing and the middlewares, so that `/x/../admin`,
 * `//admin`, `/./admin` and `/%61dmin` all reach the `/admin` route and its access rules.
 *
 * Normalization (RFC 3986 §6.2.2), on the path only (the query is kept as sent):
 * - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, the hex digits
 *   of every other percent-encoding upper-cased;
 * - runs of `/` are merged into one;
 * - `.` and `..` segments are removed (§5.2.4).
 *
 * Refused (400), as forms an instance may read differently from the proxy: a fragment (`#`,
 * never part of a request target), a malformed percent-encoding, an encoded `/`, `\` or NUL
 * (`%2F`, `%5C`, `%00`), a raw `\`, a `..` that climbs above `/`, and a dot segment with path
 * parameters (`/..;/`, which servlet containers read as `..`).
 *
 * The Host header is checked here too (`saneHost`): a name or bracketed IPv6 address and an
 * optional port, nothing else (`www.example.com:@evil.test` would match the route and reach
 * redirects and X-Forwarded-Host as sent).
 *
 * @module
 */

/** A normalized request target, or why it is refused. */
export type NormalizedTarget = { readonly url: string } | { readonly refused: string };

/** Characters that send a path through the slow path (anything else is kept as it is). */
const SUSPECT_RE = /[%\\]|\/\/|\/\.|#/;
const HEX_RE = /^[0-9A-Fa-f]{2}$/;

/** Whether the byte `code` is an unreserved character (RFC 3986 §2.3). */
function unreserved(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) || code === 0x2d || code === 0x2e || code === 0x5f ||
    code === 0x7e;
}

/**
 * `url` (a request target) with its path normalized, or why it is refused. A target that is no
 * path (`*`, absolute form) comes back unchanged: no route matches it.
 */
export function normalizeTarget(url: string): NormalizedTarget {
  if (url.charCodeAt(0) !== 47) return { url }; // not "/": no route matches it anyway
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  if (!SUSPECT_RE.test(path) && (q < 0 || !url.includes("#", q))) return { url };
  if (url.includes("#")) return { refused: "fragment (#) in the request target" };
  // Percent-encodings first (a `%2E%2E` segment is a `..` segment), then the segments.
  let decoded = "";
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === "\\") return { refused: "backslash in the request path" };
    if (c !== "%") {
      decoded += c;
      continue;
    }
    const hex = path.slice(i + 1, i + 3);
    if (!HEX_RE.test(hex)) return { refused: "malformed percent-encoding in the request path" };
    const code = parseInt(hex, 16);
    if (code === 0x2f || code === 0x5c || code === 0) {
      return {
        refused: `encoded ${code === 0 ? "NUL" : code === 0x2f ? "/" : "\\"} (%${hex}) ` +
          "in the request path",
      };
    }
    decoded += unreserved(code) ? String.fromCharCode(code) : "%" + hex.toUpperCase();
    i += 2;
  }
  const out: string[] = [];
  const segments = decoded.split("/");
  // segments[0] is "" (the path starts with "/"); the last one decides the trailing slash.
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    if (seg === "" && !last) continue; // "//" merged
    const semi = seg.indexOf(";");
    const bare = semi < 0 ? seg : seg.slice(0, semi);
    if (semi >= 0 && (bare === "." || bare === "..")) {
      return { refused: "dot segment with parameters (;) in the request path" };
    }
    if (seg === ".") {
      if (last) out.push("");
      continue;
    }
    if (seg === "..") {
      if (out.length === 0) return { refused: "request path climbs above / (..)" };
      out.pop();
      if (last) out.push("");
      continue;
    }
    out.push(seg);
  }
  return { url: "/" + out.join("/") + (q < 0 ? "" : url.slice(q)) };
}

const HOST_RE = /^(?:[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{0,5})?$/;

/**
 * Whether a Host header (or `:authority`) is `name[:port]` or `[v6][:port]` (RFC 9110 §7.2);
 * an empty one is allowed (a target without authority).
 */
export function saneHost(host: string): boolean {
  return host === "" || HOST_RE.test(host);
}
