/**
 * Slow start (`berth.http.slow-start=DURATION`): an instance that becomes served again (new,
 * back from failing checks, or at the end of an ejection) gets its weight ramped linearly from
 * 10% to full over the duration, so a cold instance is not handed its whole share at once. Every
 * policy weighs with it (balancer.ts `weight`).
 *
 * When each target key began is kept here, by the proxy's upstream pool, so that it outlives
 * route tables (a rebuild does not restart a ramp). A full rebuild (start, snapshot install)
 * starts no ramp: only route changes and ejections do. Each proxy worker keeps its own clock
 * from the same route changes and ejections, so they ramp alike. The clock is monotonic
 * (`performance.now`): a step of the wall clock neither holds nor ends a ramp; it is read only
 * for a target that is ramping.
 *
 * @module
 */
import type { Target } from "./balancer.ts";

/** The share of its weight an instance gets when its ramp begins. */
export const SLOW_START_FLOOR = 0.1;
/** Longest ramp kept (the longest `berth.http.slow-start`, route_keys_lb.ts): older ends drop. */
export const SLOW_START_KEPT_MS = 3_600_000;
/** Marks between sweeps of ended ramps. */
const SWEEP_EVERY = 256;

/** When each target began its ramp. */
export class SlowStart {
  readonly #since = new Map<string, number>();
  readonly #now: () => number;
  #marks = 0;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Ramps kept (for tests). */
  get size(): number {
    return this.#since.size;
  }

  /** Target `key` is served again `afterMs` from now (an ejection's end may be later). */
  began(key: string, afterMs = 0): void {
    this.#since.set(key, this.#now() + afterMs);
    if (++this.#marks % SWEEP_EVERY === 0) this.#sweep();
  }

  /** `t`'s weight now for a ramp of `rampMs`: from 10% at its start to full at its end. */
  weight = (t: Target, rampMs: number): number => {
    if (this.#since.size === 0) return t.weight;
    const since = this.#since.get(t.key);
    if (since === undefined) return t.weight;
    const elapsed = this.#now() - since;
    if (elapsed >= rampMs) return t.weight;
    const share = SLOW_START_FLOOR + (1 - SLOW_START_FLOOR) * Math.max(0, elapsed) / rampMs;
    return t.weight * share;
  };

  #sweep(): void {
    const before = this.#now() - SLOW_START_KEPT_MS;
    for (const [key, since] of this.#since) if (since < before) this.#since.delete(key);
  }
}
