/**
 * `berth.lb=sticky_cookie`: a request whose cookie (`berth.lb.cookie`, default
 * `berth_<service>`) names an instance that passes and is not ejected goes to it; any other
 * request is balanced as round robin does (preferring an instance under its
 * `berth.http.max-conns`, weighing slow start; no client-IP hash, which would send every new
 * session behind one NAT, CDN or balancer to one instance), and the response from the instance
 * that answered sets the cookie when the request did not carry that instance's value:
 * `NAME=TOKEN; Path=/; HttpOnly; SameSite=Lax` (+ `Secure` over HTTPS, `Max-Age` with
 * `berth.lb.cookie.ttl`), and `Cache-Control: private` unless the response already keeps shared
 * caches off (so a CDN does not hand one instance's cookie to everyone). TOKEN is a hash of the instance id
 * (`Balancer.token`): no address leaks, every member reads it alike.
 *
 * @module
 */
import { Balancer, type Target } from "./balancer.ts";
import type { DispatchSink } from "./conn_info.ts";
import { SinkWrapper } from "./middleware/pipeline.ts";
import type { Exchange } from "./exchange.ts";
import { cookieValues, requestKey } from "./lb_key.ts";
import { lbSettings } from "./lb_settings.ts";
import type { ServiceRoute } from "./routed_service.ts";
import type { UpstreamPool } from "./upstream_pool.ts";

/** Characters a cookie name may not have (RFC 6265 token), replaced in the default name. */
const NOT_TOKEN = /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/g;

/** The route's sticky cookie name: `berth.lb.cookie`, else `berth_<service>`. */
export function stickyCookieName(route: ServiceRoute): string {
  return lbSettings(route).cookieName ?? `berth_${route.service.replace(NOT_TOKEN, "_")}`;
}

/** The `Set-Cookie` value naming `token`. */
export function setCookie(
  name: string,
  token: string,
  opts: { secure: boolean; maxAgeS: number | null },
): string {
  let v = `${name}=${token}; Path=/; HttpOnly; SameSite=Lax`;
  if (opts.secure) v += "; Secure";
  if (opts.maxAgeS !== null) v += `; Max-Age=${opts.maxAgeS}`;
  return v;
}

/**
 * The target for a try of a sticky request: the cookie's instance while it passes, is not
 * ejected and was not tried yet; else the balancer's round-robin pick.
 */
export function pickSticky(pool: UpstreamPool, x: Exchange): Target | null {
  return cookieTarget(pool, x.route, x.req.rawHeaders, x.tried) ?? pool.pick(x.route, x.tried);
}

/**
 * The instance the request's sticky cookie names when it can take the request (passing, not
 * ejected, not in `tried`), else null. Of several cookies of the name, the first that names an
 * instance of the service counts (a stale one before it is passed over).
 */
export function cookieTarget(
  pool: UpstreamPool,
  route: ServiceRoute,
  rawHeaders: readonly string[],
  tried: readonly Target[] = [],
): Target | null {
  let named: Target | null = null;
  for (const token of cookieValues(rawHeaders, stickyCookieName(route))) {
    named = route.balancer.byToken(token);
    if (named !== null) break;
  }
  return named !== null && !tried.includes(named) && !pool.isEjected(named) ? named : null;
}

/**
 * The sink of the `sticky-cookie` stage (middleware/sticky_cookie.ts): the response head of
 * the instance that answered (`x.answeredBy`) sets the cookie when the request did not carry
 * its token. The proxy's own answers set none.
 */
export class StickySink extends SinkWrapper {
  readonly #x: Exchange;
  readonly #name: string;
  /** The values of the cookie the request sent. */
  readonly #sent: string[];

  constructor(x: Exchange, inner: DispatchSink) {
    super(inner);
    this.#x = x;
    this.#name = stickyCookieName(x.route);
    this.#sent = cookieValues(x.req.rawHeaders, this.#name);
    wrapped.add(x);
  }

  override writeHead(status: number, reason: string, headers: readonly string[]): void {
    const x = this.#x;
    const by = x.answeredBy;
    const token = by === undefined ? undefined : Balancer.token(by);
    if (token === undefined || this.#sent.includes(token)) {
      return this.inner.writeHead(status, reason, headers);
    }
    const cookie = setCookie(this.#name, token, {
      secure: x.conn.secure,
      maxAgeS: lbSettings(x.route).cookieMaxAgeS,
    });
    const out = [...headers, "set-cookie", cookie];
    // A shared cache must not hand this cookie (this instance) to every client (HAProxy's
    // `cookie … insert nocache`): the response becomes private unless it already is.
    if (!privateAlready(headers)) out.push("cache-control", "private");
    this.inner.writeHead(status, reason, out);
  }
}

/** Whether response headers [name, value, …] already keep shared caches from storing it. */
function privateAlready(headers: readonly string[]): boolean {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const h = headers[i]!;
    if (h.length !== 13 || h.toLowerCase() !== "cache-control") continue;
    if (/(^|[\s,])(private|no-store|no-cache)\b/i.test(headers[i + 1]!)) return true;
  }
  return false;
}

/** Exchanges whose sink has a StickySink. */
const wrapped = new WeakSet<Exchange>();

/**
 * Gives a `sticky_cookie` exchange its StickySink when its route's middleware chain did not (a
 * route without settings has no chain): then it is the only response stage.
 */
export function ensureStickyCookie(x: Exchange): void {
  if (!wrapped.has(x)) x.res = new StickySink(x, x.res as DispatchSink);
}

/**
 * The target for the next try of `x` by its route's policy: `sticky_cookie` by the cookie
 * (`pickSticky`), any other by the balancer with the request's hash key (lb_key.ts).
 */
export function pickTarget(
  pool: UpstreamPool,
  x: Exchange,
  client: string = x.client,
): Target | null {
  if (x.route.balancer.policy === "sticky_cookie") return pickSticky(pool, x);
  return pool.pick(x.route, x.tried, requestKey(x.route, x.req, client));
}
