/**
 * Blocking queries: a read that carries `?index=N` waits on the store's change feed until its
 * index passes N or its wait ends. One store subscription serves every waiter; each waiter says
 * which changes may concern it, so a KV write does not re-check a service watch.
 *
 * @module
 */
import type { Change, Store } from "../store/mod.ts";
import { HttpError } from "./http_error.ts";

/** Most reads blocked at once; one more gets 429 rather than unbounded memory. */
export const BLOCKED_READS_MAX = 4096;

interface Waiter {
  affects: (c: Change) => boolean;
  done: () => boolean;
  finish: () => void;
}

export interface BlockerOptions {
  /** Most concurrent waiters (default BLOCKED_READS_MAX). */
  waitersMax?: number;
  /** Ends every wait at once (agent shutdown). */
  signal?: AbortSignal;
}

export class Blocker {
  readonly #waiters = new Set<Waiter>();
  readonly #max: number;
  readonly #signal: AbortSignal | undefined;

  constructor(store: Store, opts: BlockerOptions = {}) {
    this.#max = opts.waitersMax ?? BLOCKED_READS_MAX;
    this.#signal = opts.signal;
    const unsubscribe = store.subscribe((c) => this.#onChange(c));
    opts.signal?.addEventListener("abort", () => {
      unsubscribe();
      for (const w of [...this.#waiters]) w.finish();
    }, { once: true });
  }

  /** Waiters currently blocked (for /metrics). */
  get size(): number {
    return this.#waiters.size;
  }

  #onChange(c: Change): void {
    for (const w of [...this.#waiters]) {
      if (w.affects(c) && w.done()) w.finish();
    }
  }

  /**
   * Resolves when `done()` turns true after a change that `affects`, after `waitMs`, or when the
   * request or the server goes away. Throws 429 when too many reads are already blocked.
   */
  wait(
    affects: (c: Change) => boolean,
    done: () => boolean,
    opts: { waitMs: number; signal?: AbortSignal },
  ): Promise<void> {
    if (done() || this.#signal?.aborted || opts.signal?.aborted) return Promise.resolve();
    if (this.#waiters.size >= this.#max) {
      throw new HttpError(429, `too many blocking queries in flight (${this.#max}); retry later`);
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    const onAbort = () => waiter.finish();
    const timer = setTimeout(onAbort, opts.waitMs);
    const waiter: Waiter = {
      affects,
      done,
      finish: () => {
        if (!this.#waiters.delete(waiter)) return;
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        resolve();
      },
    };
    this.#waiters.add(waiter);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    return promise;
  }
}
