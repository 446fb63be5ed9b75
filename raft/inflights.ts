/**
 * Flow control window for one follower: the last index of every MsgApp sent but not yet
 * acknowledged, with its payload bytes. Bounded by count and by bytes.
 *
 * @module
 */
import { invariant } from "./types.ts";

/** A ring buffer of in-flight appends, ordered by increasing index. */
export class Inflights {
  #start = 0;
  #count = 0;
  #bytes = 0;
  #indexes: number[];
  #sizes: number[];

  /**
   * @param size maximum number of in-flight messages (> 0)
   * @param maxBytes maximum in-flight payload bytes (0 = unlimited)
   */
  constructor(readonly size: number, readonly maxBytes = 0) {
    invariant(Number.isInteger(size) && size > 0, `inflights size ${size} must be > 0`);
    invariant(maxBytes >= 0, `inflights maxBytes ${maxBytes} must be >= 0`);
    this.#indexes = new Array<number>(size).fill(0);
    this.#sizes = new Array<number>(size).fill(0);
  }

  /** Number of in-flight messages. */
  count(): number {
    return this.#count;
  }

  /** Payload bytes in flight. */
  bytes(): number {
    return this.#bytes;
  }

  /**
   * Records a sent append ending at `index` carrying `bytes` payload bytes.
   * Invariant: not full, and indexes are added in increasing order.
   */
  add(index: number, bytes: number): void {
    invariant(!this.full(), "cannot add into a full inflights");
    if (this.#count > 0) {
      const last = this.#indexes[(this.#start + this.#count - 1) % this.size] ?? 0;
      invariant(index > last, () => `inflight index ${index} not above last ${last}`);
    }
    const slot = (this.#start + this.#count) % this.size;
    this.#indexes[slot] = index;
    this.#sizes[slot] = bytes;
    this.#count++;
    this.#bytes += bytes;
  }

  /** Frees every in-flight message whose index is <= `to` (they were acknowledged). */
  freeLE(to: number): void {
    while (this.#count > 0) {
      const idx = this.#indexes[this.#start] ?? 0;
      if (idx > to) break;
      this.#bytes -= this.#sizes[this.#start] ?? 0;
      this.#start = (this.#start + 1) % this.size;
      this.#count--;
    }
    if (this.#count === 0) this.#start = 0;
  }

  /** Whether no more messages may be sent: count or bytes budget exhausted. */
  full(): boolean {
    return this.#count === this.size ||
      (this.maxBytes !== 0 && this.#bytes >= this.maxBytes);
  }

  /** Forgets everything in flight. */
  reset(): void {
    this.#start = 0;
    this.#count = 0;
    this.#bytes = 0;
  }
}
