/**
 * Asks several worker threads one question and collects their answers within a deadline: a
 * worker that does not answer in time (busy, or stopping) is left out and named in `missing`.
 * The proxy and DNS worker pools use it for reports and metrics.
 *
 * @module
 */

/** The answers that came (by worker) and the workers that gave none in time. */
export interface Gathered<S, T> {
  got: Map<S, T>;
  missing: S[];
}

interface Question<S, T> {
  waiting: Set<S>;
  got: Map<S, T>;
  done: () => void;
}

/** See the module comment. `S` is the pool's worker slot, `T` the answer. */
export class WorkerGather<S, T> {
  readonly #open = new Map<number, Question<S, T>>();
  #nextId = 0;

  /**
   * Sends the question to each of `slots` (`send(slot, id)`; the worker answers with that id)
   * and resolves once all answered or after `timeoutMs`.
   */
  async ask(
    slots: readonly S[],
    send: (slot: S, id: number) => void,
    timeoutMs: number,
  ): Promise<Gathered<S, T>> {
    const got = new Map<S, T>();
    if (slots.length === 0) return { got, missing: [] };
    const id = ++this.#nextId;
    const { promise, resolve } = Promise.withResolvers<void>();
    const q: Question<S, T> = { waiting: new Set(slots), got, done: resolve };
    this.#open.set(id, q);
    for (const s of slots) send(s, id);
    const timer = setTimeout(resolve, timeoutMs);
    await promise;
    clearTimeout(timer);
    this.#open.delete(id);
    return { got, missing: [...q.waiting] };
  }

  /** A worker's answer to question `id`; null: it answered that it has nothing to give. */
  answer(id: number, slot: S, value: T | null): void {
    const q = this.#open.get(id);
    if (q === undefined || !q.waiting.delete(slot)) return;
    if (value !== null) q.got.set(slot, value);
    if (q.waiting.size === 0) q.done();
  }

  /** A worker stopped: it will answer nothing (its questions end without it). */
  gone(slot: S): void {
    for (const q of this.#open.values()) {
      if (q.waiting.delete(slot) && q.waiting.size === 0) q.done();
    }
  }

  /** Ends every open question now (the pool closes). */
  endAll(): void {
    for (const q of this.#open.values()) q.done();
  }
}
