/**
 * Bytes written as text, for a UDP check's datagram and expected reply (README "Health checks"):
 * characters stand for their UTF-8 bytes, and `\xHH` (two hex digits) for one byte; `\n`, `\r`,
 * `\t`, `\0` and `\\` as in C. Any other backslash is an error, so a typo never goes out as
 * something else.
 *
 * ```ts
 * unescapeBytes("PING\\r\\n"); // 50 49 4e 47 0d 0a
 * unescapeBytes("\\x00\\x01"); // 00 01
 * ```
 *
 * @module
 */

const SIMPLE: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09, "0": 0x00, "\\": 0x5c };

/** The bytes `text` stands for; throws an Error naming the first bad escape. */
export function unescapeBytes(text: string): Uint8Array {
  const out: number[] = [];
  const utf8 = new TextEncoder();
  let plain = 0; // start of the run of characters without escapes
  const flush = (end: number) => {
    if (end > plain) out.push(...utf8.encode(text.slice(plain, end)));
  };
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== "\\") continue;
    flush(i);
    const c = text[i + 1];
    if (c === "x") {
      const hex = text.slice(i + 2, i + 4);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
        throw new Error(`"\\x" must be followed by two hex digits (at character ${i + 1})`);
      }
      out.push(parseInt(hex, 16));
      i += 3;
    } else if (c !== undefined && c in SIMPLE) {
      out.push(SIMPLE[c]!);
      i += 1;
    } else {
      throw new Error(
        c === undefined
          ? "a lone backslash at the end (write \\\\ for one)"
          : `unknown escape "\\${c}" at character ${i + 1} (\\xHH, \\n, \\r, \\t, \\0, \\\\)`,
      );
    }
    plain = i + 1;
  }
  flush(text.length);
  return new Uint8Array(out);
}

/** Whether `needle` occurs in `hay` (empty: always). */
export function bytesContain(hay: Uint8Array, needle: Uint8Array): boolean {
  if (needle.length === 0) return true;
  const first = needle[0]!;
  outer: for (let i = hay.indexOf(first); i >= 0 && i + needle.length <= hay.length;) {
    for (let j = 1; j < needle.length; j++) {
      if (hay[i + j] !== needle[j]) {
        i = hay.indexOf(first, i + 1);
        continue outer;
      }
    }
    return true;
  }
  return false;
}
