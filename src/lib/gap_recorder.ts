/**
 * Gaps between events of one source, as a receiver sees them: a follower marks each heartbeat
 * it steps (src/cluster/_core.ts) with its leader and term, and `GET /v1/berth/loop` reads the
 * interval between consecutive heartbeats of the same leader and term, so a bench sees whether
 * heartbeats keep their interval under load (one longer than the election timeout would start
 * an election). A new source (another leader, a new term) starts over without a gap.
 *
 * @module
 */

/** The gaps since the recorder started or was last reset (ms, 0.01 ms steps; null: none). */
export interface GapReport {
  gaps: number;
  p50Ms: number | null;
  p99Ms: number | null;
  worstMs: number | null;
}

/** Gaps kept for the percentiles by default (the worst counts every gap). */
export const GAPS_KEPT = 4096;

export class GapRecorder {
  readonly #kept: Float64Array;
  #source: string | undefined;
  #last = 0;
  #count = 0;
  #worst = 0;

  /** Keeps the last `keep` gaps for the percentiles. */
  constructor(keep = GAPS_KEPT) {
    if (!Number.isInteger(keep) || keep < 1) throw new Error(`GapRecorder: keep ${keep}`);
    this.#kept = new Float64Array(keep);
  }

  /** An event of `source` at `now` (ms, a monotonic clock). */
  mark(source: string, now: number): void {
    if (source === this.#source) {
      const gap = Math.max(0, now - this.#last);
      this.#kept[this.#count % this.#kept.length] = gap;
      this.#count++;
      if (gap > this.#worst) this.#worst = gap;
    }
    this.#source = source;
    this.#last = now;
  }

  read(): GapReport {
    if (this.#count === 0) return { gaps: 0, p50Ms: null, p99Ms: null, worstMs: null };
    const n = Math.min(this.#count, this.#kept.length);
    const sorted = this.#kept.slice(0, n).sort();
    const at = (q: number) => round(sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]!);
    return { gaps: this.#count, p50Ms: at(0.5), p99Ms: at(0.99), worstMs: round(this.#worst) };
  }

  /** Forgets the gaps (the next event of the current source still measures from the last). */
  reset(): void {
    this.#count = 0;
    this.#worst = 0;
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
