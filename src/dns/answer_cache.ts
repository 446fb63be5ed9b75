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
 * Bounded: past ANSWER_CACHE_ENTRIES_MAX entries or ANSWER_CACHE_BYTES_MAX bytes (records plus
 * ENTRY_OVERHEAD_BYTES each: a service of a thousand instances has a large SRV answer) the
 * entries stored first go; an answer larger than the byte bound is not cached.
 *
 * @module
 */
import type { EncodedReply } from "./reply.ts";

/** Most encoded answers cached. */
export const ANSWER_CACHE_ENTRIES_MAX = 10_000;
/** Most bytes of cached answers, counted as their records plus ENTRY_OVERHEAD_BYTES each. */
export const ANSWER_CACHE_BYTES_MAX = 16 * 1024 * 1024;
/** What one cached entry costs besides its records (objects, typed arrays, map slots), roughly. */
export const ENTRY_OVERHEAD_BYTES = 512;

interface Entry {
  reply: EncodedReply;
  depends: readonly string[];
  bytes: number;
}

export interface AnswerCacheOptions {
  /** Default ANSWER_CACHE_ENTRIES_MAX. */
  entriesMax?: number;
  /** Default ANSWER_CACHE_BYTES_MAX. */
  bytesMax?: number;
}

export class AnswerCache {
  readonly #entriesMax: number;
  readonly #bytesMax: number;
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;
  /** Dependency key → the cache keys of the entries built from it. */
  readonly #byDep = new Map<string, Set<string>>();

  constructor(options: AnswerCacheOptions = {}) {
    this.#entriesMax = options.entriesMax ?? ANSWER_CACHE_ENTRIES_MAX;
    this.#bytesMax = options.bytesMax ?? ANSWER_CACHE_BYTES_MAX;
  }

  /** The reply cached under `key`, if any. */
  get(key: string): EncodedReply | undefined {
    return this.#entries.get(key)?.reply;
  }

  /** Caches a reply built from `depends`; the oldest entries go when full. */
  set(key: string, reply: EncodedReply, depends: readonly string[]): void {
    this.#delete(key);
    const bytes = replyBytes(reply);
    if (bytes > this.#bytesMax) return;
    while (
      this.#entries.size > 0 &&
      (this.#entries.size >= this.#entriesMax || this.#bytes + bytes > this.#bytesMax)
    ) {
      this.#delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(key, { reply, depends, bytes });
    this.#bytes += bytes;
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
    this.#bytes = 0;
  }

  /** Entries held (for tests). */
  get size(): number {
    return this.#entries.size;
  }

  /** Bytes held, as the bound counts them (for tests). */
  get bytes(): number {
    return this.#bytes;
  }

  #delete(key: string): void {
    const e = this.#entries.get(key);
    if (e === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= e.bytes;
    for (const d of e.depends) {
      const keys = this.#byDep.get(d);
      if (keys === undefined) continue;
      keys.delete(key);
      if (keys.size === 0) this.#byDep.delete(d);
    }
  }
}

function replyBytes(r: EncodedReply): number {
  return r.records.length + r.starts.byteLength + ENTRY_OVERHEAD_BYTES;
}
