/**
 * SQLite's order of text (BINARY collation: UTF-8 bytes) is code point order, which JavaScript's
 * `<` on strings (UTF-16 code units) differs from only where a character above U+FFFF meets one
 * in U+E000..U+FFFF. Views that page through the store by id, or order rows as the store does,
 * compare with this. A leaf module.
 *
 * @module
 */

/** Negative, zero or positive as `a` sorts before, with or after `b` in code point order. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate is part of a code point above U+FFFF: after every other UTF-16 unit.
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
