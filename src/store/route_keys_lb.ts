/**
 * Balancing route settings (labels and API Meta): the hash key and sticky cookie of
 * `berth.lb=hash|sticky_cookie` (the policy itself is `berth.lb`, lb_policy.ts), the per-service
 * response timeout and retries, the per-instance connection cap with its queue, and slow start.
 * Their rows for route_keys.ts and the typed parsers the proxy reads them with (pure).
 *
 * @module
 */
import { parseDuration } from "../lib/duration.ts";
import type { RouteKey } from "./route_key.ts";
import { CommandError, formatMs } from "./rule_basics.ts";

export const LB_HASH_KEY = "berth.lb.hash";
export const LB_COOKIE_KEY = "berth.lb.cookie";
export const LB_COOKIE_TTL_KEY = "berth.lb.cookie.ttl";
export const HTTP_TIMEOUT_KEY = "berth.http.timeout";
export const HTTP_RETRIES_KEY = "berth.http.retries";
export const HTTP_MAX_CONNS_KEY = "berth.http.max-conns";
export const HTTP_MAX_CONNS_QUEUE_KEY = "berth.http.max-conns.queue";
export const HTTP_SLOW_START_KEY = "berth.http.slow-start";

/** What `berth.lb=hash` hashes: the client's IP, a request header or a cookie. */
export type HashSource =
  | { readonly from: "ip" }
  | { readonly from: "header"; readonly name: string }
  | { readonly from: "cookie"; readonly name: string };

/** Longest header or cookie name accepted. */
const NAME_CHARS_MAX = 128;
/** An RFC 9110 token: what header and cookie names are made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const HASH_WANT = "ip, header:NAME or cookie:NAME";

/** `ip`, `header:X-User`, `cookie:session` → the source; header names lower-cased. */
export function parseHashSource(text: string): HashSource {
  const t = text.trim();
  if (t.toLowerCase() === "ip") return { from: "ip" };
  const colon = t.indexOf(":");
  const kind = t.slice(0, colon).trim().toLowerCase();
  const name = t.slice(colon + 1).trim();
  if (colon < 0 || (kind !== "header" && kind !== "cookie") || !isToken(name)) {
    throw new CommandError(text, HASH_WANT);
  }
  return kind === "header" ? { from: "header", name: name.toLowerCase() } : { from: kind, name };
}

/** The canonical text of a hash source. */
export function formatHashSource(s: HashSource): string {
  return s.from === "ip" ? "ip" : `${s.from}:${s.name}`;
}

function isToken(s: string): boolean {
  return s.length > 0 && s.length <= NAME_CHARS_MAX && TOKEN.test(s);
}

/** A cookie name (an RFC 6265 token, at most 128 characters). */
export function parseCookieName(text: string): string {
  const t = text.trim();
  if (!isToken(t)) {
    throw new CommandError(text, `a cookie name (letters, digits, !#$%&'*+-.^_\`|~)`);
  }
  return t;
}

/** A duration in [minMs, maxMs] (`30s`, `1m30s`) → whole milliseconds. */
export function parseDurationIn(text: string, minMs: number, maxMs: number): number {
  const want = `a duration from ${formatMs(minMs)} to ${formatMs(maxMs)}`;
  let ms: number;
  try {
    ms = parseDuration(text.trim());
  } catch {
    throw new CommandError(text, want);
  }
  if (!Number.isInteger(ms) || ms < minMs || ms > maxMs) throw new CommandError(text, want);
  return ms;
}

/** A whole number in [min, max] (decimal digits only). */
export function parseIntIn(text: string, min: number, max: number): number {
  const t = text.trim();
  const n = /^\d{1,9}$/.test(t) ? Number(t) : NaN;
  if (!(n >= min && n <= max)) throw new CommandError(text, `an integer in [${min}, ${max}]`);
  return n;
}

/** Bounds of each setting (README Balancing). */
export const LB_BOUNDS = {
  cookieTtlMs: [1_000, 8_760 * 3_600_000],
  timeoutMs: [1_000, 3_600_000],
  retries: [0, 10],
  maxConns: [1, 100_000],
  queue: [0, 100_000],
  slowStartMs: [1_000, 3_600_000],
} as const;

/** Requests that may wait for a connection to an instance at `berth.http.max-conns`. */
export const MAX_CONNS_QUEUE_DEFAULT = 100;

const duration = (bounds: readonly [number, number]) => (v: string) =>
  formatMs(parseDurationIn(v, bounds[0], bounds[1]));
const integer = (bounds: readonly [number, number]) => (v: string) =>
  String(parseIntIn(v, bounds[0], bounds[1]));

/** Rows of the route key registry (route_keys.ts) for this topic. */
export const LB_KEYS: RouteKey[] = [
  {
    key: LB_HASH_KEY,
    example: "header:X-User",
    doc: "what `berth.lb=hash` hashes: `ip` (default), `header:NAME` or `cookie:NAME`; " +
      "a request without it goes round robin",
    onBad: "hashing the client's IP",
    parse: (v) => formatHashSource(parseHashSource(v)),
  },
  {
    key: LB_COOKIE_KEY,
    example: "srv",
    doc: "the `berth.lb=sticky_cookie` cookie's name (default `berth_<service>`)",
    onBad: "using berth_<service>",
    parse: parseCookieName,
  },
  {
    key: LB_COOKIE_TTL_KEY,
    example: "1h",
    doc: "the sticky cookie's Max-Age (default: a session cookie)",
    onBad: "a session cookie",
    parse: duration(LB_BOUNDS.cookieTtlMs),
  },
  {
    key: HTTP_TIMEOUT_KEY,
    example: "5s",
    doc: "the service's response timeout (default the proxy's, 60 s; 504 after it)",
    onBad: "the proxy's response timeout",
    parse: duration(LB_BOUNDS.timeoutMs),
  },
  {
    key: HTTP_RETRIES_KEY,
    example: "1",
    doc: "tries on other instances after a failed one, 0 to 10 (default the proxy's, 2)",
    onBad: "the proxy's retries",
    parse: integer(LB_BOUNDS.retries),
  },
  {
    key: HTTP_MAX_CONNS_KEY,
    example: "50",
    doc:
      "requests in flight per instance from each member, all its proxy workers together; more wait in a queue (default 256 connections)",
    onBad: "no cap of the service's own",
    parse: integer(LB_BOUNDS.maxConns),
  },
  {
    key: HTTP_MAX_CONNS_QUEUE_KEY,
    example: "100",
    doc: "requests that may wait per instance at `max-conns` (default 100; beyond: 503)",
    onBad: `a queue of ${MAX_CONNS_QUEUE_DEFAULT}`,
    parse: integer(LB_BOUNDS.queue),
  },
  {
    key: HTTP_SLOW_START_KEY,
    example: "30s",
    doc: "an instance served again ramps from 10% to its full weight over this",
    onBad: "no slow start",
    parse: duration(LB_BOUNDS.slowStartMs),
  },
];
