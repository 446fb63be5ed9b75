import assert from "node:assert/strict";
import { LoopProbe, type ProbeTimers } from "./loop_probe.ts";

/** A clock that moves only when told, with one pending timer at most (the probe's chain). */
function fakeTimers() {
  let now = 1000;
  let pending: { fn: () => void; handle: number } | null = null;
  let next = 1;
  const timers: ProbeTimers = {
    now: () => now,
    set: (fn) => {
      pending = { fn, handle: next++ };
      return pending.handle;
    },
    clear: (h) => {
      if (pending !== null && pending.handle === h) pending = null;
    },
  };
  return {
    timers,
    get armed() {
      return pending !== null;
    },
    /** Moves the clock by `ms`, then fires the pending timer. */
    fireAfter(ms: number) {
      now += ms;
      const p = pending;
      assert.ok(p !== null, "no timer armed");
      pending = null;
      p.fn();
    },
    advance(ms: number) {
      now += ms;
    },
  };
}

Deno.test("LoopProbe.read() reports the latest a timer fired after it was due", () => {
  const t = fakeTimers();
  const probe = new LoopProbe({ intervalMs: 1, timers: t.timers });
  probe.start();
  t.fireAfter(1); // on time
  t.fireAfter(13.5); // 12.5 ms late
  t.fireAfter(2); // 1 ms late
  t.fireAfter(61); // 60 ms late
  t.fireAfter(1);
  assert.deepEqual(probe.read(), {
    worstPauseMs: 60,
    sinceMs: 79, // 78.5 ms, rounded
    pausesOver10Ms: 2,
    pausesOver50Ms: 1,
  });
  probe.stop();
});

Deno.test("LoopProbe.reset() zeroes the figures and counts sinceMs from then", () => {
  const t = fakeTimers();
  const probe = new LoopProbe({ timers: t.timers });
  probe.start();
  t.fireAfter(30);
  assert.equal(probe.read().worstPauseMs, 29);
  probe.reset();
  t.fireAfter(3);
  t.advance(7);
  assert.deepEqual(probe.read(), {
    worstPauseMs: 2,
    sinceMs: 10,
    pausesOver10Ms: 0,
    pausesOver50Ms: 0,
  });
  probe.stop();
});

Deno.test("LoopProbe.stop() clears its timer; start() runs the chain again", () => {
  const t = fakeTimers();
  const probe = new LoopProbe({ timers: t.timers });
  assert.equal(probe.running, false);
  probe.start();
  assert.equal(t.armed, true);
  probe.start(); // no second chain
  probe.stop();
  assert.equal(t.armed, false);
  assert.equal(probe.running, false);
  probe.start();
  assert.equal(t.armed, true);
  probe.stop();
});

Deno.test("LoopProbe with real timers notices a blocked event loop", async () => {
  const probe = new LoopProbe();
  probe.start();
  await new Promise((r) => setTimeout(r, 5));
  const until = performance.now() + 30;
  while (performance.now() < until) { /* the loop is busy */ }
  await new Promise((r) => setTimeout(r, 5));
  const r = probe.read();
  probe.stop();
  assert.ok(r.worstPauseMs >= 25, `worst ${r.worstPauseMs} ms after a 30 ms block`);
});
