/**
 * Query parameters shared by the read routes: blocking (`?index`, `?wait`), consistency
 * (`?stale`, `?consistent`) and flags given as bare names (`?recurse`, `?passing`).
 *
 * @module
 */
import { parseDuration } from "../lib/duration.ts";
import { badRequest } from "./http_error.ts";

/** `?wait` when a blocking query leaves it out (Consul's default). */
export const WAIT_DEFAULT_MS = 5 * 60_000;
/** Longest `?wait`; longer values are clamped, as Consul does. */
export const WAIT_MAX_MS = 10 * 60_000;

type Query = (name: string) => string | undefined;

/** A bare flag: `?recurse` and `?recurse=true` are on, absent or `=false`/`=0` off. */
export function flag(query: Query, name: string): boolean {
  const v = query(name);
  return v !== undefined && v !== "false" && v !== "0";
}

/** A non-negative integer parameter, or undefined when absent. 400 when malformed. */
export function uintParam(query: Query, name: string, max = Number.MAX_SAFE_INTEGER) {
  const v = query(name);
  if (v === undefined) return undefined;
  if (!/^\d{1,16}$/.test(v) || Number(v) > max) {
    throw badRequest(`bad ?${name}=${v.slice(0, 40)}: expected an integer in [0, ${max}]`);
  }
  return Number(v);
}

export interface Blocking {
  /** The `?index` the client last saw; 0 means "answer at once". */
  index: number;
  /** How long to wait for a change, clamped to WAIT_MAX_MS, before jitter. */
  waitMs: number;
}

export function blockingParams(query: Query): Blocking {
  const index = uintParam(query, "index") ?? 0;
  const wait = query("wait");
  let waitMs = WAIT_DEFAULT_MS;
  if (wait !== undefined) {
    try {
      waitMs = parseDuration(wait);
    } catch {
      throw badRequest(`bad ?wait=${wait.slice(0, 40)}: expected a duration like 30s or 500ms`);
    }
  }
  return { index, waitMs: Math.min(waitMs, WAIT_MAX_MS) };
}

export type Consistency = "stale" | "default" | "consistent";

export function consistencyParam(query: Query): Consistency {
  const stale = query("stale") !== undefined;
  const consistent = query("consistent") !== undefined;
  if (stale && consistent) throw badRequest("?stale and ?consistent cannot be combined");
  return stale ? "stale" : consistent ? "consistent" : "default";
}
