/**
 * The one bounded poll for tests and scripts: `waitFor(what, fn)` calls `fn` until it returns a
 * value other than `undefined` or `false` (a thrown error counts as not yet), then resolves with
 * it; after `timeoutMs` it rejects naming `what` and the last error. Nothing in src/ polls: the
 * agent's own waits are resolved by the loop that knows.
 *
 * @module
 */

/** How long waitFor() polls by default before failing. */
export const WAIT_TIMEOUT_MS_DEFAULT = 15_000;
/** Pause between two polls by default. */
export const WAIT_INTERVAL_MS_DEFAULT = 25;

export interface WaitOptions {
  /** Give up after this long (default WAIT_TIMEOUT_MS_DEFAULT). */
  timeoutMs?: number;
  /** Pause between polls (default WAIT_INTERVAL_MS_DEFAULT). */
  intervalMs?: number;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it yields a value (not undefined, not false); rejects after the timeout. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? WAIT_TIMEOUT_MS_DEFAULT;
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (performance.now() >= deadline) break;
    await sleep(opts.intervalMs ?? WAIT_INTERVAL_MS_DEFAULT);
  }
  const why = last === undefined
    ? ""
    : ` (last error: ${last instanceof Error ? last.message : last})`;
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${why}`);
}
