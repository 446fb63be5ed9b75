/**
 * Byte arrays joined end to end. A leaf module: imports nothing from berth.
 *
 * @module
 */

/**
 * `parts` end to end in one new array. `length`, when the caller already counted it, saves the
 * count; it must be the parts' total.
 */
export function concatBytes(parts: readonly Uint8Array[], length?: number): Uint8Array {
  const out = new Uint8Array(length ?? parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
