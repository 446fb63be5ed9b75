/**
 * A route's balancing settings (src/store/route_keys_lb.ts) as the proxy uses them: compiled
 * once per settings object (`lbSettings(route)`). A stored value the parsers refuse (written by
 * another version) is skipped: the default applies.
 *
 * @module
 */
import {
  type HashSource,
  HTTP_MAX_CONNS_KEY,
  HTTP_MAX_CONNS_QUEUE_KEY,
  HTTP_RETRIES_KEY,
  HTTP_SLOW_START_KEY,
  HTTP_TIMEOUT_KEY,
  type HttpProto,
  LB_BOUNDS,
  LB_COOKIE_KEY,
  LB_COOKIE_TTL_KEY,
  LB_HASH_KEY,
  type LbPolicy,
  MAX_CONNS_QUEUE_DEFAULT,
  parseCookieName,
  parseDurationIn,
  parseHashSource,
  parseIntIn,
} from "../store/mod.ts";
import { readSetting, type RoutePart, type RouteSettings } from "./route_settings.ts";

/** A service's balancing settings; null: the proxy's default. */
export interface LbSettings {
  /** What `hash` hashes (default the client's IP). */
  readonly hash: HashSource;
  /** The sticky cookie's name; null: `berth_<service>`. */
  readonly cookieName: string | null;
  /** The sticky cookie's Max-Age in seconds; null: a session cookie. */
  readonly cookieMaxAgeS: number | null;
  readonly timeoutMs: number | null;
  readonly retries: number | null;
  /** Requests in flight per instance (the whole proxy; each worker gets its share). */
  readonly maxConns: number | null;
  /** Requests that may wait per instance at `maxConns`. */
  readonly queue: number;
  readonly slowStartMs: number | null;
}

export const DEFAULT_LB_SETTINGS: LbSettings = Object.freeze({
  hash: Object.freeze({ from: "ip" }),
  cookieName: null,
  cookieMaxAgeS: null,
  timeoutMs: null,
  retries: null,
  maxConns: null,
  queue: MAX_CONNS_QUEUE_DEFAULT,
  slowStartMs: null,
});

export const LB_PART: RoutePart<LbSettings> = {
  name: "lb",
  compile(s: RouteSettings): LbSettings {
    if (s.size === 0) return DEFAULT_LB_SETTINGS;
    const b = LB_BOUNDS;
    const ttlMs = readSetting(s, LB_COOKIE_TTL_KEY, (v) => parseDurationIn(v, ...b.cookieTtlMs));
    return {
      hash: readSetting(s, LB_HASH_KEY, parseHashSource) ?? DEFAULT_LB_SETTINGS.hash,
      cookieName: readSetting(s, LB_COOKIE_KEY, parseCookieName),
      cookieMaxAgeS: ttlMs === null ? null : Math.ceil(ttlMs / 1000),
      timeoutMs: readSetting(s, HTTP_TIMEOUT_KEY, (v) => parseDurationIn(v, ...b.timeoutMs)),
      retries: readSetting(s, HTTP_RETRIES_KEY, (v) => parseIntIn(v, ...b.retries)),
      maxConns: readSetting(s, HTTP_MAX_CONNS_KEY, (v) => parseIntIn(v, ...b.maxConns)),
      queue: readSetting(s, HTTP_MAX_CONNS_QUEUE_KEY, (v) => parseIntIn(v, ...b.queue)) ??
        MAX_CONNS_QUEUE_DEFAULT,
      slowStartMs: readSetting(s, HTTP_SLOW_START_KEY, (v) => parseDurationIn(v, ...b.slowStartMs)),
    };
  },
};

/** The route's balancing settings. */
export function lbSettings(route: { readonly settings: RouteSettings }): LbSettings {
  return route.settings.size === 0 ? DEFAULT_LB_SETTINGS : route.settings.compiled(LB_PART);
}

/**
 * Balancing settings that do nothing for the service (README "Balancing"), one
 * `KEY does nothing …` text each: the hash key without `hash`, the sticky cookie's name and TTL
 * without `sticky_cookie`, slow start under `hash` of the client's IP (every request has that
 * key, and hashed keys go to the same instance on every member, so nothing ramps; a header or
 * cookie key leaves requests without it to the ramped round robin), a queue without a
 * `berth.http.max-conns` the proxy uses (nothing waits), and `max-conns` and its queue on an
 * `h2c`/`grpc` service (`proto`; they cap HTTP/1.1 connections: HTTP/2 streams wait for their
 * sessions instead, h2c_sessions.ts).
 */
export function idleLbSettings(
  policy: LbPolicy,
  s: RouteSettings,
  opts: { proto?: HttpProto } = {},
): string[] {
  if (s.size === 0) return [];
  const out: string[] = [];
  const lb = lbSettings({ settings: s });
  const under = `does nothing under berth.lb=${policy}`;
  if (policy !== "hash" && s.get(LB_HASH_KEY) !== undefined) {
    out.push(`${LB_HASH_KEY} ${under} (it is what berth.lb=hash hashes)`);
  }
  if (policy !== "sticky_cookie") {
    for (const key of [LB_COOKIE_KEY, LB_COOKIE_TTL_KEY]) {
      if (s.get(key) !== undefined) out.push(`${key} ${under} (it is berth.lb=sticky_cookie's)`);
    }
  }
  if (policy === "hash" && lb.hash.from === "ip" && s.get(HTTP_SLOW_START_KEY) !== undefined) {
    out.push(
      `${HTTP_SLOW_START_KEY} ${under} of the client's IP (every request has that key, and ` +
        `hashed keys must reach the same instance)`,
    );
  }
  const proto = opts.proto ?? "http1";
  if (proto !== "http1") {
    for (const key of [HTTP_MAX_CONNS_KEY, HTTP_MAX_CONNS_QUEUE_KEY]) {
      if (s.get(key) === undefined) continue;
      out.push(
        `${key} does nothing on berth.http.proto=${proto} (it caps HTTP/1.1 connections; ` +
          `HTTP/2 streams wait for room on the instance's sessions)`,
      );
    }
  } else if (s.get(HTTP_MAX_CONNS_QUEUE_KEY) !== undefined && lb.maxConns === null) {
    out.push(`${HTTP_MAX_CONNS_QUEUE_KEY} does nothing without ${HTTP_MAX_CONNS_KEY}`);
  }
  return out;
}
