/**
 * Durations as people write them in flags, labels and query strings: `5s`, `250ms`, `1m30s`,
 * `2h`, `1.5s`. A leaf module: imports nothing from berth.
 *
 * @module
 */

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** What a duration looks like, for messages: "expected …". */
export const DURATION_EXPECTED = "expected a duration like 10s, 250ms or 1m30s";

/**
 * Parses `5s`, `250ms`, `1m30s`, `2h` into whole milliseconds. Throws an Error saying what is
 * wrong (`no unit`, `unknown unit "d"`), never what is expected: see DURATION_EXPECTED.
 */
export function parseDuration(s: string): number {
  if (s.length === 0) throw new Error("empty");
  return sumTerms(s, {
    term: /(\d+(?:\.\d+)?)(ms|s|m|h)(?![a-z])/y,
    unitMs: UNIT_MS,
    bare: /^\d+(\.\d+)?$/,
    withUnit: /^\d+(?:\.\d+)?([A-Za-z]+)/,
  });
}

const GO_UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration as Go's `time.ParseDuration` reads it (what Consul clients send):
 * `15s`, `15.0s`, `1m30s`, `.5h`, `250ms`, `100us`, `0`. Returns milliseconds, rounded to the
 * nearest whole one. Throws an Error saying what is wrong; negative durations are refused.
 */
export function parseGoDuration(s: string): number {
  if (s === "0" || s === "+0") return 0;
  const body = s.startsWith("+") ? s.slice(1) : s;
  if (body.startsWith("-")) throw new Error("negative");
  if (body.length === 0) throw new Error("empty");
  return sumTerms(body, {
    term: /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y,
    unitMs: GO_UNIT_MS,
    bare: /^[\d.]+$/,
    withUnit: /^[\d.]+([^\d.]+)/,
  });
}

/** A duration syntax: one `<number><unit>` term, and what to say about text that is none. */
interface Terms {
  /** Sticky: a number (group 1) and a unit of `unitMs` (group 2). */
  term: RegExp;
  unitMs: Readonly<Record<string, number>>;
  /** A number without a unit. */
  bare: RegExp;
  /** A number with a unit not in `unitMs` (group 1). */
  withUnit: RegExp;
}

/** Adds up the terms `s` is made of, in whole milliseconds; throws saying what is wrong. */
function sumTerms(s: string, t: Terms): number {
  let total = 0;
  for (let pos = 0; pos < s.length; pos = t.term.lastIndex) {
    t.term.lastIndex = pos;
    const m = t.term.exec(s);
    if (m === null) {
      const rest = s.slice(pos);
      if (t.bare.test(rest)) throw new Error("no unit");
      const unit = t.withUnit.exec(rest);
      if (unit) throw new Error(`unknown unit ${JSON.stringify(unit[1])}`);
      throw new Error("not a duration");
    }
    total += Number(m[1]) * t.unitMs[m[2]!]!;
  }
  return Math.round(total);
}
