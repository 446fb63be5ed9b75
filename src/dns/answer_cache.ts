/**
 * Encoded zone answers, each kept until something it was built from changes: an entry is stored
 * with its dependency keys (resolve.ts `Answer.depends`: the service, node or address it names,
 * ZONE_DEP for the apex, edge and negative answers), and the zone's deltas drop exactly the
 * entries of the keys they changed (`invalidate`). So a registration storm on one service leaves
 * every other name answered from here. A rebuilt zone empties the cache (`clear`).
 *
 * SOA serials: the serial is the zone version (store index) a reply was built at. A cached
 * NODATA, SOA or NS answer keeps the serial it was built with until a node or name-server change
 * (ZONE_DEP) drops it; instance changes do not. Like Consul's serial (the clock at answer time),
 * it only grows and names no particular state; berth has no secondaries that would compare it.
 *
 * Bounded: past ANSWER_CACHE_ENTRIES_MAX the entry stored first goes.
 *
 * @module
 */
import type { EncodedReply } from "./reply.ts";

/** Most encoded answers cached. */
export const ANSWER_CACHE_ENTRIES_MAX = 10_000;

interface Entry {
  reply: EncodedReply;
  depends: readonly string[];
}

export class AnswerCache {
  readonly #entriesMax: number;
  readonly #entries = new Map<string, Entry>();
  /** Dependency key → the cache keys of the entries built from it. */
  readonly #byDep = new Map<string, Set<string>>();

  constructor(entriesMax: number = ANSWER_CACHE_ENTRIES_MAX) {
    this.#entriesMax = entriesMax;
  }

  /** The reply cached under `key`, if any. */
  get(key: string): EncodedReply | undefined {
    return this.#entries.get(key)?.reply;
  }

  /** Caches a reply built from `depends`; the oldest entry goes when full. */
  set(key: string, reply: EncodedReply, depends: readonly string[]): void {
    this.#delete(key);
    if (this.#entries.size >= this.#entriesMax) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#delete(oldest);
    }
    this.#entries.set(key, { reply, depends });
    for (const d of depends) {
      let keys = this.#byDep.get(d);
      if (keys === undefined) this.#byDep.set(d, keys = new Set());
      keys.add(key);
    }
  }

  /** Drops every entry built from one of `deps`. */
  invalidate(deps: Iterable<string>): void {
    for (const d of deps) {
      const keys = this.#byDep.get(d);
      if (keys === undefined) continue;
      for (const k of [...keys]) this.#delete(k);
    }
  }

  /** Drops everything. */
  clear(): void {
    this.#entries.clear();
    this.#byDep.clear();
  }

  /** Entries held (for tests). */
  get size(): number {
    return this.#entries.size;
  }

  #delete(key: string): void {
    const e = this.#entries.get(key);
    if (e === undefined) return;
    this.#entries.delete(key);
    for (const d of e.depends) {
      const keys = this.#byDep.get(d);
      if (keys === undefined) continue;
      keys.delete(key);
      if (keys.size === 0) this.#byDep.delete(d);
    }
  }
}
