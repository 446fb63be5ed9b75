/**
 * Futures for the cluster runtime: a caller that needs some state (a leader known, an index
 * applied, a membership change visible, a leadership transfer done) registers a condition and a
 * deadline; the ready loop, which is what changes that state, calls `check()` after every batch
 * and resolves whatever now holds. Nobody polls with sleeps.
 *
 * `Waiters.until()` is the general form; `Deferred` is one keyed future (a proposal waiting for
 * its entry, a read waiting for its read state) settled by the code that finds the key.
 *
 * @module
 */

/** One future settled from outside, with a deadline. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

/** What a deferred does at its deadline. */
export interface DeadlineOptions {
  /** The error it rejects with. */
  timeout: () => Error;
  /** Called first, so whoever holds the future can drop it. */
  forget?: () => void;
}

/** A future that rejects with `timeout()` after `ms`, unless resolved or rejected before. */
export function deferred<T>(ms: number, { timeout, forget }: DeadlineOptions): Deferred<T> {
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  const timer = setTimeout(() => {
    forget?.();
    reject(timeout());
  }, Math.max(1, ms));
  return {
    promise,
    resolve: (v) => {
      clearTimeout(timer);
      resolve(v);
    },
    reject: (e) => {
      clearTimeout(timer);
      reject(e);
    },
  };
}

interface Condition {
  holds: () => boolean;
  d: Deferred<void>;
}

/** Conditions waiting for the loop's state to change. */
export class Waiters {
  #waiting: Condition[] = [];
  #failed: Error | undefined;

  /** How many conditions are waiting. */
  get size(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves once `holds()` is true: at once if it is now, else at the first `check()` that
   * finds it true. Rejects with `timeout()` after `ms`, or with the `failAll()` error.
   */
  until(
    holds: () => boolean,
    { ms, timeout }: { ms: number; timeout: () => Error },
  ): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (holds()) return Promise.resolve();
    const d: Deferred<void> = deferred(ms, {
      timeout,
      forget: () => {
        this.#waiting = this.#waiting.filter((c) => c.d !== d);
      },
    });
    this.#waiting.push({ holds, d });
    return d.promise;
  }

  /** Resolves every condition that holds now. Call after each change of the state they read. */
  check(): void {
    if (this.#waiting.length === 0) return;
    const still: Condition[] = [];
    const done: Condition[] = [];
    for (const c of this.#waiting) (c.holds() ? done : still).push(c);
    this.#waiting = still;
    for (const c of done) c.d.resolve();
  }

  /** Rejects every waiting condition with `e`, and every later one at once. */
  failAll(e: Error): void {
    this.#failed = e;
    const all = this.#waiting;
    this.#waiting = [];
    for (const c of all) c.d.reject(e);
  }
}
