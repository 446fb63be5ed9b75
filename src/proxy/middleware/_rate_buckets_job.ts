/**
 * What rate_buckets_test.ts sends each hammering Worker (_rate_buckets_worker.ts). Apart from the
 * worker so the test imports no module with `lib="deno.worker"` (that lib would change the types
 * every test file is checked with: `fetch`'s `client` option, for one).
 *
 * @module
 */

export interface HammerJob {
  table: SharedArrayBuffer;
  /** Int32 [start flag, clock ms, workers ready]. */
  control: SharedArrayBuffer;
  key: string;
  perSecond: number;
  burst: number;
  calls: number;
  /** Advance the shared clock by 1 ms per call; else time stays at 0. */
  advance: boolean;
}
