/**
 * Durations as people write them in flags, labels and query strings: `5s`, `250ms`, `1m30s`,
 * `2h`, `1.5s`. A leaf module: imports nothing from berth.
 *
 * @module
 */

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Parses `5s`, `250ms`, `1m30s`, `2h` into whole milliseconds; throws on anything else. */
export function parseDuration(s: string): number {
  if (s.length === 0) throw new Error("empty duration");
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (m === null) throw new Error(`"${s}" is not a duration like 5s, 250ms or 1m`);
    total += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    pos = re.lastIndex;
  }
  return Math.round(total);
}
