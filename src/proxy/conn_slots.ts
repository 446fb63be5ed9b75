/**
 * `berth.http.max-conns` counted once for the whole member (README "Per-service limits"): the
 * requests in flight to each capped instance and the ones waiting for it, in a fixed table
 * inside a SharedArrayBuffer that every proxy worker counts in, so that `max-conns=N` allows N
 * in flight whichever workers the kernel gave the clients to. The main thread allocates it
 * (`ConnSlots.create`) and hands it to each worker with its index in the start message; a proxy
 * on the main thread (one worker) counts in a table of its own through the same calls.
 *
 * Cells: a target (`Target.key`, as a 64-bit hash) lives in one of the GROUP_CELLS cells of the
 * group its hash picks. A worker refers to the cell while it has a pool for the target
 * (`claim` … `unclaim`); a cell no worker refers to is free for another key. Claims take the
 * group's lock (an Int32 taken with `Atomics.compareExchange`, holding the holder's index + 1;
 * never taken from its holder: a dead worker's is freed by `reclaim`); everything else is
 * lock-free. When all cells of a group are referred to, `claim` gives -1 and
 * that target is capped per worker as before (UpstreamPool logs it and claims again later).
 *
 * Counts: each worker has its own row (per cell: requests it holds in flight, requests it has
 * waiting, whether it refers to the cell), written by that worker only; the totals are the sums
 * over the rows. So a worker that dies cannot leak: the main thread zeroes its row (`reclaim`)
 * and the totals drop by what it held. A row below 0 counts as 0: a terminated worker's last
 * write may land after the first reclaim (V8 stops it asynchronously), and a late `sub` must
 * not cancel another worker's count (a late `add` only keeps a slot until the second reclaim,
 * before its replacement starts).
 *
 * Admission (`take`) adds 1 to the worker's own count first, then sums every row, and takes the
 * 1 back when the sum is over the cap. Atomics are sequentially consistent, so of requests held
 * at once the one whose add came last saw all the others' adds: the cap is never exceeded. Two
 * workers adding at the same instant may both take theirs back (neither is admitted); the
 * request then waits in its worker's queue and is woken by the next change, as below.
 *
 * Queue and wake-ups: requests that find the instance at its cap wait in their own worker's
 * queue (UpstreamPool); the total waiting is bounded by the service's queue the same way
 * (`enqueue`). Every change that can let a waiting request in (a slot given back, a waiting
 * request gone, a worker reclaimed) adds 1 to the cell's generation and notifies it
 * (`Atomics.notify`); a worker with requests waiting reads the generation before it tries
 * (`generation`), then waits on it (`Atomics.waitAsync` from that value, `wake`): a change after
 * the read ends the wait at once, so none is lost. The wait also ends after WAKE_POLL_MS, a
 * bounded fallback.
 *
 * Fairness: while any worker has requests waiting for a cell, a new request queues too (no
 * queue jumping), and a freed slot goes to waiting requests by turns: the cell names the worker
 * whose turn it is (the first to have a request waiting when the one named has none); another
 * worker's waiting request may take a slot only when that worker has none waiting. The worker
 * that takes one passes the turn to the next worker (by index) with requests waiting. So each worker with requests waiting gets at least one of every W slots
 * freed (W workers), and a request waits at most its own worker's queue ahead of it plus W − 1
 * turns per place. A worker releasing a connection may hand it on to its own next waiting
 * request only when the turn allows it (`handOn`); otherwise the slot is given back.
 *
 * Memory: fixed at creation: 16 + 4 × groups + cells × (16 + 12 × workers) bytes (the default
 * 16,384 cells: 0.7 MiB for 2 workers, 12.3 MiB for 64).
 *
 * @module
 */

import { hashKey } from "./middleware/rate_buckets.ts";

/** Cells of one group: a key lives in one group, in any of its cells. */
export const GROUP_CELLS = 8;
/** Groups of the default table: 2,048 × 8 = 16,384 capped targets per member. */
export const CONN_GROUPS_DEFAULT = 2048;
/** Longest wait for a wake-up before the queue is tried again anyway (a bounded fallback). */
export const WAKE_POLL_MS = 100;
/**
 * Failed tries for a group lock before each further try waits on the lock's word (up to
 * LOCK_WAIT_MS) instead of spinning. A lock is never taken from its holder: a live one (maybe
 * descheduled mid-claim) frees it, and `reclaim` frees the locks of a dead one.
 */
export const LOCK_SPINS = 1 << 10;
/** Longest wait on a held group lock's word before the next try (the unlock also notifies). */
const LOCK_WAIT_MS = 1;

/** Int32 fields of a cell: key (two words), generation, turn. */
const CELL_INTS = 4;
const KEY_HI = 0;
const KEY_LO = 1;
const GEN = 2;
const TURN = 3;
/** Int32 fields of a worker's row per cell: in flight, waiting, refers. */
const ROW_INTS = 3;
const BUSY = 0;
const WAITING = 1;
const REFS = 2;
/** Tries of `take` when its add met another worker's at the same instant. */
const TAKE_TRIES = 3;
/** Header: magic, workers, groups, unused. */
const HEADER_INTS = 4;
const MAGIC = 0x636f6e6e; // "conn"

/** See the module doc. One instance per thread, for worker `worker` of the table's workers. */
export class ConnSlots {
  readonly buffer: SharedArrayBuffer;
  /** Workers counting in the table (rows). */
  readonly workers: number;
  /** The row this thread counts in. */
  readonly worker: number;
  readonly cells: number;
  readonly #i: Int32Array;
  readonly #groups: number;
  /** Index of the first lock, first cell, first row. */
  readonly #locks: number;
  readonly #cellsAt: number;
  readonly #rowsAt: number;

  /** A new table for `workers` rows of `groups` × GROUP_CELLS cells. */
  static create(workers: number, groups = CONN_GROUPS_DEFAULT): SharedArrayBuffer {
    if (!Number.isInteger(workers) || workers < 1) throw new Error(`bad worker count ${workers}`);
    if (!Number.isInteger(groups) || groups < 1) throw new Error(`bad group count ${groups}`);
    const cells = groups * GROUP_CELLS;
    const ints = HEADER_INTS + groups + cells * CELL_INTS + cells * ROW_INTS * workers;
    const buffer = new SharedArrayBuffer(ints * 4);
    const i = new Int32Array(buffer);
    i[0] = MAGIC;
    i[1] = workers;
    i[2] = groups;
    return buffer;
  }

  /** Worker `worker`'s view of the table in `buffer` (made by `create`, maybe elsewhere). */
  constructor(buffer: SharedArrayBuffer, worker: number) {
    const i = new Int32Array(buffer);
    if (i.length < HEADER_INTS || i[0] !== MAGIC) {
      throw new Error(`not a connection slot table: ${buffer.byteLength} bytes`);
    }
    const workers = i[1]!;
    const groups = i[2]!;
    if (!Number.isInteger(worker) || worker < 0 || worker >= workers) {
      throw new Error(`bad worker index ${worker} of ${workers}`);
    }
    this.buffer = buffer;
    this.workers = workers;
    this.worker = worker;
    this.cells = groups * GROUP_CELLS;
    this.#i = i;
    this.#groups = groups;
    this.#locks = HEADER_INTS;
    this.#cellsAt = this.#locks + groups;
    this.#rowsAt = this.#cellsAt + this.cells * CELL_INTS;
  }

  /**
   * The cell of `key` for this worker, referred to until `unclaim`: its own if a worker holds
   * one, else a free cell of its group (counts zero, its turn reset); -1 when the group has none.
   */
  claim(key: string): number {
    const [hi, lo, g] = keyWords(key, this.#groups);
    const i = this.#i;
    this.#lock(g);
    try {
      let free = -1;
      for (let c = g * GROUP_CELLS; c < (g + 1) * GROUP_CELLS; c++) {
        const at = this.#cellsAt + c * CELL_INTS;
        if (i[at + KEY_HI] === hi && i[at + KEY_LO] === lo && this.#sum(c, REFS) > 0) {
          Atomics.add(i, this.#row(this.worker, c) + REFS, 1);
          return c;
        }
        if (free < 0 && this.#sum(c, REFS) === 0) free = c;
      }
      if (free < 0) return -1;
      const at = this.#cellsAt + free * CELL_INTS;
      // No worker refers to it, so none counts in it (`reclaim` zeroes a dead one's row).
      Atomics.store(i, at + KEY_HI, hi);
      Atomics.store(i, at + KEY_LO, lo);
      Atomics.store(i, at + TURN, 0);
      Atomics.add(i, this.#row(this.worker, free) + REFS, 1);
      return free;
    } finally {
      Atomics.compareExchange(i, this.#locks + g, this.worker + 1, 0);
      Atomics.notify(i, this.#locks + g);
    }
  }

  /** This worker no longer refers to cell `c` (its counts there must be zero by now). */
  unclaim(c: number): void {
    Atomics.sub(this.#i, this.#row(this.worker, c) + REFS, 1);
  }

  /** The cell `key` has now, without claiming it (a read that may miss a claim under way); -1: none. */
  find(key: string): number {
    const [hi, lo, g] = keyWords(key, this.#groups);
    const i = this.#i;
    for (let c = g * GROUP_CELLS; c < (g + 1) * GROUP_CELLS; c++) {
      const at = this.#cellsAt + c * CELL_INTS;
      // A cell the key had before, no longer referred to, may still carry it: skip it.
      if (
        Atomics.load(i, at + KEY_HI) === hi && Atomics.load(i, at + KEY_LO) === lo &&
        this.#sum(c, REFS) > 0
      ) return c;
    }
    return -1;
  }

  /** Requests in flight in cell `c`, all workers. */
  busy(c: number): number {
    return this.#sum(c, BUSY);
  }

  /** Requests waiting for cell `c`, all workers. */
  waiting(c: number): number {
    return this.#sum(c, WAITING);
  }

  /** This worker's own counts in cell `c` (tests, reports). */
  own(c: number): { busy: number; waiting: number } {
    const r = this.#row(this.worker, c);
    return { busy: Atomics.load(this.#i, r + BUSY), waiting: Atomics.load(this.#i, r + WAITING) };
  }

  /**
   * Takes a slot of cell `c` under `max` for this worker: true when taken. A new request
   * (`queued` false) never takes one while any request waits; a waiting one only in its
   * worker's turn (or when the worker whose turn it is has none waiting), and then passes the
   * turn on.
   */
  take(c: number, max: number, queued: boolean): boolean {
    const i = this.#i;
    if (queued ? !this.#myTurn(c) : this.#sum(c, WAITING) > 0) return false;
    const r = this.#row(this.worker, c) + BUSY;
    for (let tries = 1;; tries++) {
      Atomics.add(i, r, 1);
      if (this.#sum(c, BUSY) <= max) break;
      Atomics.sub(i, r, 1);
      // Full, unless another worker's add met this one (it takes its own back too).
      if (this.#sum(c, BUSY) >= max) return false;
      if (tries === TAKE_TRIES) {
        this.#bump(c); // a slot is free: the waiting try again
        return false;
      }
    }
    if (queued) this.#passTurn(c);
    return true;
  }

  /**
   * Whether this worker may hand a connection it releases in cell `c` on to its own next
   * waiting request (keeping the slot): in its turn, or when the worker whose turn it is has
   * none waiting, and only while the cell's requests in flight (the released one still
   * counted) are within `max` (a lowered cap); then the turn passes on.
   */
  handOn(c: number, max: number): boolean {
    if (this.#sum(c, BUSY) > max || !this.#myTurn(c)) return false;
    this.#passTurn(c);
    return true;
  }

  /**
   * Adds `busy` to this worker's requests in flight in cell `c` and `waiting` to its waiting
   * ones, without the caps (what a pool counted already); a count that goes down wakes the
   * waiting.
   */
  adjust(c: number, busy: number, waiting: number): void {
    const r = this.#row(this.worker, c);
    if (busy !== 0) Atomics.add(this.#i, r + BUSY, busy);
    if (waiting !== 0) Atomics.add(this.#i, r + WAITING, waiting);
    if (busy < 0 || waiting < 0) this.#bump(c);
  }

  /**
   * One more request of this worker waits for cell `c`, unless `queueMax` (or more) already
   * do: true when it may.
   */
  enqueue(c: number, queueMax: number): boolean {
    // Not even for a moment: another worker's new request would see one waiting and queue
    // (here: be turned away) instead of taking a slot that may be free.
    if (queueMax <= 0) return false;
    const i = this.#i;
    const r = this.#row(this.worker, c) + WAITING;
    for (let tries = 1;; tries++) {
      Atomics.add(i, r, 1);
      if (this.#sum(c, WAITING) <= queueMax) {
        // The first to wait while the worker whose turn it is has none waiting gets the turn.
        const turn = this.#cellsAt + c * CELL_INTS + TURN;
        const t = Atomics.load(i, turn);
        if (t !== this.worker && Atomics.load(i, this.#row(t, c) + WAITING) <= 0) {
          Atomics.compareExchange(i, turn, t, this.worker);
        }
        return true;
      }
      Atomics.sub(i, r, 1);
      // Full, unless another worker's add met this one (it takes its own back too).
      if (tries === TAKE_TRIES || this.#sum(c, WAITING) >= queueMax) return false;
    }
  }

  /** The cell's generation: read it before trying, then `wake` from it. */
  generation(c: number): number {
    return Atomics.load(this.#i, this.#cellsAt + c * CELL_INTS + GEN);
  }

  /**
   * Resolves once cell `c`'s generation is no longer `gen`, or after `timeoutMs`; null when it
   * already changed (try again now).
   */
  wake(c: number, gen: number, timeoutMs = WAKE_POLL_MS): Promise<unknown> | null {
    const r = Atomics.waitAsync(this.#i, this.#cellsAt + c * CELL_INTS + GEN, gen, timeoutMs);
    return r.async ? r.value : null;
  }

  /**
   * Worker `worker` is gone (main thread, after it stopped, and again before its replacement
   * starts): its row is zeroed, locks it held are freed, and cells it counted in are woken.
   * Returns the slots it held.
   */
  reclaim(worker: number): number {
    if (!Number.isInteger(worker) || worker < 0 || worker >= this.workers) return 0;
    const i = this.#i;
    let held = 0;
    const zero = (at: number) => Atomics.load(i, at) === 0 ? 0 : Atomics.exchange(i, at, 0);
    for (let c = 0; c < this.cells; c++) {
      // Read first: a row never written stays untouched memory (no page of it is dirtied).
      const r = this.#row(worker, c);
      const busy = zero(r + BUSY);
      const waiting = zero(r + WAITING);
      zero(r + REFS);
      held += busy;
      if (busy !== 0 || waiting !== 0) this.#bump(c);
    }
    for (let g = 0; g < this.#groups; g++) {
      const at = this.#locks + g;
      if (Atomics.compareExchange(i, at, worker + 1, 0) === worker + 1) Atomics.notify(i, at);
    }
    return held;
  }

  #row(w: number, c: number): number {
    return this.#rowsAt + (w * this.cells + c) * ROW_INTS;
  }

  /**
   * The field's total over the rows, each row taken as at least 0: only a worker terminated
   * after `reclaim` zeroed its row can leave one below (its last `sub` landing late), which
   * would otherwise cancel another worker's count until the next reclaim.
   */
  #sum(c: number, field: number): number {
    const i = this.#i;
    const stride = this.cells * ROW_INTS;
    let n = 0;
    for (let at = this.#rowsAt + c * ROW_INTS + field, w = 0; w < this.workers; w++) {
      const v = Atomics.load(i, at);
      if (v > 0) n += v;
      at += stride;
    }
    return n;
  }

  #myTurn(c: number): boolean {
    const t = Atomics.load(this.#i, this.#cellsAt + c * CELL_INTS + TURN);
    return t === this.worker || t >= this.workers ||
      Atomics.load(this.#i, this.#row(t, c) + WAITING) <= 0;
  }

  /** The turn goes to the next worker after this one with requests waiting (else stays). */
  #passTurn(c: number): void {
    const i = this.#i;
    for (let k = 1; k < this.workers; k++) {
      const w = (this.worker + k) % this.workers;
      if (Atomics.load(i, this.#row(w, c) + WAITING) > 0) {
        Atomics.store(i, this.#cellsAt + c * CELL_INTS + TURN, w);
        return;
      }
    }
    Atomics.store(i, this.#cellsAt + c * CELL_INTS + TURN, this.worker);
  }

  #bump(c: number): void {
    const at = this.#cellsAt + c * CELL_INTS + GEN;
    Atomics.add(this.#i, at, 1);
    Atomics.notify(this.#i, at);
  }

  /** Takes group `g`'s lock, however long its holder keeps it (see LOCK_SPINS). */
  #lock(g: number): void {
    const i = this.#i;
    const at = this.#locks + g;
    for (let spins = 0;; spins++) {
      const holder = Atomics.compareExchange(i, at, 0, this.worker + 1);
      if (holder === 0) return;
      // Sleeping leaves the core to a holder that may need it.
      if (spins >= LOCK_SPINS) Atomics.wait(i, at, holder, LOCK_WAIT_MS);
    }
  }
}

/** The key's 64-bit hash (rate_buckets.ts's) as the two Int32 words a cell stores, and its group. */
function keyWords(key: string, groups: number): [number, number, number] {
  const [hi, lo] = hashKey(key);
  return [hi | 0, lo | 0, lo % groups];
}
