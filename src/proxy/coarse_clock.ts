/**
 * Deadlines for the proxy's hot path without a timer per request: one interval ticks every
 * `tickMs`, reads the clock once and expires what is due. Arming, moving or dropping a deadline
 * is a field write and a Set operation (a `setTimeout` costs a timer object and a runtime call,
 * which showed in profiles of the proxy at full load).
 *
 * A deadline fires between `ms` and `ms + 2 × tickMs` after it was armed, never early.
 *
 * @module
 */

/** Shortest and longest tick. */
export const TICK_MS_MIN = 1;
export const TICK_MS_MAX = 1_000;

/** A deadline: `expire()` runs once when the clock passes `expiresAt` (ms, see `now`). */
export interface Deadline {
  expiresAt: number;
  expire(): void;
}

export interface CoarseClockOptions {
  /** Clock in ms. Default Date.now. */
  now?: () => number;
}

/** The tick that keeps a timeout of `ms` within ~10% of late: `ms / 10`, within 1 ms … 1 s. */
export function tickFor(ms: number): number {
  return Math.min(TICK_MS_MAX, Math.max(TICK_MS_MIN, Math.floor(ms / 10)));
}

/** One shared interval that expires `Deadline`s. `close()` stops it. */
export class CoarseClock {
  readonly tickMs: number;
  readonly #clock: () => number;
  readonly #armed = new Set<Deadline>();
  #now: number;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(tickMs: number, opts: CoarseClockOptions = {}) {
    this.tickMs = Math.min(TICK_MS_MAX, Math.max(TICK_MS_MIN, tickMs));
    this.#clock = opts.now ?? Date.now;
    this.#now = this.#clock();
  }

  /** The time of the last tick (at most `tickMs` behind the clock). */
  get now(): number {
    return this.#now;
  }

  /** Deadlines armed now. */
  get size(): number {
    return this.#armed.size;
  }

  /** The `expiresAt` that is never early for a timeout of `ms` armed now. */
  after(ms: number): number {
    return this.#now + ms + this.tickMs;
  }

  /** Arms `d` (its `expiresAt` may be moved later by writing it). Starts ticking if needed. */
  arm(d: Deadline): void {
    this.#armed.add(d);
    if (this.#timer === null) {
      this.#now = this.#clock();
      this.#timer = setInterval(this.tick, this.tickMs);
    }
  }

  /** Disarms `d`; it will not expire. */
  disarm(d: Deadline): void {
    this.#armed.delete(d);
  }

  /** Reads the clock and expires what is due; stops ticking once nothing is armed. */
  tick = (): void => {
    const now = this.#now = this.#clock();
    for (const d of this.#armed) {
      if (d.expiresAt > now) continue;
      this.#armed.delete(d);
      d.expire();
    }
    if (this.#armed.size === 0) this.close();
  };

  /** Stops ticking; armed deadlines stay armed and resume with the next `arm()`. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
