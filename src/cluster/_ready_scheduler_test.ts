import assert from "node:assert/strict";
import { ReadyScheduler } from "./_ready_scheduler.ts";

/** Deferred functions, run by hand: `flush()` runs turns until none is due (at most `max`). */
function turns() {
  let queue: (() => void)[] = [];
  return {
    defer: (fn: () => void) => void queue.push(fn),
    async flush(max = 100): Promise<number> {
      let n = 0;
      while (queue.length > 0 && n < max) {
        const q = queue;
        queue = [];
        for (const fn of q) fn();
        n++;
        await new Promise((r) => setTimeout(r, 0)); // the runs' promises settle
      }
      return n;
    },
    get due(): number {
      return queue.length;
    },
  };
}

Deno.test("ReadyScheduler runs once per turn however often asked, and not again when nothing asked", async () => {
  const t = turns();
  let runs = 0;
  const s = new ReadyScheduler(() => {
    runs++;
    return Promise.resolve();
  }, t.defer);
  s.schedule();
  s.schedule();
  s.schedule();
  await t.flush();
  assert.equal(runs, 1);
  // A run that found nothing ready (it never called served()) does not schedule itself again.
  assert.equal(t.due, 0);
});

Deno.test("ReadyScheduler runs again after a run that was asked for meanwhile, never two at once", async () => {
  const t = turns();
  let runs = 0;
  let active = 0;
  let release: () => void = () => {};
  const s = new ReadyScheduler(async () => {
    runs++;
    active++;
    assert.equal(active, 1);
    if (runs === 1) await new Promise<void>((r) => release = r);
    active--;
  }, t.defer);
  s.schedule();
  await t.flush();
  assert.equal(runs, 1);
  s.schedule(); // a step while the first run waits (for the log writer)
  await t.flush();
  assert.equal(runs, 1);
  release();
  await new Promise((r) => setTimeout(r, 0));
  await t.flush();
  assert.equal(runs, 2);
  assert.equal(t.due, 0);
});

Deno.test("ReadyScheduler.stop() ends the runs", async () => {
  const t = turns();
  let runs = 0;
  const s = new ReadyScheduler(() => {
    runs++;
    return Promise.resolve();
  }, t.defer);
  s.schedule();
  s.stop();
  s.schedule();
  await t.flush();
  assert.equal(runs, 0);
});
