import assert from "node:assert/strict";
import { settleWithin, TrackedSet } from "./drain.ts";

Deno.test("TrackedSet.empty() resolves when the last member is deleted, not before", async () => {
  const s = new TrackedSet<string>();
  await s.empty(); // empty now: at once
  s.add("a").add("b");
  let done = false;
  const waiting = s.empty().then(() => done = true);
  s.delete("a");
  s.delete("zzz"); // not a member: changes nothing
  await Promise.resolve();
  assert.equal(done, false);
  s.delete("b");
  await waiting;
  assert.equal(done, true);
});

Deno.test("TrackedSet.clear() wakes its waiters", async () => {
  const s = new TrackedSet<number>([1, 2]);
  const waiting = s.empty();
  s.clear();
  await waiting;
  assert.equal(s.size, 0);
});

Deno.test("settleWithin() is true for a promise settled in time, false after the timeout", async () => {
  assert.equal(await settleWithin(Promise.resolve(), 1000), true);
  assert.equal(await settleWithin(new Promise(() => {}), 10), false);
});
