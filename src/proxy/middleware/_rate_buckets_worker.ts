/**
 * A Worker for rate_buckets_test.ts: says it is ready, waits on a shared start flag, then calls
 * `take()` on one key `calls` times and posts how many it admitted. Time is either fixed
 * (`advance` false) or a shared counter each call advances by 1 ms, so the test counts tokens,
 * not time.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { HammerJob } from "./_rate_buckets_job.ts";
import { RateBuckets } from "./rate_buckets.ts";

self.onmessage = (e: MessageEvent<HammerJob>) => {
  const job = e.data;
  const buckets = new RateBuckets(job.table);
  const control = new Int32Array(job.control);
  Atomics.add(control, 2, 1); // ready
  Atomics.wait(control, 0, 0); // until the test sets the start flag
  const limit = { perSecond: job.perSecond, burst: job.burst };
  let admitted = 0;
  for (let i = 0; i < job.calls; i++) {
    const now = job.advance ? Atomics.add(control, 1, 1) + 1 : 0;
    if (buckets.take(job.key, limit, now) === 0) admitted++;
  }
  self.postMessage(admitted);
};
