/**
 * The event-loop probe: a chain of 1 ms timers that records how late each one fired. A timer
 * that fires 40 ms late means the loop was busy (an apply, a rebuild, a GC) for ~40 ms, and no
 * DNS answer or proxied byte moved meanwhile. The agent runs it only with `BERTH_LOOP_PROBE=1`
 * (the benches set it: 1,000 wake-ups a second are not free); `GET /v1/berth/loop` reads it.
 *
 * @module
 */

/** What the probe saw since it started or was last reset. */
export interface LoopReport {
  /** The latest a timer fired after it was due, in ms (0.01 ms steps). */
  worstPauseMs: number;
  /** How long the probe has watched, in ms (since start or the last reset). */
  sinceMs: number;
  /** Timers that fired more than 10 ms late. */
  pausesOver10Ms: number;
  /** Timers that fired more than 50 ms late. */
  pausesOver50Ms: number;
}

/** The clock and timers the probe runs on (injected in tests). */
export interface ProbeTimers {
  /** A monotonic clock in ms (default performance.now). */
  now(): number;
  /** Calls `fn` once after `ms`; returns a handle for `clear` (default: an unref'd setTimeout). */
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface LoopProbeOptions {
  /** The period of the timer chain, ms (default 1). */
  intervalMs?: number;
  timers?: ProbeTimers;
}

const REAL_TIMERS: ProbeTimers = {
  now: () => performance.now(),
  set: (fn, ms) => {
    const id = setTimeout(fn, ms);
    Deno.unrefTimer(Number(id)); // the probe never keeps a process alive
    return id;
  },
  clear: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};

export class LoopProbe {
  readonly #intervalMs: number;
  readonly #timers: ProbeTimers;
  #handle: unknown = null;
  /** When the armed timer is due. */
  #dueAt = 0;
  #since = 0;
  #worst = 0;
  #over10 = 0;
  #over50 = 0;

  constructor(opts: LoopProbeOptions = {}) {
    this.#intervalMs = opts.intervalMs ?? 1;
    this.#timers = opts.timers ?? REAL_TIMERS;
  }

  /** Starts the timer chain (again: no-op while it runs) and resets the figures. */
  start(): void {
    if (this.#handle !== null) return;
    this.reset();
    this.#arm();
  }

  stop(): void {
    if (this.#handle !== null) this.#timers.clear(this.#handle);
    this.#handle = null;
  }

  get running(): boolean {
    return this.#handle !== null;
  }

  read(): LoopReport {
    return {
      worstPauseMs: Math.round(this.#worst * 100) / 100,
      sinceMs: Math.round(this.#timers.now() - this.#since),
      pausesOver10Ms: this.#over10,
      pausesOver50Ms: this.#over50,
    };
  }

  /** Zeroes the figures; `sinceMs` counts from now. */
  reset(): void {
    this.#since = this.#timers.now();
    this.#worst = 0;
    this.#over10 = 0;
    this.#over50 = 0;
  }

  #arm(): void {
    this.#dueAt = this.#timers.now() + this.#intervalMs;
    this.#handle = this.#timers.set(() => this.#fired(), this.#intervalMs);
  }

  #fired(): void {
    const late = Math.max(0, this.#timers.now() - this.#dueAt);
    if (late > this.#worst) this.#worst = late;
    if (late > 10) this.#over10++;
    if (late > 50) this.#over50++;
    this.#arm();
  }
}
