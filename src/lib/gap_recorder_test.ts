import assert from "node:assert/strict";
import { GapRecorder } from "./gap_recorder.ts";

Deno.test("GapRecorder.read() answers nulls before two events of one source", () => {
  const g = new GapRecorder();
  assert.deepEqual(g.read(), { gaps: 0, p50Ms: null, p99Ms: null, worstMs: null });
  g.mark("1/3", 100);
  assert.deepEqual(g.read(), { gaps: 0, p50Ms: null, p99Ms: null, worstMs: null });
});

Deno.test("GapRecorder.read() answers the nearest-rank p50, p99 and worst gap of one source", () => {
  const g = new GapRecorder();
  let t = 0;
  g.mark("1/3", t);
  const big = new Map([[50, 700], [120, 900.123], [180, 800]]);
  for (let i = 1; i <= 200; i++) g.mark("1/3", t += big.get(i) ?? 100);
  // 197 gaps of 100 ms, then 700, 800, 900.123: the 198th of 200 (p99) is 700.
  assert.deepEqual(g.read(), { gaps: 200, p50Ms: 100, p99Ms: 700, worstMs: 900.12 });
  g.mark("1/3", t += 50);
  assert.deepEqual(g.read(), { gaps: 201, p50Ms: 100, p99Ms: 700, worstMs: 900.12 });
});

Deno.test("GapRecorder.mark() does not count the interval across a change of source", () => {
  const g = new GapRecorder();
  g.mark("1/3", 0);
  g.mark("1/3", 100);
  g.mark("2/4", 5000); // a new leader and term: no gap
  g.mark("2/4", 5100);
  assert.deepEqual(g.read(), { gaps: 2, p50Ms: 100, p99Ms: 100, worstMs: 100 });
});

Deno.test("GapRecorder.reset() forgets the gaps; the next event still measures from the last", () => {
  const g = new GapRecorder();
  g.mark("1/3", 0);
  g.mark("1/3", 2000);
  g.reset();
  assert.equal(g.read().gaps, 0);
  g.mark("1/3", 2150);
  assert.deepEqual(g.read(), { gaps: 1, p50Ms: 150, p99Ms: 150, worstMs: 150 });
});

Deno.test("GapRecorder keeps the last `keep` gaps for percentiles and every gap for the worst", () => {
  const g = new GapRecorder(4);
  let t = 0;
  g.mark("s", t);
  for (const gap of [1000, 10, 10, 10, 10]) g.mark("s", t += gap);
  assert.deepEqual(g.read(), { gaps: 5, p50Ms: 10, p99Ms: 10, worstMs: 1000 });
  assert.throws(() => new GapRecorder(0), /keep 0/);
});
