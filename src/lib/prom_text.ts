/**
 * Prometheus text exposition format 0.0.4: one family as `# HELP`, `# TYPE` and its samples,
 * label values escaped (backslash, double quote, newline).
 *
 * @module
 */

export type MetricType = "gauge" | "counter" | "histogram";

/** `{a="x",b="y"}` from [name, value] pairs, values escaped; "" without pairs. */
export function labelText(pairs: readonly (readonly [string, string])[]): string {
  return pairs.length === 0 ? "" : labelsOpen(pairs) + "}";
}

/**
 * `{a="x",b="y"` (no closing brace: more labels may follow, `,le="1"}`) from one or more pairs,
 * values escaped. For families with many samples per label set: escaped once, not per line.
 */
export function labelsOpen(pairs: readonly (readonly [string, string])[]): string {
  let out = "{";
  for (let i = 0; i < pairs.length; i++) {
    const [k, v] = pairs[i]!;
    if (i > 0) out += ",";
    out += `${k}="${escapeLabel(v)}"`;
  }
  return out;
}

/** A label value as the text format wants it. */
export function escapeLabel(v: string): string {
  return NEEDS_ESCAPE.test(v) ? v.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : "\\" + c) : v;
}

const NEEDS_ESCAPE = /[\\"\n]/;

/** A sample value: integers as they are, others with up to 6 decimals. */
export function sampleValue(n: number): string {
  if (Number.isInteger(n)) return String(n);
  if (!Number.isFinite(n)) return n > 0 ? "+Inf" : n < 0 ? "-Inf" : "NaN";
  return String(Math.round(n * 1e6) / 1e6);
}

/** One family: HELP and TYPE lines, then `samples` (each a whole line without newline). */
export function family(
  name: string,
  type: MetricType,
  help: string,
  samples: readonly string[],
): string {
  const head = `# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n` +
    `# TYPE ${name} ${type}\n`;
  return samples.length === 0 ? head : head + samples.join("\n") + "\n";
}

/** One sample line: `name{labels} value`. */
export function sample(
  name: string,
  pairs: readonly (readonly [string, string])[],
  value: number,
): string {
  return `${name}${labelText(pairs)} ${sampleValue(value)}`;
}

/**
 * A histogram's sample lines for one label set: cumulative `_bucket{le}` lines (the last
 * `+Inf`), `_sum` and `_count`. `counts` holds one count per bound of `bounds` and one more
 * for values above the last (not cumulative).
 */
export function histogramSamples(
  name: string,
  pairs: readonly (readonly [string, string])[],
  bounds: readonly number[],
  counts: ArrayLike<number>,
  sum: number,
): string[] {
  const out: string[] = [];
  let total = 0;
  for (let i = 0; i <= bounds.length; i++) {
    total += counts[i] ?? 0;
    const le = i < bounds.length ? sampleValue(bounds[i]!) : "+Inf";
    out.push(sample(`${name}_bucket`, [...pairs, ["le", le]], total));
  }
  out.push(sample(`${name}_sum`, pairs, sum));
  out.push(sample(`${name}_count`, pairs, total));
  return out;
}
