/**
 * What a graceful shutdown (SIGTERM, README "Shutdown and reload") waits on: the work still in
 * flight, kept in `TrackedSet`s that tell when they run empty, and `settleWithin`, which waits for
 * that at most a given time. A leaf module: imports nothing from berth.
 *
 * @module
 */

/** A Set whose `empty()` resolves once it holds nothing (at once when it is empty now). */
export class TrackedSet<T> extends Set<T> {
  #waiters: (() => void)[] = [];

  override delete(value: T): boolean {
    const had = super.delete(value);
    if (had && this.size === 0) this.#wake();
    return had;
  }

  override clear(): void {
    super.clear();
    this.#wake();
  }

  /** Resolves once the set is empty. */
  empty(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** Waits for `done` at most `timeoutMs`; true when it settled in time. Leaves no timer behind. */
export async function settleWithin(done: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs));
  try {
    return await Promise.race([done.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
