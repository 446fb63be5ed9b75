/**
 * The HTTPS edge's rules for one request, as pure functions: the ACME HTTP-01 challenge path
 * (answered on the plain listener before routing), the `berth.http.redirect=https` target and
 * the `berth.http.hsts` header.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { ClientRequest, ResponseSink } from "./client_conn.ts";
import type { ConnInfo } from "./conn_info.ts";
import { type PlainAnswer, sendPlain } from "./exchange.ts";
import type { HostPort } from "../lib/host_port.ts";
import type { PathRoute, RouteTable } from "./routes.ts";
import { errorText } from "../lib/error_text.ts";
import { ALLOW_KEY, AUTH_BASIC_KEY } from "../store/mod.ts";

/** RFC 8555 §8.3: where a CA fetches an HTTP-01 key authorization. */
export const ACME_CHALLENGE_PREFIX = "/.well-known/acme-challenge/";
/** Longest token accepted (RFC 8555 tokens are 43 base64url characters at Let's Encrypt). */
export const ACME_TOKEN_CHARS_MAX = 128;
const TOKEN_RE = /^[A-Za-z0-9_-]+$/;

/**
 * The ACME token a request target asks for: undefined when it is not under
 * `/.well-known/acme-challenge/`, null when what follows is no token (RFC 8555 §8.1: base64url
 * characters only, no query), else the token.
 */
export function acmeChallengeToken(url: string): string | null | undefined {
  if (!url.startsWith(ACME_CHALLENGE_PREFIX)) return undefined;
  const token = url.slice(ACME_CHALLENGE_PREFIX.length);
  return token.length <= ACME_TOKEN_CHARS_MAX && TOKEN_RE.test(token) ? token : null;
}

const HOST_NAME_RE = /^[A-Za-z0-9._-]{1,253}$/;
const HOST_V6_RE = /^\[[0-9A-Fa-f:.]{2,45}\]$/;

/**
 * Where `berth.http.redirect=https` sends a plain request: `https://HOST[:PORT]/path?query`
 * with the port left out when it is 443. Null when the Host header (its port dropped) is no
 * host name or bracketed IPv6 address, or the target is not a path (`*`, absolute form).
 */
export function httpsLocation(host: string, url: string, httpsPort: number): string | null {
  const name = /^(\[[^\]]*\]|[^:]*)(?::\d{1,5})?$/.exec(host)?.[1];
  if (name === undefined || !(HOST_NAME_RE.test(name) || HOST_V6_RE.test(name))) return null;
  if (!url.startsWith("/") || url.startsWith("//")) return null;
  return `https://${name}${httpsPort === 443 ? "" : `:${httpsPort}`}${url}`;
}

/**
 * `res` with `Strict-Transport-Security: value` in every response head it writes, in place of
 * any the instance sent: the instance's responses and the proxy's own errors alike.
 */
export function withHstsSink<T extends ResponseSink>(res: T, value: string): T {
  return new Proxy(res, {
    get(target, p) {
      if (p === "writeHead") {
        return (status: number, reason: string, headers: readonly string[]) =>
          target.writeHead(status, reason, withHsts(headers, value));
      }
      const v = Reflect.get(target, p, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
    set(target, p, v) {
      return Reflect.set(target, p, v, target);
    },
  });
}

/** Response headers [name, value, …] with `Strict-Transport-Security: value` instead of any. */
export function withHsts(headers: readonly string[], value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === "strict-transport-security") continue;
    out.push(headers[i]!, headers[i + 1]!);
  }
  out.push("strict-transport-security", value);
  return out;
}

/**
 * `GET|HEAD /.well-known/acme-challenge/TOKEN` (the plain listener, any Host, before routing):
 * the key authorization `answer` has for the token (200), or 404 for a target that is no
 * token. A token `answer` does not know goes on to the routes (an instance may answer
 * challenges of its own), never redirected. Returns whether the request was answered.
 */
export function answeredAcme(
  req: ClientRequest,
  res: ResponseSink,
  answer: (token: string) => string | null,
  log: (line: string) => void,
): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const token = acmeChallengeToken(req.url);
  if (token === undefined) return false;
  let keyAuthorization: string | null = null;
  try {
    keyAuthorization = token === null ? null : answer(token);
  } catch (e) {
    log(`proxy: acme http-01 answer for ${token}: ${errorText(e)}`);
  }
  if (keyAuthorization === null && token !== null) return false;
  req.body?.resume();
  if (keyAuthorization === null) {
    sendPlain(res, 404, "not an ACME challenge token");
    return true;
  }
  const body = Buffer.from(keyAuthorization);
  res.writeHead(200, "", [
    "content-type",
    "application/octet-stream",
    "content-length",
    String(body.length),
  ]);
  res.end(body);
  return true;
}

/**
 * The route of a request (host, prefix and service), or what to answer instead: 404 without a
 * route; a 308 to https for a plain request to a `berth.http.redirect=https` service when this
 * proxy serves HTTPS on `https` (ACME challenge paths excepted; 400 for a Host that cannot be
 * redirected); 503 without a passing instance (not naming a service guarded by allow or
 * basic-auth).
 */
export function routeOrAnswer(
  table: RouteTable,
  host: string | undefined,
  url: string,
  conn: ConnInfo,
  https: HostPort | null,
): PathRoute | PlainAnswer {
  const path = table.matchPath(host, url);
  if (path === null) return { status: 404, text: `no route for ${host ?? "(no host)"}${url}` };
  const route = path.svc.route;
  if (route.redirectHttps && !conn.secure && https && acmeChallengeToken(url) === undefined) {
    const location = host === undefined ? null : httpsLocation(host, url, https.port);
    if (location === null) {
      return {
        status: 400,
        text: `no https redirect for host ${host ?? "(none)"} and ${url}`,
        path,
      };
    }
    return { status: 308, text: `see ${location}`, headers: ["location", location], path };
  }
  if (route.targets.length === 0) {
    // A service guarded by allow/basic-auth is not named to a client that has not passed them.
    const guarded = route.settings.get(ALLOW_KEY) !== undefined ||
      route.settings.get(AUTH_BASIC_KEY) !== undefined;
    const text = guarded
      ? "no healthy instance"
      : `no healthy instance of service ${route.service}`;
    return { status: 503, text, route, path };
  }
  return path;
}
