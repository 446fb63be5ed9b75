/**
 * What conn_slots_test.ts sends each hammering Worker (_conn_slots_worker.ts). Apart from the
 * worker so the test imports no module with `lib="deno.worker"`.
 *
 * @module
 */

export interface SlotsJob {
  /** The ConnSlots table. */
  table: SharedArrayBuffer;
  /** This Worker's row in it. */
  worker: number;
  /**
   * Int32 [start flag, workers ready, holders now (`enqueueNone`: done), cap exceeded seen,
   * 0 (to sleep on)].
   */
  control: SharedArrayBuffer;
  key: string;
  max: number;
  /** Slots to take (and give back) before it answers with the tries it needed. */
  takes: number;
  /**
   * Only claim the key (adding 1 to the workers-ready word first) and answer with the cell,
   * however long the claim waits for its lock.
   */
  claimOnly?: boolean;
  /**
   * Instead of taking slots: says it is ready, waits for the start flag, calls
   * `enqueue(cell, 0)` `takes` times, sets the done word and posts how many were let in.
   */
  enqueueNone?: boolean;
}
