/**
 * What an apply changed, and who hears of it. Apply functions note the tables, services and KV
 * keys they touch in a `ChangeSet`; after the transaction commits, the store hands one `Change`
 * to every subscriber of its `ChangeFeed` (the DNS zone, the proxy's route table and blocking
 * API queries rebuild from it).
 *
 * @module
 */
import type { Change, Table } from "./types.ts";

/** The tables, services and keys one transaction changed, built up while it applies. */
export class ChangeSet {
  readonly tables = new Set<Table>();
  readonly services = new Set<string>();
  readonly keys = new Set<string>();

  /** Adds everything `other` changed (a batch's sub-commands, once the batch holds). */
  merge(other: ChangeSet): void {
    for (const t of other.tables) this.tables.add(t);
    for (const s of other.services) this.services.add(s);
    for (const k of other.keys) this.keys.add(k);
  }
}

export class ChangeFeed {
  readonly #subscribers = new Set<(c: Change) => void>();

  /** Calls `fn` with every change announced from now on. Returns an unsubscribe. */
  subscribe(fn: (c: Change) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** Hands `c` to every subscriber; one that throws is logged and the others still hear it. */
  announce(c: Change): void {
    for (const fn of this.#subscribers) {
      try {
        fn(c);
      } catch (e) {
        console.error(`store: change subscriber failed: ${e}`);
      }
    }
  }

  clear(): void {
    this.#subscribers.clear();
  }
}
