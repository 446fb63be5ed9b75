/**
 * The rapid-reset guard (CVE-2023-44487): an HTTP/2 client that opens streams and cancels them
 * before any response makes the proxy start work (a route lookup, an upstream connection) for
 * nothing, without ever holding more than its concurrent-stream limit. `RapidResetMeter` counts
 * such cancellations per connection in fixed windows; past `resetsMax` in one window the
 * connection is told to go away (GOAWAY ENHANCE_YOUR_CALM) and closed.
 *
 * @module
 */

/** Streams a client may cancel before their response began, per window. */
export const RAPID_RESETS_MAX = 100;
/** The counting window. */
export const RAPID_RESET_WINDOW_MS = 10_000;

export interface RapidResetOptions {
  /** Default RAPID_RESETS_MAX. */
  resetsMax?: number;
  /** Default RAPID_RESET_WINDOW_MS. */
  windowMs?: number;
  /** Default Date.now. */
  now?: () => number;
}

/** Counts early stream cancellations of one connection, in fixed windows. */
export class RapidResetMeter {
  readonly #resetsMax: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart = -Infinity;
  #count = 0;

  constructor(opts: RapidResetOptions = {}) {
    this.#resetsMax = opts.resetsMax ?? RAPID_RESETS_MAX;
    this.#windowMs = opts.windowMs ?? RAPID_RESET_WINDOW_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** Counts one early cancellation; true when the connection went over its budget. */
  reset(): boolean {
    const now = this.#now();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#count = 0;
    }
    this.#count++;
    return this.#count > this.#resetsMax;
  }
}
