/**
 * The `sticky-cookie` response stage (order.ts): sets the `berth.lb=sticky_cookie` cookie on the
 * response of the instance that answered (../sticky_cookie.ts), after `response-headers` (a
 * `berth.http.response-headers.remove=Set-Cookie` leaves it alone) and before compression.
 *
 * The route's policy, not its settings, turns it on: the stage is in every chain and passes the
 * sink through for other policies. A route without settings has no chain; the proxy adds the
 * sink itself then (`ensureStickyCookie`).
 *
 * @module
 */
import type { Exchange } from "../exchange.ts";
import { StickySink } from "../sticky_cookie.ts";
import type { Middleware, MiddlewarePart } from "./pipeline.ts";

const STAGE: Middleware = {
  name: "sticky-cookie",
  // The proxy runs the stages with its Exchange (http_proxy.ts dispatch).
  response: (s, res) =>
    s.route.balancer.policy === "sticky_cookie" ? new StickySink(s as Exchange, res) : res,
};

export const STICKY_COOKIE: MiddlewarePart = {
  name: "sticky-cookie",
  build: () => STAGE,
};
