/**
 * A bounded, TTL-respecting cache of upstream responses for the forwarder. An entry lives for the
 * smallest TTL in the response (capped); a hit returns a copy with the client's id and question
 * and every TTL lowered by the entry's age, so downstream caches never hold a record longer than
 * the upstream allowed. Least recently used entries go first when the entry or byte limit is hit.
 *
 * @module
 */
import { questionEndOf, RCODE, recordTtls, writeU16, writeU32 } from "./wire.ts";

/** Defaults for ResponseCacheOptions. */
export const RESPONSE_CACHE_ENTRIES_MAX = 10_000;
export const RESPONSE_CACHE_BYTES_MAX = 16 * 1024 * 1024;
/** Longest an upstream answer is kept, whatever its TTL says. */
export const RESPONSE_CACHE_TTL_MAX_S = 3600;

export interface ResponseCacheOptions {
  /** Most entries (default RESPONSE_CACHE_ENTRIES_MAX). */
  entriesMax?: number;
  /** Most bytes of cached messages (default RESPONSE_CACHE_BYTES_MAX). */
  bytesMax?: number;
  /** Milliseconds clock (default Date.now). */
  now?: () => number;
}

interface Entry {
  bytes: Uint8Array;
  ttlOffsets: number[];
  ttls: number[];
  storedMs: number;
  expiresMs: number;
}

export class ResponseCache {
  readonly #entries = new Map<string, Entry>();
  readonly #entriesMax: number;
  readonly #bytesMax: number;
  readonly #now: () => number;
  #bytes = 0;

  constructor(options: ResponseCacheOptions = {}) {
    this.#entriesMax = options.entriesMax ?? RESPONSE_CACHE_ENTRIES_MAX;
    this.#bytesMax = options.bytesMax ?? RESPONSE_CACHE_BYTES_MAX;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Stores a response when it is cacheable: NOERROR or NXDOMAIN, not truncated, with at least one
   * record and a TTL above zero. Returns whether it was stored.
   */
  put(key: string, response: Uint8Array): boolean {
    const rcode = response[3]! & 0x0f;
    if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) return false;
    if (response[2]! & 0x02) return false;
    if (response.length > this.#bytesMax) return false;
    const qEnd = questionEndOf(response);
    if (qEnd < 0) return false;
    const ttls = recordTtls(response, qEnd);
    if (ttls === null || ttls.offsets.length === 0) return false;
    const ttl = Math.min(ttls.minTtl, RESPONSE_CACHE_TTL_MAX_S);
    if (ttl <= 0) return false;
    const now = this.#now();
    this.#delete(key);
    const bytes = response.slice();
    this.#entries.set(key, {
      bytes,
      ttlOffsets: ttls.offsets,
      ttls: ttls.offsets.map((o) =>
        ((bytes[o]! << 24) >>> 0) + ((bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!)
      ),
      storedMs: now,
      expiresMs: now + ttl * 1000,
    });
    this.#bytes += bytes.length;
    while (this.#entries.size > this.#entriesMax || this.#bytes > this.#bytesMax) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#delete(oldest);
    }
    return true;
  }

  /**
   * A copy of the cached response for `key` with `id`, the client's question bytes (same name up
   * to case, so the same length) and aged TTLs; null when absent or expired.
   */
  get(key: string, id: number, question: Uint8Array): Uint8Array | null {
    const e = this.#entries.get(key);
    if (e === undefined) return null;
    const now = this.#now();
    if (now >= e.expiresMs) {
      this.#delete(key);
      return null;
    }
    // Most recently used goes to the end of the Map's order.
    this.#entries.delete(key);
    this.#entries.set(key, e);
    const out = e.bytes.slice();
    writeU16(out, 0, id);
    if (12 + question.length <= out.length) out.set(question, 12);
    const age = Math.floor((now - e.storedMs) / 1000);
    for (let i = 0; i < e.ttlOffsets.length; i++) {
      writeU32(out, e.ttlOffsets[i]!, Math.max(0, e.ttls[i]! - age));
    }
    return out;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  #delete(key: string): void {
    const e = this.#entries.get(key);
    if (e === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= e.bytes.length;
  }
}
