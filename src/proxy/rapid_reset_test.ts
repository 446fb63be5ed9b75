import assert from "node:assert/strict";
import { RapidResetMeter } from "./rapid_reset.ts";

Deno.test("RapidResetMeter.reset() is over budget past resetsMax within one window", () => {
  let now = 1_000;
  const m = new RapidResetMeter({ resetsMax: 3, windowMs: 10_000, now: () => now });
  assert.deepEqual([m.reset(), m.reset(), m.reset()], [false, false, false]);
  now += 9_999;
  assert.equal(m.reset(), true);
});

Deno.test("RapidResetMeter.reset() starts counting again in a new window", () => {
  let now = 0;
  const m = new RapidResetMeter({ resetsMax: 2, windowMs: 1_000, now: () => now });
  m.reset();
  m.reset();
  now = 1_000;
  assert.equal(m.reset(), false);
  assert.equal(m.reset(), false);
  assert.equal(m.reset(), true);
});
