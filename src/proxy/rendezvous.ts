/**
 * Rendezvous (highest-random-weight) hashing: for a key (a client IP, a header or cookie value)
 * every target gets a score from a hash of the key and the target's instance id; the highest
 * score wins. The hash depends on nothing but those two strings, so every member and every
 * proxy worker picks the same target for the same key, and removing a target moves only the
 * keys it had (each other key's winner still has the highest score).
 *
 * Weighted (Schindelhauer and Schomaker, "Weighted distributed hash tables", 2005): the score
 * is `-weight / ln(u)` with `u` uniform in (0, 1), which gives each target a share of the keys
 * proportional to its weight.
 *
 * The hash is cyrb53-style (two 32-bit multiply-xor lanes over the UTF-16 code units, then
 * murmur3's finalizer), so a target's half is computed once per route (`idHash`) and each
 * request hashes its key once (`keyHash`); a score is then a few integer multiplies.
 *
 * @module
 */

/** A 64-bit hash as two unsigned 32-bit halves. */
export interface Hash64 {
  readonly hi: number;
  readonly lo: number;
}

/** Hashes `s` (its UTF-16 code units) with `seed` to 64 bits. Pure, identical everywhere. */
export function hash64(s: string, seed = 0): Hash64 {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return { hi: h1 >>> 0, lo: h2 >>> 0 };
}

// Distinct seeds: a key and an instance id that are the same string hash apart.
const KEY_SEED = 0x6b6579;
const ID_SEED = 0x696473;
const TOKEN_SEED = 0x746f6b;

/** The request key's half of every score. */
export function keyHash(key: string): Hash64 {
  return hash64(key, KEY_SEED);
}

/** A target's half of every score (by instance id). */
export function idHash(id: string): Hash64 {
  return hash64(id, ID_SEED);
}

/** murmur3's 32-bit finalizer: every input bit flips each output bit with probability ~1/2. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The uniform number in (0, 1) of a key and a target: 53 bits from three mixing rounds. */
export function unit(k: Hash64, t: Hash64): number {
  let a = fmix32((k.hi ^ t.hi) + Math.imul(k.lo ^ t.lo, 0x9e3779b9));
  const b = fmix32((k.lo ^ t.lo) ^ Math.imul(a, 0x27d4eb2f));
  a = fmix32(a ^ Math.imul(b, 0x165667b1));
  // 21 + 32 bits, then moved off 0 (ln(0) = -inf) by half a step: u ∈ (0, 1).
  return ((a >>> 11) * 4294967296 + b + 0.5) / 9007199254740992;
}

/** The weighted score of a target for a key: higher wins. `weight` > 0. */
export function score(k: Hash64, t: Hash64, weight: number): number {
  return -weight / Math.log(unit(k, t));
}

/**
 * The sticky cookie's value for an instance: 16 hex digits of a hash of its id (opaque: no
 * address, the same on every member).
 */
export function stickyToken(id: string): string {
  const h = hash64(id, TOKEN_SEED);
  return h.hi.toString(16).padStart(8, "0") + h.lo.toString(16).padStart(8, "0");
}
