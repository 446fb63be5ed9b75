/**
 * A bounded interner for the strings that repeat across many rows of the in-memory views (the
 * DNS zone, the proxy's route table): addresses, tags, service and node names. Equal strings
 * read from SQLite or decoded from the Raft log are distinct heap objects; `intern(s)` hands
 * back one canonical copy, so 100,000 instances of 1,000 services hold 1,000 service-name
 * strings, and two views holding the same address share it. Unique values (instance ids) gain
 * nothing and are not interned.
 *
 * Bounded by two generations of INTERN_GENERATION_MAX entries: when the current generation is
 * full it becomes the previous one and the older previous one is dropped; a value found in the
 * previous generation moves to the current one. A value dropped while views still hold it only
 * means the next equal value is a second copy, never a wrong one.
 *
 * ```ts
 * const service = intern(row.service.toLowerCase());
 * const tags = internList(row.tags.map((t) => t.toLowerCase()));
 * ```
 *
 * @module
 */

/** Most entries per generation (two generations are kept). */
export const INTERN_GENERATION_MAX = 131_072;

/** Canonical values by key, in two bounded generations (module doc). */
export class Interner<V> {
  readonly #generationMax: number;
  #current = new Map<string, V>();
  #previous = new Map<string, V>();

  constructor(generationMax: number = INTERN_GENERATION_MAX) {
    this.#generationMax = generationMax;
  }

  /** The value held for `key` (moved to the current generation), or undefined. */
  get(key: string): V | undefined {
    const held = this.#current.get(key);
    if (held !== undefined) return held;
    const older = this.#previous.get(key);
    if (older !== undefined) this.#add(key, older);
    return older;
  }

  /** Holds `value` for `key` (not held yet) and returns it. */
  add(key: string, value: V): V {
    this.#add(key, value);
    return value;
  }

  /** Entries held over both generations (for tests and metrics). */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  #add(key: string, value: V): void {
    if (this.#current.size >= this.#generationMax) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#current.set(key, value);
  }
}

const strings = new Interner<string>();
const lists = new Interner<readonly string[]>();
const EMPTY: readonly string[] = Object.freeze([]);

/** The canonical copy of `s` (module doc). */
export function intern(s: string): string {
  return strings.get(s) ?? strings.add(s, s);
}

/**
 * The canonical frozen copy of a list of strings (lists equal element by element, in order,
 * give the same array), its elements interned too.
 */
export function internList(items: readonly string[]): readonly string[] {
  if (items.length === 0) return EMPTY;
  const key = JSON.stringify(items);
  return lists.get(key) ?? lists.add(key, Object.freeze(items.map(intern)));
}
