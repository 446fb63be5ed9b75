/**
 * Rate limit (README "Middlewares: ratelimit"): `berth.http.ratelimit=100/s,burst=200` gives
 * each client IP (an IPv6 client by its /64) a token bucket per service; a request takes a
 * token or is answered `429 Too Many Requests` with `Retry-After` (whole seconds until a token
 * is back) and never reaches an instance. The body says only `too many requests`.
 *
 * The buckets live in the process's one table (rate_buckets.ts), shared by every proxy
 * worker, keyed by service and client: a route rebuild, a relabel or a worker restart keeps
 * them, and a client whose connections land on different workers meets one limit.
 *
 * @module
 */
import { parseRateLimit, RATELIMIT_META_KEY } from "../../store/mod.ts";
import type { PlainAnswer } from "../exchange.ts";
import { clientBytes } from "../../lib/cidr.ts";
import { ipText } from "../../lib/ip_bytes.ts";
import type { Middleware, MiddlewarePart, RequestState } from "./pipeline.ts";
import { readSetting } from "../route_settings.ts";
import { type BucketLimit, nowMs, processRateBuckets, type RateBuckets } from "./rate_buckets.ts";

/** What the rate limit middleware counts in and with (tests give their own). */
export interface RateLimitContext {
  /** The bucket table; default the process's. */
  buckets(): RateBuckets;
  /** Milliseconds on the table's clock; default `nowMs`. */
  now(): number;
}

const PROCESS: RateLimitContext = { buckets: processRateBuckets, now: nowMs };

/** The rate limit part over `ctx` (order.ts uses RATELIMIT, over the process's table). */
export function rateLimitPart(ctx: RateLimitContext = PROCESS): MiddlewarePart {
  return {
    name: "ratelimit",
    build(s): Middleware | null {
      // absent, or stored by another version and unreadable here: no limit
      const limit: BucketLimit | null = readSetting(s, RATELIMIT_META_KEY, parseRateLimit);
      if (limit === null) return null;
      return {
        name: "ratelimit",
        request(r: RequestState): PlainAnswer | null {
          const service = r.route.service;
          const waitMs = ctx.buckets().take(
            `${service}\u0000${clientKey(r.client)}`,
            limit,
            ctx.now(),
          );
          if (waitMs === 0) return null;
          // The body names neither the service nor its limit (the client is told when to come
          // back, the access log and the metrics keep the service; explain shows the limit).
          return {
            status: 429,
            text: "too many requests",
            headers: ["retry-after", String(Math.max(1, Math.ceil(waitMs / 1000)))],
          };
        },
      };
    },
  };
}

/**
 * Whose bucket a client address takes from: an IPv4 address (IPv4-mapped IPv6 as IPv4) as it is,
 * an IPv6 address by its /64 (one subscriber's network: a client must not get a fresh bucket per
 * address it takes from its /64). Anything else as it is.
 */
export function clientKey(client: string): string {
  const b = clientBytes(client);
  if (b === null) return client;
  if (b.length === 4) return ipText(b, 4);
  const net = new Uint8Array(16);
  net.set(b.subarray(0, 8));
  return `${ipText(net, 6)}/64`;
}

/** The rate limit middleware part (order.ts). */
export const RATELIMIT: MiddlewarePart = rateLimitPart();
