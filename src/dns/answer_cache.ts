/**
 * Encoded zone answers, kept for one zone version: the server asks with the zone it answers
 * from, and the first entry stored for a newer zone drops everything cached for the older one.
 * Bounded; names past the bound are encoded per query until the zone changes.
 *
 * @module
 */
import type { EncodedReply } from "./reply.ts";
import type { Zone } from "./zone.ts";

/** Most encoded answers cached per zone version. */
export const ANSWER_CACHE_ENTRIES_MAX = 10_000;

export class AnswerCache {
  #zone: Zone | null = null;
  readonly #entries = new Map<string, EncodedReply>();

  /** The reply cached under `key` for this zone, if any. */
  get(zone: Zone, key: string): EncodedReply | undefined {
    return zone === this.#zone ? this.#entries.get(key) : undefined;
  }

  /** Caches a reply for `zone` unless full; a new zone empties the cache first. */
  set(zone: Zone, key: string, reply: EncodedReply): void {
    if (zone !== this.#zone) {
      this.#entries.clear();
      this.#zone = zone;
    }
    if (this.#entries.size < ANSWER_CACHE_ENTRIES_MAX) this.#entries.set(key, reply);
  }

  /** Entries held (for tests). */
  get size(): number {
    return this.#entries.size;
  }
}
