/**
 * Logs a line once per key, so a bad label or an unreachable engine is reported once, not on
 * every reconcile. The set of remembered keys is bounded (oldest forgotten first).
 *
 * @module
 */

/** Most keys remembered. */
export const LOG_KEYS_MAX = 1024;

export class LogOnce {
  readonly #seen = new Set<string>();
  readonly #log: (line: string) => void;
  readonly #keysMax: number;

  constructor(log: (line: string) => void, options: { keysMax?: number } = {}) {
    this.#log = log;
    this.#keysMax = options.keysMax ?? LOG_KEYS_MAX;
  }

  /** Logs `line` unless `key` was logged before; returns whether it logged. */
  log(key: string, line: string): boolean {
    if (this.#seen.has(key)) return false;
    if (this.#seen.size >= this.#keysMax) {
      const oldest = this.#seen.values().next().value;
      if (oldest !== undefined) this.#seen.delete(oldest);
    }
    this.#seen.add(key);
    this.#log(line);
    return true;
  }

  /** Forgets `key`, so its next occurrence is logged again. */
  forget(key: string): void {
    this.#seen.delete(key);
  }

  /** Forgets every key starting with `prefix`. */
  forgetPrefix(prefix: string): void {
    for (const k of this.#seen) if (k.startsWith(prefix)) this.#seen.delete(k);
  }
}
