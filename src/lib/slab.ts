/**
 * ByteSlab: short-lived byte arrays carved from shared 64 KiB buffers. A new Uint8Array of its
 * own costs about a microsecond in V8 once it is past the on-heap size (64 bytes: every DNS
 * response), a view on an existing buffer a few tens of nanoseconds; so per-query buffers come
 * from a slab, and a slab is left to the garbage collector once full (it lives while any of its
 * views does: keep nothing long-lived in one).
 *
 * @module
 */

/** Bytes per slab. */
export const SLAB_BYTES = 64 * 1024;
/** Larger requests get an array of their own (they would waste most of a slab). */
export const SLAB_ALLOC_MAX = 4096;

export class ByteSlab {
  #buffer = new ArrayBuffer(SLAB_BYTES);
  #offset = 0;

  /** `length` zeroed-or-not bytes (callers write every byte they hand out). */
  alloc(length: number): Uint8Array {
    if (length > SLAB_ALLOC_MAX) return new Uint8Array(length);
    if (this.#offset + length > SLAB_BYTES) {
      this.#buffer = new ArrayBuffer(SLAB_BYTES);
      this.#offset = 0;
    }
    const out = new Uint8Array(this.#buffer, this.#offset, length);
    this.#offset += (length + 7) & ~7;
    return out;
  }

  /** A copy of `src` in the slab. */
  copy(src: Uint8Array): Uint8Array {
    const out = this.alloc(src.length);
    out.set(src);
    return out;
  }
}
