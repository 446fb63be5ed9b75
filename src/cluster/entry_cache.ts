/**
 * The data of the Raft log's most recent durable entries, so that sending to followers and
 * catching up rarely reads SQLite: bounded by entries and bytes, oldest index evicted first;
 * large entries are left to SQLite.
 *
 * @module
 */
import type { Entry } from "../../raft/mod.ts";

/** Most entries the cache holds. */
export const ENTRY_CACHE_ENTRIES_MAX = 4096;
/** Most data bytes the cache holds. */
export const ENTRY_CACHE_BYTES_MAX = 16 * 1024 * 1024;
/** Entries larger than this are not cached (reading them is dominated by their size anyway). */
export const ENTRY_CACHE_ENTRY_BYTES_MAX = 64 * 1024;

export class EntryCache {
  /** Index → data, in increasing index order (entries are put in log order). */
  #data = new Map<number, Uint8Array>();
  #bytes = 0;
  /** The highest index cached (0: none). */
  #last = 0;
  readonly #maxEntries: number;
  readonly #maxBytes: number;

  constructor(maxEntries = ENTRY_CACHE_ENTRIES_MAX, maxBytes = ENTRY_CACHE_BYTES_MAX) {
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  get(index: number): Uint8Array | undefined {
    return this.#data.get(index);
  }

  /** Adds entries that follow what is cached (a conflicting suffix is dropped first). */
  put(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (first.index <= this.#last) this.dropFrom(first.index);
    for (const e of entries) {
      this.#last = e.index;
      if (e.data.byteLength > ENTRY_CACHE_ENTRY_BYTES_MAX) continue;
      // A copy: the caller's array may be a view into a received frame (which it would keep
      // alive) or be reused.
      const d = e.data.slice();
      this.#data.set(e.index, d);
      this.#bytes += d.byteLength;
    }
    for (const [i, d] of this.#data) {
      if (this.#data.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) break;
      this.#data.delete(i);
      this.#bytes -= d.byteLength;
    }
  }

  /** Forgets entries at or after `index` (replaced). */
  dropFrom(index: number): void {
    if (index <= this.#last) this.#last = index - 1;
    for (const [i, d] of this.#data) {
      if (i < index) continue;
      this.#data.delete(i);
      this.#bytes -= d.byteLength;
    }
  }

  /** Forgets entries at or below `index` (compacted). */
  dropTo(index: number): void {
    for (const [i, d] of this.#data) {
      if (i > index) break;
      this.#data.delete(i);
      this.#bytes -= d.byteLength;
    }
  }

  clear(): void {
    this.#data.clear();
    this.#bytes = 0;
    this.#last = 0;
  }

  get size(): number {
    return this.#data.size;
  }
}
