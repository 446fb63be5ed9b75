import assert from "node:assert/strict";
import { CoarseClock, type Deadline, tickFor } from "./coarse_clock.ts";

Deno.test("CoarseClock.tick() expires due deadlines once, never early, moved ones later", () => {
  let now = 1_000;
  const clock = new CoarseClock(10, { now: () => now });
  try {
    const fired: string[] = [];
    const a: Deadline = { expiresAt: clock.after(50), expire: () => fired.push("a") };
    const b: Deadline = { expiresAt: clock.after(50), expire: () => fired.push("b") };
    const c: Deadline = { expiresAt: clock.after(20), expire: () => fired.push("c") };
    clock.arm(a);
    clock.arm(b);
    clock.arm(c);
    clock.disarm(c);
    now += 50;
    clock.tick();
    assert.deepEqual(fired, [], "not before ms + tickMs");
    b.expiresAt = clock.after(100);
    now += 10;
    clock.tick();
    assert.deepEqual(fired, ["a"]);
    now += 100;
    clock.tick();
    clock.tick();
    assert.deepEqual(fired, ["a", "b"], "each fires once; a disarmed one never");
    assert.equal(clock.size, 0);
  } finally {
    clock.close();
  }
});

Deno.test("CoarseClock ticks on its own while a deadline is armed", async () => {
  const clock = new CoarseClock(5);
  try {
    const fired = Promise.withResolvers<void>();
    clock.arm({ expiresAt: clock.after(10), expire: () => fired.resolve() });
    await fired.promise;
    assert.equal(clock.size, 0);
  } finally {
    clock.close();
  }
});

Deno.test("tickFor() is a tenth of the timeout, within 1 ms … 1 s", () => {
  assert.equal(tickFor(50), 5);
  assert.equal(tickFor(60_000), 1_000);
  assert.equal(tickFor(3), 1);
});
