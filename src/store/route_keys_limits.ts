/**
 * Rate limit and compression route settings (owner topic: limits): `berth.http.ratelimit` (a
 * token bucket per client) and `berth.http.compress` (gzip / Brotli of compressible
 * responses), their rows for route_keys.ts, and the typed parsers the proxy reads the stored
 * canonical values back with (`parseRateLimit`, `parseCompress`: src/proxy/middleware/
 * ratelimit.ts, compress.ts). Pure.
 *
 * @module
 */
import type { RouteKey } from "./route_key.ts";
import { CommandError } from "./rule_basics.ts";

/** Meta key: `RATE/s` or `RATE/m`, optionally `,burst=N` (README "Middlewares: ratelimit"). */
export const RATELIMIT_META_KEY = "berth.http.ratelimit";
/** What `berth.http.ratelimit` looks like, for messages. */
export const RATELIMIT_EXPECTED = "RATE/s or RATE/m, optionally ,burst=N (e.g. 100/s,burst=200)";
/** Largest rate (per unit) and burst accepted. */
export const RATELIMIT_RATE_MAX = 1_000_000;
export const RATELIMIT_BURST_MAX = 1_000_000;

/** A parsed rate limit: tokens added per second and the bucket's size. */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

/**
 * `100/s`, `30/m`, `100/s,burst=200` (any case, spaces around parts ignored) → the limit. The
 * burst defaults to the rate per second rounded up (at least 1). Throws a CommandError for
 * anything else.
 */
export function parseRateLimit(value: string): RateLimit {
  const m = /^\s*(\d{1,7})\s*\/\s*([sm])\s*(?:,\s*burst\s*=\s*(\d{1,7})\s*)?$/i.exec(value);
  if (m === null) throw new CommandError(value, RATELIMIT_EXPECTED);
  const rate = Number(m[1]);
  if (rate < 1 || rate > RATELIMIT_RATE_MAX) {
    throw new CommandError(value, `a rate in [1, ${RATELIMIT_RATE_MAX}] (${RATELIMIT_EXPECTED})`);
  }
  const perSecond = m[2]!.toLowerCase() === "s" ? rate : rate / 60;
  const burst = m[3] === undefined ? Math.max(1, Math.ceil(perSecond)) : Number(m[3]);
  if (burst < 1 || burst > RATELIMIT_BURST_MAX) {
    throw new CommandError(value, `a burst in [1, ${RATELIMIT_BURST_MAX}]`);
  }
  return { perSecond, burst };
}

/** The canonical text of a rate limit value: `RATE/UNIT,burst=N`. */
export function canonicalRateLimit(value: string): string {
  const m = /^\s*(\d+)\s*\/\s*([sm])/i.exec(value)!;
  const { burst } = parseRateLimit(value);
  return `${Number(m[1])}/${m[2]!.toLowerCase()},burst=${burst}`;
}

/** Meta key: `true`, `false`, or the encodings to offer: `gzip`, `br`, `gzip,br`. */
export const COMPRESS_META_KEY = "berth.http.compress";
/** What `berth.http.compress` looks like, for messages. */
export const COMPRESS_EXPECTED = "true, false, or a list of gzip and br (e.g. gzip,br)";
/** Content codings the proxy can produce, in the order it prefers them at equal q. */
export const COMPRESS_ENCODINGS = ["br", "gzip"] as const;
export type Encoding = typeof COMPRESS_ENCODINGS[number];

/**
 * `true` (every encoding), `false` (none), or a comma-separated list of `gzip` and `br` (any
 * case and order, spaces ignored, each at most once) → the encodings offered, in
 * COMPRESS_ENCODINGS order (empty: off). Throws a CommandError for anything else.
 */
export function parseCompress(value: string): Encoding[] {
  const t = value.trim().toLowerCase();
  if (t === "true") return [...COMPRESS_ENCODINGS];
  if (t === "false") return [];
  const seen = new Set<Encoding>();
  for (const part of t.split(",")) {
    const e = part.trim();
    if (!(COMPRESS_ENCODINGS as readonly string[]).includes(e) || seen.has(e as Encoding)) {
      throw new CommandError(value, COMPRESS_EXPECTED);
    }
    seen.add(e as Encoding);
  }
  return COMPRESS_ENCODINGS.filter((e) => seen.has(e));
}

/** The canonical text of a compress value: `br,gzip`, `br`, `gzip` or `false`. */
export function canonicalCompress(value: string): string {
  const list = parseCompress(value);
  return list.length === 0 ? "false" : list.join(",");
}

/** Rows of the route key registry (route_keys.ts) for this topic. */
export const LIMITS_KEYS: RouteKey[] = [
  {
    key: RATELIMIT_META_KEY,
    example: "100/s,burst=200",
    doc: "per client IP: RATE requests a second (`/s`) or a minute (`/m`), bursts up to `burst`; " +
      "over it 429 (see Middlewares)",
    onBad: "no rate limit",
    parse: canonicalRateLimit,
  },
  {
    key: COMPRESS_META_KEY,
    example: "true",
    doc: "gzip or Brotli for compressible responses the client accepts: `true`, `false`, `gzip`, " +
      "`br` or `gzip,br` (see Middlewares)",
    onBad: "no compression",
    parse: canonicalCompress,
  },
];
