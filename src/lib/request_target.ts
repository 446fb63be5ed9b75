/**
 * A request target as `berth explain URL` takes it: `http://host/path`, `https://host/path`,
 * `host/path`, `host` or `/path`, split into the host the proxy routes by (lower case, no port,
 * no trailing dot) and the path with its query as written (the proxy normalizes it as it would a
 * request's: route_explain.ts).
 *
 * @module
 */

/** Longest target `parseTarget` reads. */
export const REQUEST_TARGET_CHARS_MAX = 2048;

export interface UrlTarget {
  /** Null: no host given (only any-host routes can match). */
  host: string | null;
  path: string;
  /** `https` for an `https://` URL, else `http` (the scheme decides TLS and redirect=https). */
  scheme?: "http" | "https";
}

/** Splits `text`; throws RangeError with one line when it cannot be a request target. */
export function parseTarget(text: string): UrlTarget {
  const t = text.trim();
  if (t === "") throw new RangeError("the URL is empty");
  if (t.length > REQUEST_TARGET_CHARS_MAX) {
    throw new RangeError(`the URL is longer than ${REQUEST_TARGET_CHARS_MAX} characters`);
  }
  if (t.startsWith("/")) return { host: null, path: t, scheme: "http" };
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(t) ? t : `http://${t}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new RangeError(`${JSON.stringify(t.slice(0, 80))} is not a URL (want http://host/path)`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new RangeError(`${u.protocol} URLs are not proxied (want http:// or https://)`);
  }
  if (u.hostname === "") throw new RangeError(`${JSON.stringify(t.slice(0, 80))} has no host`);
  // URL lower-cases the host and drops a default port; the route table ignores any port.
  const host = u.hostname.replace(/\.$/, "");
  return { host, path: rawPath(withScheme), scheme: u.protocol === "https:" ? "https" : "http" };
}

/**
 * The path and query of `url` as written (URL would resolve dot segments and re-encode, which
 * the proxy does its own way: src/proxy/request_path.ts), without a fragment (never sent).
 */
function rawPath(url: string): string {
  const rest = url.slice(url.indexOf("//") + 2);
  const start = rest.search(/[/?#]/);
  const tail = start < 0 ? "" : rest.slice(start).replace(/#.*$/s, "");
  return tail.startsWith("/") ? tail : `/${tail}`;
}
