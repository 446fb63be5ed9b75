/**
 * A Worker for conn_slots_test.ts (`enqueueNone`: see SlotsJob): claims the job's key in its own row (`claimOnly`: says it
 * begins, then posts the cell, nothing else), says it is ready, waits
 * on a shared start flag, then takes a slot `takes` times, counting the holders in a shared
 * word while it holds one (a holder count above the cap is recorded), gives it back, and posts
 * how many tries it needed.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { SlotsJob } from "./_conn_slots_job.ts";
import { ConnSlots } from "./conn_slots.ts";

self.onmessage = (e: MessageEvent<SlotsJob>) => {
  const job = e.data;
  const slots = new ConnSlots(job.table, job.worker);
  const control = new Int32Array(job.control);
  if (job.claimOnly) {
    Atomics.add(control, 1, 1); // claiming now
    return self.postMessage(slots.claim(job.key));
  }
  const cell = slots.claim(job.key);
  Atomics.add(control, 1, 1); // ready
  Atomics.wait(control, 0, 0); // until the test sets the start flag
  if (job.enqueueNone) {
    let let_in = 0;
    for (let n = 0; n < job.takes; n++) if (slots.enqueue(cell, 0)) let_in++;
    Atomics.store(control, 2, 1);
    slots.unclaim(cell);
    return self.postMessage(let_in);
  }
  let tries = 0;
  for (let taken = 0; taken < job.takes;) {
    tries++;
    if (!slots.take(cell, job.max, false)) {
      Atomics.wait(control, 4, 0, 0.05); // yield the core (a holder may be waiting for it)
      continue;
    }
    taken++;
    if (Atomics.add(control, 2, 1) + 1 > job.max) Atomics.store(control, 3, 1);
    // Held a while, so that holders on other cores overlap if the cap let them in.
    for (let i = 0; i < 200; i++) Atomics.load(control, 2);
    Atomics.sub(control, 2, 1);
    slots.adjust(cell, -1, 0);
  }
  slots.unclaim(cell);
  self.postMessage(tries);
};
