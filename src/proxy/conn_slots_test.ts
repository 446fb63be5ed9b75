import assert from "node:assert/strict";
import { ConnSlots, GROUP_CELLS } from "./conn_slots.ts";
import type { SlotsJob } from "./_conn_slots_job.ts";

/** Two workers' views of one new table. */
function twoWorkers(groups = 4): [ConnSlots, ConnSlots] {
  const buffer = ConnSlots.create(2, groups);
  return [new ConnSlots(buffer, 0), new ConnSlots(buffer, 1)];
}

Deno.test("ConnSlots.take() holds the cap over every worker's row; adjust() gives a slot back", () => {
  const [a, b] = twoWorkers();
  const c = a.claim("web|10.0.0.1|80");
  assert.equal(b.claim("web|10.0.0.1|80"), c, "both workers agree on the cell");
  assert.equal(a.take(c, 2, false), true);
  assert.equal(b.take(c, 2, false), true);
  assert.equal(a.take(c, 2, false), false, "2 in flight: the cap");
  assert.equal(b.take(c, 2, false), false);
  assert.equal(a.busy(c), 2);
  assert.deepEqual(a.own(c), { busy: 1, waiting: 0 });
  b.adjust(c, -1, 0);
  assert.equal(a.take(c, 2, false), true, "b's slot, given back, is a's");
  assert.deepEqual(a.own(c), { busy: 2, waiting: 0 });
  assert.deepEqual(b.own(c), { busy: 0, waiting: 0 });
});

Deno.test("ConnSlots.take() lets no new request past requests waiting in any worker", () => {
  const [a, b] = twoWorkers();
  const c = a.claim("k");
  b.claim("k");
  assert.equal(b.enqueue(c, 10), true);
  assert.equal(a.take(c, 5, false), false, "b has a request waiting: a's new one queues");
  assert.equal(a.busy(c), 0);
  assert.equal(b.take(c, 5, true), true, "the waiting one takes the slot");
  b.adjust(c, 0, -1);
  assert.equal(a.take(c, 5, false), true, "nobody waits: a new request goes on");
});

Deno.test("ConnSlots.enqueue() bounds the requests waiting over every worker", () => {
  const [a, b] = twoWorkers();
  const c = a.claim("k");
  b.claim("k");
  assert.equal(a.enqueue(c, 3), true);
  assert.equal(b.enqueue(c, 3), true);
  assert.equal(a.enqueue(c, 3), true);
  assert.equal(b.enqueue(c, 3), false, "3 wait: the queue is full");
  assert.equal(a.waiting(c), 3);
  a.adjust(c, 0, -1);
  assert.equal(b.enqueue(c, 3), true);
  assert.equal(a.enqueue(c, 0), false, "a queue of 0 takes none");
});

Deno.test("ConnSlots.take() of waiting requests goes by turns between the workers that have some", () => {
  const [a, b] = twoWorkers();
  const c = a.claim("k");
  b.claim("k");
  // Both have requests waiting; the cap is 1 and the slot free.
  a.enqueue(c, 10);
  a.enqueue(c, 10);
  b.enqueue(c, 10);
  b.enqueue(c, 10);
  assert.equal(a.take(c, 1, true), true, "worker 0's turn first");
  a.adjust(c, 0, -1);
  // a's request ends; a may not keep the slot for its next one: it is b's turn.
  assert.equal(a.handOn(c, 1), false);
  a.adjust(c, -1, 0);
  assert.equal(a.take(c, 1, true), false, "b's turn: a's waiting request stays");
  assert.equal(b.take(c, 1, true), true);
  b.adjust(c, 0, -1);
  assert.equal(b.handOn(c, 1), false, "b's request ends: a's turn, so b gives the slot back");
  b.adjust(c, -1, 0);
  assert.equal(a.take(c, 1, true), true);
  a.adjust(c, 0, -1); // a has none waiting now, b one
  assert.equal(a.handOn(c, 1), false, "b's turn");
  b.adjust(c, 0, -1); // b's last waiting request leaves
  assert.equal(a.handOn(c, 1), true, "nobody else waits: a may keep the slot");
});

Deno.test("ConnSlots.reclaim() zeroes a dead worker's row: its slots and queue places are free again", async () => {
  const [a, b] = twoWorkers();
  const c = a.claim("k");
  b.claim("k");
  assert.equal(b.take(c, 2, false), true);
  assert.equal(b.take(c, 2, false), true);
  assert.equal(b.enqueue(c, 5), true);
  assert.equal(a.enqueue(c, 5), true);
  assert.equal(a.take(c, 2, true), false, "b holds both");
  const gen = a.generation(c);
  const woken = a.wake(c, gen, 60_000);
  assert.notEqual(woken, null);
  assert.equal(a.reclaim(1), 2, "b held 2");
  assert.equal(await woken, "ok", "the waiting worker is woken");
  assert.equal(a.busy(c), 0);
  assert.equal(a.waiting(c), 1, "a's own waiting request stays counted");
  assert.equal(a.take(c, 2, true), true);
  // The cell stays a's (its reference is kept), and b's is gone with the row.
  assert.equal(b.find("k"), c);
  a.adjust(c, -1, -1);
  a.unclaim(c);
  assert.equal(a.find("k"), -1, "no worker refers to it: free");
});

Deno.test("ConnSlots.take() counts a dead worker's row left below 0 by a late write as 0: the cap holds", () => {
  const [a, b] = twoWorkers();
  const c = a.claim("k");
  b.claim("k");
  assert.equal(b.take(c, 1, false), true);
  a.reclaim(1); // b was terminated while it held the slot...
  b.adjust(c, -1, 0); // ...and its last write (the slot given back) landed after the reclaim
  assert.equal(a.take(c, 1, false), true);
  assert.equal(a.take(c, 1, false), false, "1 in flight: the cap, whatever b's row says");
  assert.equal(a.busy(c), 1);
  b.enqueue(c, 5);
  a.reclaim(1);
  b.adjust(c, 0, -2); // a late withdrawal of two waiting requests
  assert.equal(a.enqueue(c, 1), true);
  assert.equal(a.enqueue(c, 1), false, "the queue's bound holds too");
});

Deno.test("ConnSlots.reclaim() frees a group lock a dead worker held", () => {
  const buffer = ConnSlots.create(2, 1);
  const [a, b] = [new ConnSlots(buffer, 0), new ConnSlots(buffer, 1)];
  // Worker 1 died holding the lock of group 0 (the header is 4 Int32, then the locks).
  Atomics.store(new Int32Array(buffer), 4, 2);
  b.reclaim(1);
  assert.equal(a.claim("k") >= 0, true, "claims at once");
});

/**
 * Starts a Worker that claims `key` as worker `worker` of `table` while the test holds group
 * 0's lock; `claiming()` waits until it calls claim(), `done()` says whether that returned,
 * `cell` what it gave.
 */
function claimInWorker(table: SharedArrayBuffer, worker: number, key: string) {
  const w = new Worker(new URL("./_conn_slots_worker.ts", import.meta.url), { type: "module" });
  let answered = false;
  const cell = new Promise<number>((resolve, reject) => {
    w.onmessage = (e) => {
      answered = true;
      resolve(e.data as number);
    };
    w.onerror = (e) => reject(new Error(e.message));
  });
  const control = new SharedArrayBuffer(20);
  const job: SlotsJob = {
    table,
    worker,
    control,
    key,
    max: 1,
    takes: 0,
    claimOnly: true,
  };
  w.postMessage(job);
  /** Resolves once the Worker runs and calls claim() (its start may take a type check). */
  const claiming = async () => {
    while (Atomics.load(new Int32Array(control), 1) === 0) {
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { cell, claiming, done: () => answered, stop: () => w.terminate() };
}

/** Group 0's lock word (after the 4 Int32 of the header). */
const LOCK0 = 4;

Deno.test("ConnSlots.claim() waits for a live holder of its group lock, however long, and never takes it over", async () => {
  const table = ConnSlots.create(3, 1);
  const lock = new Int32Array(table);
  // Worker 0 (this thread) is alive and holds the lock, as when descheduled mid-claim. A
  // takeover after 2^20 tries came within 62-138 ms; a second is many times that.
  Atomics.store(lock, LOCK0, 1);
  const claimer = claimInWorker(table, 1, "k");
  try {
    await claimer.claiming();
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(claimer.done(), false, "still waiting: the lock is worker 0's");
    assert.equal(Atomics.load(lock, LOCK0), 1, "worker 0 still holds it");
    // Worker 0's claim ends as claim() ends one.
    Atomics.compareExchange(lock, LOCK0, 1, 0);
    Atomics.notify(lock, LOCK0);
    const c = await claimer.cell;
    assert.ok(c >= 0);
    assert.equal(new ConnSlots(table, 0).find("k"), c, "the claim went through after the release");
    assert.equal(Atomics.load(lock, LOCK0), 0, "and let the lock go");
  } finally {
    claimer.stop();
  }
});

Deno.test("ConnSlots.claim() waiting for a dead worker's group lock goes on once reclaim() frees it", async () => {
  const table = ConnSlots.create(3, 1);
  Atomics.store(new Int32Array(table), LOCK0, 3); // worker 2 died holding it
  const claimer = claimInWorker(table, 1, "k");
  try {
    await claimer.claiming();
    await new Promise((r) => setTimeout(r, 50));
    new ConnSlots(table, 0).reclaim(2); // the main thread, once it knows worker 2 is gone
    assert.ok(await claimer.cell >= 0);
  } finally {
    claimer.stop();
  }
});

Deno.test("ConnSlots.claim() keeps a key's cell while any worker refers to it, frees it after, and gives -1 in a full group", () => {
  const [a, b] = twoWorkers(1); // one group: GROUP_CELLS cells
  const keys = Array.from({ length: GROUP_CELLS }, (_, i) => `t${i}`);
  const cells = keys.map((k) => a.claim(k));
  assert.equal(new Set(cells).size, GROUP_CELLS, "distinct keys, distinct cells");
  assert.ok(cells.every((c) => c >= 0));
  assert.equal(b.claim("t3"), cells[3]);
  assert.equal(a.claim("t-extra"), -1, "the group is full");
  a.unclaim(cells[3]!);
  assert.equal(a.claim("t-extra"), -1, "b still refers to t3's cell");
  b.unclaim(cells[3]!);
  assert.equal(b.find("t3"), -1);
  assert.equal(a.claim("t-extra"), cells[3], "free again: the new key takes it");
});

Deno.test("ConnSlots.wake() resolves on a change after the generation was read, null when it had changed", async () => {
  const [a, b] = twoWorkers();
  const c = a.claim("k");
  b.claim("k");
  b.take(c, 1, false);
  const gen = a.generation(c);
  b.adjust(c, -1, 0); // before the wait begins: no wake-up is lost
  assert.equal(a.wake(c, gen), null);
  const gen2 = a.generation(c);
  // A pending Atomics.waitAsync does not keep Deno's event loop alive (a proxy's listeners do).
  const alive = setTimeout(() => {}, 10_000);
  try {
    assert.equal(await a.wake(c, gen2, 1), "timed-out", "nothing changed: the fallback poll");
  } finally {
    clearTimeout(alive);
  }
});

Deno.test("ConnSlots.take() from 3 Workers at once never lets more than the cap hold a slot", async () => {
  const workers = 3;
  const max = 1;
  const takes = 200;
  const table = ConnSlots.create(workers);
  const control = new SharedArrayBuffer(20);
  const ctl = new Int32Array(control);
  const ws = Array.from(
    { length: workers },
    () => new Worker(new URL("./_conn_slots_worker.ts", import.meta.url), { type: "module" }),
  );
  try {
    const done = ws.map((w, i) => {
      const job: SlotsJob = { table, worker: i, control, key: "hot", max, takes };
      const p = new Promise<number>((resolve, reject) => {
        w.onmessage = (e) => resolve(e.data as number);
        w.onerror = (e) => reject(new Error(e.message));
      });
      w.postMessage(job);
      return p;
    });
    while (Atomics.load(ctl, 1) < workers) await new Promise((r) => setTimeout(r, 5));
    Atomics.store(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    const tries = await Promise.all(done);
    assert.equal(Atomics.load(ctl, 3), 0, "never more holders than the cap");
    assert.ok(tries.every((t) => t >= takes), "every worker took all its slots");
    const view = new ConnSlots(table, 0);
    assert.equal(view.find("hot"), -1, "every worker let its cell go");
    const c = view.claim("hot");
    assert.equal(view.busy(c), 0, "every slot came back");
  } finally {
    for (const w of ws) w.terminate();
  }
});

Deno.test("ConnSlots.enqueue() with a queue of 0 never counts a request waiting, not even for a moment: another worker's new request takes the free slot", async () => {
  const table = ConnSlots.create(2);
  const control = new SharedArrayBuffer(20);
  const ctl = new Int32Array(control);
  const w = new Worker(new URL("./_conn_slots_worker.ts", import.meta.url), { type: "module" });
  try {
    const answered = new Promise<number>((resolve, reject) => {
      w.onmessage = (e) => resolve(e.data as number);
      w.onerror = (e) => reject(new Error(e.message));
    });
    const job: SlotsJob = {
      table,
      worker: 1,
      control,
      key: "k",
      max: 1,
      takes: 2_000_000,
      enqueueNone: true,
    };
    w.postMessage(job);
    const a = new ConnSlots(table, 0);
    const c = a.claim("k");
    while (Atomics.load(ctl, 1) === 0) await new Promise((r) => setTimeout(r, 5));
    Atomics.store(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    // While the other worker is turned away from its queue of 0 over and over, every new
    // request here finds the slot free.
    let tries = 0;
    let refused = 0;
    while (Atomics.load(ctl, 2) === 0 || tries < 1_000) {
      tries++;
      if (!a.take(c, 1, false)) refused++;
      else a.adjust(c, -1, 0);
    }
    assert.equal(await answered, 0, "a queue of 0 lets none wait");
    assert.equal(refused, 0, `refused ${refused} of ${tries} with the slot free`);
  } finally {
    w.terminate();
  }
});

Deno.test("ConnSlots rejects a buffer that is no table and a worker index outside it", () => {
  assert.throws(() => new ConnSlots(new SharedArrayBuffer(64), 0), /not a connection slot table/);
  assert.throws(() => new ConnSlots(ConnSlots.create(2, 1), 2), /bad worker index 2 of 2/);
  assert.throws(() => ConnSlots.create(0), /bad worker count 0/);
});
