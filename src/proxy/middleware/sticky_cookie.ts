/**
 * The `sticky-cookie` response stage (order.ts): sets the `berth.lb=sticky_cookie` cookie on the
 * response of the instance that answered (../sticky_cookie.ts), after `response-headers` (a
 * `berth.http.response-headers.remove=Set-Cookie` leaves it alone) and before compression.
 *
 * The route's policy, not its settings, turns it on, and the proxy adds the sink itself to a
 * `sticky_cookie` request whose chain did not (`ensureStickyCookie`: outermost, so it sees the
 * response first). The stage matters only where response headers are set or removed, which
 * must not touch berth's cookie: it is in those chains (passing the sink through for other
 * policies) and in no other, so a route with other settings keeps the empty chain.
 *
 * @module
 */
import type { Exchange } from "../exchange.ts";
import { StickySink } from "../sticky_cookie.ts";
import type { Middleware, MiddlewarePart } from "./pipeline.ts";
import { RESPONSE_HEADER_PREFIX, RESPONSE_HEADERS_REMOVE_KEY } from "../../store/mod.ts";

const STAGE: Middleware = {
  name: "sticky-cookie",
  // The proxy runs the stages with its Exchange (http_proxy.ts dispatch).
  response: (s, res) =>
    s.route.balancer.policy === "sticky_cookie" ? new StickySink(s as Exchange, res) : res,
};

export const STICKY_COOKIE: MiddlewarePart = {
  name: "sticky-cookie",
  build: (s) =>
    s.get(RESPONSE_HEADERS_REMOVE_KEY) !== undefined || s.family(RESPONSE_HEADER_PREFIX).length > 0
      ? STAGE
      : null,
};
