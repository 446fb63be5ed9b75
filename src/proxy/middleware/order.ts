/**
 * The one order of the HTTP middlewares (README, "Middlewares"). Each route runs those its
 * settings turn on, in this order: request stages on the way in, then the request is forwarded
 * (balancer, max-conns, timeout, retries), then response stages on the way back.
 *
 * Way in:   allow (403) → ratelimit (429) → redirect (30x) → basic-auth (401) → strip-prefix
 *           → rewrite → request-headers
 *
 * The ratelimit comes before basic-auth so that password guesses take tokens too (as nginx's
 * limit_req runs before auth_basic), and the redirect before it so that a client is sent to
 * the right URL before it is asked for credentials (as nginx's `return` runs before access).
 * Way back: response-headers → sticky cookie → compress → HSTS (edge_rules.ts, always last)
 *
 * Each middleware adds its part on its line below; nothing else decides the order.
 *
 * @module
 */
import { type Chain, chainPart, EMPTY_CHAIN, type MiddlewarePart } from "./pipeline.ts";
import { RouteSettings } from "../route_settings.ts";
import { ALLOW } from "./allow.ts";
import { BASIC_AUTH } from "./basic_auth.ts";
import { REDIRECT } from "./redirect.ts";
import { STRIP_PREFIX } from "./strip_prefix.ts";
import { REWRITE } from "./rewrite.ts";
import { REQUEST_HEADERS, RESPONSE_HEADERS } from "./headers.ts";
import { STICKY_COOKIE } from "./sticky_cookie.ts";
import { RATELIMIT } from "./ratelimit.ts";
import { COMPRESS } from "./compress.ts";

/** Every middleware, in order. */
export const MIDDLEWARES: readonly MiddlewarePart[] = [
  ALLOW, // berth.http.allow (403)
  RATELIMIT, // berth.http.ratelimit (429); before basic-auth: guesses take tokens
  REDIRECT, // berth.http.redirect (30x; `https` is the edge's, edge_rules.ts)
  BASIC_AUTH, // berth.http.auth.basic (401)
  STRIP_PREFIX, // berth.http.strip-prefix
  REWRITE, // berth.http.rewrite
  REQUEST_HEADERS, // berth.http.request-header.NAME, berth.http.request-headers.remove
  RESPONSE_HEADERS, // berth.http.response-header.NAME, berth.http.response-headers.remove
  STICKY_COOKIE, // berth.lb=sticky_cookie (the policy turns it on, see sticky_cookie.ts)
  COMPRESS, // berth.http.compress
];

const ROUTE_CHAIN = chainPart(MIDDLEWARES);

/** The middleware chain of a route with `settings` (the empty chain without any). */
export function chainOf(settings: RouteSettings): Chain {
  return settings === RouteSettings.EMPTY ? EMPTY_CHAIN : settings.compiled(ROUTE_CHAIN);
}

/**
 * `chainOf` for another list of middlewares (tests): the chain of `parts`, built for every
 * route, settings or not.
 */
export function chainsOf(parts: readonly MiddlewarePart[]): (s: RouteSettings) => Chain {
  const part = chainPart(parts);
  return (s) => s.compiled(part);
}
