/**
 * When the ready loop (_core.ts) runs: once per turn of the event loop however often it is
 * asked, never two runs at once, and once more after a run that was asked for again meanwhile
 * (a step while the loop waited for the log writer) — never again after a run that nobody asked
 * for since it started (a loop finding nothing ready must not run itself forever).
 *
 * @module
 */
import { setImmediate } from "node:timers";

export class ReadyScheduler {
  readonly #run: () => Promise<void>;
  readonly #defer: (fn: () => void) => void;
  /** Asked for since the current run started (or since the last run). */
  #wanted = false;
  /** A run is due on the next turn of the event loop. */
  #due = false;
  #running = false;
  #stopped = false;

  /**
   * `run` is the loop (its rejection is its own to handle); `defer` runs a function on the next
   * turn of the event loop (setImmediate: after every request and frame this turn read, so that
   * they all go into one ready and one fsync — group commit).
   */
  constructor(run: () => Promise<void>, defer: (fn: () => void) => void = setImmediate) {
    this.#run = run;
    this.#defer = defer;
  }

  /** Asks for a run. */
  schedule(): void {
    if (this.#stopped) return;
    this.#wanted = true;
    if (this.#running || this.#due) return;
    this.#due = true;
    this.#defer(() => {
      this.#due = false;
      if (this.#running || this.#stopped) return;
      this.#running = true;
      this.#wanted = false;
      this.#run().finally(() => {
        this.#running = false;
        if (this.#wanted) this.schedule();
      });
    });
  }

  /** Called by the loop before each ready it takes: what was asked for until now is served. */
  served(): void {
    this.#wanted = false;
  }

  stop(): void {
    this.#stopped = true;
  }
}
