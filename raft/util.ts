/**
 * Size accounting for entries.
 *
 * @module
 */
import type { Entry } from "./types.ts";

/** Bytes an entry occupies in a message beside its payload (term, index, type, framing). */
export const ENTRY_OVERHEAD_BYTES = 24;

/** Approximate wire size of an entry, used for `maxSizePerMsg`-style limits. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** Payload bytes of entries, used for inflight-bytes and uncommitted-size accounting. */
export function payloadsSize(ents: readonly Entry[]): number {
  let s = 0;
  for (const e of ents) s += e.data.byteLength;
  return s;
}

/**
 * Returns the longest prefix of `ents` whose total size is at most `maxSize`, but always at
 * least one entry (so progress is possible even with an entry larger than the limit).
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0] as Entry);
  let limit = 1;
  for (; limit < ents.length; limit++) {
    size += entrySize(ents[limit] as Entry);
    if (size > maxSize) break;
  }
  return limit === ents.length ? ents : ents.slice(0, limit);
}
