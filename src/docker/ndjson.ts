/**
 * Splits a byte stream of newline-delimited JSON (Docker's event stream) into parsed values.
 * Chunks may split a line or a UTF-8 character anywhere; a line longer than `lineBytesMax` is
 * dropped whole (counted in `dropped`), and a line that is not JSON is skipped.
 *
 * @module
 */

/** Longest event line kept (Docker events are well under 4 KiB). */
export const LINE_BYTES_MAX = 1024 * 1024;

export class NdjsonSplitter {
  readonly #decoder = new TextDecoder();
  readonly #lineBytesMax: number;
  #buffer = "";
  #skipping = false;
  /** Lines dropped for length or bad JSON. */
  dropped = 0;

  constructor(options: { lineBytesMax?: number } = {}) {
    this.#lineBytesMax = options.lineBytesMax ?? LINE_BYTES_MAX;
  }

  /** Feeds one chunk; returns the values of the lines it completed. */
  push(chunk: Uint8Array | string): unknown[] {
    const text = typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    const out: unknown[] = [];
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      const piece = text.slice(start, nl);
      start = nl + 1;
      if (this.#skipping) {
        this.#skipping = false;
        this.#buffer = "";
        continue;
      }
      const line = (this.#buffer + piece).trim();
      this.#buffer = "";
      if (line === "") continue;
      if (line.length > this.#lineBytesMax) {
        this.dropped++;
        continue;
      }
      try {
        out.push(JSON.parse(line));
      } catch {
        this.dropped++;
      }
    }
    if (!this.#skipping) {
      this.#buffer += text.slice(start);
      if (this.#buffer.length > this.#lineBytesMax) {
        this.#buffer = "";
        this.#skipping = true;
        this.dropped++;
      }
    }
    return out;
  }
}
