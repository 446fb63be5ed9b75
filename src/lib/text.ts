/**
 * Values people write as text (Docker labels, env, API Meta): lists, integers and booleans. Only
 * the reading is here; what values are allowed is the store's rules (src/store/instance_rules.ts). A
 * leaf module: imports nothing from berth.
 *
 * @module
 */

/** Comma-separated list: items trimmed, empty items dropped, duplicates removed. */
export function splitList(v: string): string[] {
  return [...new Set(v.split(",").map((s) => s.trim()).filter((s) => s.length > 0))];
}

/** A decimal integer's value, or the text itself when it is not one (for a rule to reject). */
export function intOrText(v: string): number | string {
  const t = v.trim();
  return /^[+-]?\d{1,16}$/.test(t) ? Number(t) : t;
}

/** true/false, also 1/0, yes/no, on/off (any case); `null` for anything else. */
export function parseBool(v: string): boolean | null {
  const t = v.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(t)) return true;
  if (["false", "0", "no", "off"].includes(t)) return false;
  return null;
}
