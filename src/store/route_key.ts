/**
 * The shape of one route setting (a container label that is also the same API `Meta` key, such
 * as `berth.http.strip-prefix=true`), and the index that finds the setting of a meta key: the
 * exact key, else the longest family prefix (`berth.http.request-header.` for
 * `berth.http.request-header.X-Env`). route_keys.ts lists the settings berth knows.
 *
 * A row's `parse` is pure and may import only leaves (rule_basics.ts, src/lib); never
 * instance_rules.ts or validate.ts, which import the rows.
 *
 * @module
 */
import { CommandError, NAME_BYTES_MAX } from "./rule_basics.ts";

/** One route setting: its key, its README row and its parser. */
export interface RouteKey {
  /** Exact key, or a prefix ending in "." for a key family (`berth.http.request-header.`). */
  key: string;
  /**
   * The README's example value: the label cell is `key=example` (`berth.http.retries=2`); for a
   * family the example starts with the rest of the key: `NAME=VALUE` gives
   * `berth.http.request-header.NAME=VALUE`.
   */
  example: string;
  /** The README's meaning column. */
  doc: string;
  /** End of a bad label's log line: what is used instead (`no rate limit`). */
  onBad: string;
  /**
   * Value (trimmed, non-empty) → canonical text; throws CommandError whose `want` says what is
   * expected (`new CommandError(value, "an integer in [0, 10]")`, or rule_basics' `fail`). Pure.
   */
  parse(value: string, key: string): string;
  /**
   * A security setting's canonical value in place of a bad label (`none`: nobody passes), so a
   * typo fails closed instead of leaving the route open; absent: a bad label is left out. A
   * function makes it from the bad value (the header lists keep their good names); "" from it:
   * left out.
   */
  failClosed?: string | ((value: string) => string);
  /**
   * A secret (password hashes, header values that may carry API keys): never shown by an API
   * read, explain or a log line; reads show HIDDEN_VALUE (route_keys.ts `shownMeta`). The store
   * keeps the value.
   */
  secret?: boolean;
}

/** What a read shows in place of a secret setting's value (RouteKey.secret). */
export const HIDDEN_VALUE = "(hidden)";

/** Whether `k` is a family row (a prefix of keys) rather than one key. */
export function isFamily(k: RouteKey): boolean {
  return k.key.endsWith(".");
}

/** The README's label cell of a row: `berth.http.retries=2`, `berth.http.request-header.NAME=VALUE`. */
export function routeKeyCell(k: RouteKey): string {
  return isFamily(k) ? `${k.key}${k.example}` : `${k.key}=${k.example}`;
}

/** Finds the row of a meta key among a list of rows. */
export class RouteKeyIndex {
  readonly #exact = new Map<string, RouteKey>();
  /** Family rows, longest prefix first. */
  readonly #families: RouteKey[];

  constructor(keys: readonly RouteKey[]) {
    const families: RouteKey[] = [];
    for (const k of keys) {
      if (this.#exact.has(k.key) || families.some((f) => f.key === k.key)) {
        throw new Error(`route key ${k.key} is listed twice`);
      }
      if (isFamily(k)) families.push(k);
      else this.#exact.set(k.key, k);
    }
    this.#families = families.sort((a, b) => b.key.length - a.key.length);
  }

  /** The row of `metaKey`: exact match, else the longest family prefix; undefined when none. */
  find(metaKey: string): RouteKey | undefined {
    const exact = this.#exact.get(metaKey);
    if (exact !== undefined) return exact;
    for (const f of this.#families) {
      if (metaKey.length > f.key.length && metaKey.startsWith(f.key)) return f;
    }
    return undefined;
  }
}

/**
 * The canonical text of `value` for row `k` (key `key`): trimmed, parsed, at most NAME_BYTES_MAX
 * characters (what the store keeps of a meta value). Throws CommandError with `want` set.
 */
export function routeValue(k: RouteKey, key: string, value: string): string {
  const v = value.trim();
  if (v === "") throw new CommandError(value, "a non-empty value");
  // A tool that writes back what it read must not set a header to "(hidden)".
  if (k.secret === true && v === HIDDEN_VALUE) {
    throw new CommandError(value, `the value itself (reads show ${HIDDEN_VALUE} in its place)`);
  }
  const canonical = k.parse(v, key);
  if (canonical.length > NAME_BYTES_MAX) {
    throw new CommandError(value, `a value of at most ${NAME_BYTES_MAX} characters`);
  }
  return canonical;
}
