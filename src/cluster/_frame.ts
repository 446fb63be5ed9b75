/**
 * Length-prefixed msgpack frames: a 4-byte big-endian body length, then the msgpack body.
 * Private to src/cluster/.
 *
 * @module
 */
import { Packr, RESET_BUFFER_MODE } from "msgpackr";

/** Bytes of the big-endian length prefix in front of every frame. */
export const FRAME_HEADER_BYTES = 4;

// useRecords: false → plain objects round-trip as msgpack maps (no msgpackr extension records).
// copyBuffers: true with a plain Uint8Array source → bin values decode as fresh Uint8Arrays
// (not Buffers, and not views into the socket's read chunk).
const packr = new Packr({ useRecords: false, copyBuffers: true });

/**
 * Encodes one frame body; throws when `value` cannot be encoded. msgpackr packs into its one
 * output buffer (grown to four times the largest body so far), each body from its start
 * (RESET_BUFFER_MODE: by default it moves on through that buffer and starts a new one of the
 * same size when it is full, a few MiB of garbage per few large frames); the body is copied out
 * at its own size, so a body waiting in a send queue keeps nothing else alive.
 */
export function encodeBody(value: unknown): Uint8Array {
  return new Uint8Array(packr.pack(value, RESET_BUFFER_MODE));
}

/** Decodes one frame body; throws when it is not exactly one msgpack value. */
export function decodeBody(body: Uint8Array): unknown {
  // A Buffer source would make bin values decode as Buffers; decode from a plain view.
  const plain = Object.getPrototypeOf(body) === Uint8Array.prototype
    ? body
    : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  return packr.unpack(plain);
}

/** Concatenates frame bodies, each behind its length prefix, into one buffer for one write. */
export function joinFrames(bodies: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const b of bodies) total += FRAME_HEADER_BYTES + b.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const b of bodies) {
    view.setUint32(at, b.byteLength);
    out.set(b, at + FRAME_HEADER_BYTES);
    at += FRAME_HEADER_BYTES + b.byteLength;
  }
  return out;
}

/**
 * Splits a byte stream into frame bodies. A body that arrives whole inside one chunk is handed
 * out as a view (no copy); one spanning chunks is assembled into a buffer of exactly its size.
 * A length over the limit in force (`limit`, changeable between frames, e.g. raised once the
 * peer authenticated) is refused as soon as its header is read, before any buffer is allocated.
 */
export class FrameReader {
  #bytesMax: number;
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerHave = 0;
  #body: Uint8Array | null = null;
  #bodyHave = 0;

  constructor(bytesMax: number) {
    this.#bytesMax = bytesMax;
  }

  /** The largest frame body accepted from now on (the header of the next frame is checked). */
  set limit(bytesMax: number) {
    this.#bytesMax = bytesMax;
  }

  get limit(): number {
    return this.#bytesMax;
  }

  /** Bytes of an incomplete frame buffered so far, and the size it announced (0 if unknown). */
  partial(): { have: number; want: number } {
    if (this.#body !== null) {
      return { have: FRAME_HEADER_BYTES + this.#bodyHave, want: this.#body.byteLength };
    }
    return { have: this.#headerHave, want: 0 };
  }

  /**
   * Feeds a chunk; calls `onFrame` per complete body, in order, until it returns false. Returns
   * an error line when the stream is malformed (then the reader must not be used again).
   */
  push(chunk: Uint8Array, onFrame: (body: Uint8Array) => boolean): string | null {
    let at = 0;
    const end = chunk.byteLength;
    while (at < end) {
      if (this.#body === null) {
        if (this.#headerHave === 0 && end - at >= FRAME_HEADER_BYTES) {
          const len = readUint32(chunk, at);
          const bad = this.#checkLength(len);
          if (bad !== null) return bad;
          at += FRAME_HEADER_BYTES;
          if (end - at >= len) {
            // Fast path: the whole body is in this chunk.
            const body = chunk.subarray(at, at + len);
            at += len;
            if (!onFrame(body)) return null;
            continue;
          }
          this.#body = new Uint8Array(len);
          this.#bodyHave = 0;
          continue;
        }
        const n = Math.min(FRAME_HEADER_BYTES - this.#headerHave, end - at);
        this.#header.set(chunk.subarray(at, at + n), this.#headerHave);
        this.#headerHave += n;
        at += n;
        if (this.#headerHave < FRAME_HEADER_BYTES) continue;
        this.#headerHave = 0;
        const len = readUint32(this.#header, 0);
        const bad = this.#checkLength(len);
        if (bad !== null) return bad;
        this.#body = new Uint8Array(len);
        this.#bodyHave = 0;
        continue;
      }
      const body = this.#body;
      const n = Math.min(body.byteLength - this.#bodyHave, end - at);
      body.set(chunk.subarray(at, at + n), this.#bodyHave);
      this.#bodyHave += n;
      at += n;
      if (this.#bodyHave === body.byteLength) {
        this.#body = null;
        if (!onFrame(body)) return null;
      }
    }
    return null;
  }

  #checkLength(len: number): string | null {
    if (len === 0) return "empty frame";
    if (len > this.#bytesMax) {
      return `frame of ${len} bytes exceeds the limit of ${this.#bytesMax} bytes`;
    }
    return null;
  }
}

function readUint32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!;
}
