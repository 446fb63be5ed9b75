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
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)(?![a-z])/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (m === null) {
      const rest = s.slice(pos);
      if (/^\d+(\.\d+)?$/.test(rest)) throw new Error("no unit");
      const unit = /^\d+(?:\.\d+)?([A-Za-z]+)/.exec(rest);
      if (unit) throw new Error(`unknown unit ${JSON.stringify(unit[1])}`);
      throw new Error("not a duration");
    }
    total += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    pos = re.lastIndex;
  }
  return Math.round(total);
}
