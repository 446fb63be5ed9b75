/**
 * The rate limiter's token buckets (README "Middlewares: ratelimit"), one per (service, client
 * IP), in a fixed-size table inside a SharedArrayBuffer so that every proxy worker counts
 * against the same bucket: SO_REUSEPORT spreads one client's connections over the workers, and
 * the limit must hold once, not once per worker. The main thread allocates the buffer
 * (`processRateBuckets`) and hands it to each worker in its start message (`adoptRateBuckets`;
 * a restarted worker gets the same one); a proxy on the main thread counts in it directly.
 *
 * A bucket is kept as one number, the time at which it is full again (`fullAt`): with `T` =
 * 1000 / rate ms per token, the bucket holds `burst − max(0, fullAt − now) / T` tokens. Taking a
 * token moves `fullAt` to `max(fullAt, now) + T`, allowed while `max(fullAt, now) − now ≤
 * (burst − 1) × T` (the token-bucket form of GCRA). A bucket whose `fullAt` has passed is full
 * and carries no information: it is the same as no bucket, so its slot is free for any key.
 *
 * Layout: `groups` × GROUP_SLOTS slots. A key (a 64-bit hash of service and client) lives in the
 * group its hash picks, in any slot of it; each group has an Int32 lock taken with
 * `Atomics.compareExchange` around the few plain reads and writes of one `take()` (Atomics
 * order them for every thread). A key never lives in two slots, because everything that looks
 * for it or places it holds its group's lock.
 *
 * Bounds: memory is fixed at creation (the default 65,536 buckets take 1.03 MiB) and never
 * grows. A new key takes an empty or full slot of its group; when the group has none, the
 * bucket nearest to full is forgotten (its client gets up to that many tokens back). So a flood
 * of distinct client IPs costs at most GROUP_SLOTS probes per request and no memory: the flood's
 * own one-request buckets, being nearly full, are the first ones forgotten, and a drained
 * bucket of a client that is really limited is forgotten only when all of its group is more
 * drained. Nothing waits for space.
 *
 * Time is `nowMs()`, `performance.timeOrigin + performance.now()`: monotonic in each thread and
 * the same across threads up to the error of sampling each thread's origin (measured here: a
 * worker's reading fell between two of the main thread's taken under 1 ms apart). A thread
 * whose clock runs δ ahead of the others sees δ more refill (at most δ × rate tokens); one
 * behind sees less, and a `fullAt` ahead of its clock is taken as it is (`max(fullAt, now)`),
 * never as time running backwards.
 *
 * @module
 */

/** Slots of one group: a key lives in one group, in any of its slots. */
export const GROUP_SLOTS = 8;
/** Groups of the default table: 8,192 × 8 = 65,536 buckets. */
export const RATE_GROUPS_DEFAULT = 8192;
/**
 * Failed tries for a group lock before it is taken over: only a thread stopped in the middle
 * of a `take()` (a terminated worker) holds it that long; a live holder keeps it for a few
 * hundred nanoseconds.
 */
export const LOCK_SPINS_MAX = 1 << 20;

/** Bytes per slot: `fullAt` (Float64) and the key (two Uint32); plus 4 per group (its lock). */
const SLOT_BYTES = 16;

/** Milliseconds on a clock shared by every thread of the process (see the module doc). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The limit a bucket enforces (`parseRateLimit` gives it). */
export interface BucketLimit {
  readonly perSecond: number;
  readonly burst: number;
}

let processTable: RateBuckets | null = null;

/**
 * The table this process's proxy counts in: made on first use in the main thread; a proxy
 * worker adopts the main thread's (`adoptRateBuckets`, from its start message) before serving.
 */
export function processRateBuckets(): RateBuckets {
  return processTable ??= RateBuckets.create();
}

/** A proxy worker counts in the main thread's table from now on. */
export function adoptRateBuckets(buffer: SharedArrayBuffer): void {
  if (processTable?.buffer !== buffer) processTable = new RateBuckets(buffer);
}

/** A fixed table of token buckets over a SharedArrayBuffer (see the module doc). */
export class RateBuckets {
  readonly buffer: SharedArrayBuffer;
  readonly groups: number;
  readonly #fullAt: Float64Array;
  /** Key of each slot as [hi, lo]; 0, 0: empty. */
  readonly #keys: Uint32Array;
  readonly #locks: Int32Array;

  /** A new table of `groups` × GROUP_SLOTS buckets. */
  static create(groups = RATE_GROUPS_DEFAULT): RateBuckets {
    if (!Number.isInteger(groups) || groups < 1) throw new Error(`bad group count ${groups}`);
    return new RateBuckets(new SharedArrayBuffer(groups * (GROUP_SLOTS * SLOT_BYTES + 4)));
  }

  /** The table in `buffer` (made by `create()`, possibly in another thread). */
  constructor(buffer: SharedArrayBuffer) {
    const groups = buffer.byteLength / (GROUP_SLOTS * SLOT_BYTES + 4);
    if (!Number.isInteger(groups) || groups < 1) {
      throw new Error(`not a rate bucket table: ${buffer.byteLength} bytes`);
    }
    const slots = groups * GROUP_SLOTS;
    this.buffer = buffer;
    this.groups = groups;
    this.#fullAt = new Float64Array(buffer, 0, slots);
    this.#keys = new Uint32Array(buffer, slots * 8, slots * 2);
    this.#locks = new Int32Array(buffer, slots * 16, groups);
  }

  /**
   * Takes one token from the bucket of `key` (service and client) at time `now` (ms, `nowMs()`
   * in the proxy): 0 when taken, else the ms until one is back (the request is refused and the
   * bucket unchanged).
   */
  take(key: string, limit: BucketLimit, now: number): number {
    const [hi, lo] = hashKey(key);
    const g = lo % this.groups;
    this.#lock(g);
    try {
      const slot = this.#slotOf(g, hi, lo, now);
      const perTokenMs = 1000 / limit.perSecond;
      const from = Math.max(this.#fullAt[slot]!, now);
      const waitMs = from - now - (limit.burst - 1) * perTokenMs;
      // A relative tolerance: sums of a fractional T must not refuse a token they owe.
      if (waitMs > perTokenMs * 1e-9) return waitMs;
      this.#fullAt[slot] = from + perTokenMs;
      return 0;
    } finally {
      Atomics.store(this.#locks, g, 0);
    }
  }

  /** Tokens left in the bucket of `key` at `now` (tests, explain): `burst` when it has none. */
  tokens(key: string, limit: BucketLimit, now: number): number {
    const [hi, lo] = hashKey(key);
    const g = lo % this.groups;
    this.#lock(g);
    try {
      const keys = this.#keys;
      for (let s = g * GROUP_SLOTS; s < (g + 1) * GROUP_SLOTS; s++) {
        if (keys[2 * s] === hi && keys[2 * s + 1] === lo) {
          const owed = Math.max(0, this.#fullAt[s]! - now) * limit.perSecond / 1000;
          return limit.burst - owed;
        }
      }
      return limit.burst;
    } finally {
      Atomics.store(this.#locks, g, 0);
    }
  }

  /** Buckets in use (not full) at `now`. */
  used(now: number): number {
    let n = 0;
    for (let s = 0; s < this.#fullAt.length; s++) {
      if ((this.#keys[2 * s] !== 0 || this.#keys[2 * s + 1] !== 0) && this.#fullAt[s]! > now) n++;
    }
    return n;
  }

  #lock(g: number): void {
    const locks = this.#locks;
    for (let spins = 0; Atomics.compareExchange(locks, g, 0, 1) !== 0; spins++) {
      // Taken over: its holder stopped mid-update (see LOCK_SPINS_MAX); the slots it may have
      // half written are a key and a time, each valid on its own.
      if (spins >= LOCK_SPINS_MAX) return;
    }
  }

  /**
   * The slot of key (hi, lo) in group `g` (lock held): its own, else an empty one, else a full
   * one (fullAt ≤ now), else the one nearest to full, which is forgotten.
   */
  #slotOf(g: number, hi: number, lo: number, now: number): number {
    const keys = this.#keys;
    const fullAt = this.#fullAt;
    const first = g * GROUP_SLOTS;
    let free = -1;
    let nearest = first;
    for (let s = first; s < first + GROUP_SLOTS; s++) {
      const h = keys[2 * s]!;
      const l = keys[2 * s + 1]!;
      if (h === hi && l === lo) return s;
      if (free >= 0) continue;
      if ((h === 0 && l === 0) || fullAt[s]! <= now) free = s;
      else if (fullAt[s]! < fullAt[nearest]!) nearest = s;
    }
    const s = free >= 0 ? free : nearest;
    keys[2 * s] = hi;
    keys[2 * s + 1] = lo;
    fullAt[s] = now;
    return s;
  }
}

/** A 64-bit hash of `key` as two Uint32 (FNV-1a with two offsets), never 0, 0. */
export function hashKey(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  // Final mixing (murmur3's fmix32), so the group index uses well-spread low bits.
  a = fmix32(a);
  b = fmix32(b ^ a);
  return a === 0 && b === 0 ? [0, 1] : [a, b];
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
