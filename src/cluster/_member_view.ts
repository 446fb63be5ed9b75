/**
 * This replica's applied membership, kept in memory: who is a voter or a learner, the highest id
 * ever handed out, and every member's cluster address. Re-read from the store on each change of
 * the member table (conf changes, snapshot installs), so checks made for every incoming message
 * cost no SQLite read.
 *
 * @module
 */
import type { Store } from "../store/mod.ts";

export class MemberView {
  readonly #store: Store;
  /** id → cluster address, from the store's members, join answers and hellos. */
  readonly addresses = new Map<number, string>();
  #voters = new Set<number>();
  #learners = new Set<number>();
  #idMax = 0;
  /** id → name of the current members. */
  #names = new Map<number, string>();

  constructor(store: Store) {
    this.#store = store;
    store.subscribe((c) => {
      if (c.tables.has("members")) this.#refresh();
    });
    this.#refresh();
  }

  #refresh(): void {
    const cs = this.#store.confState();
    this.#voters = new Set(cs.voters);
    this.#learners = new Set(cs.learners);
    this.#idMax = this.#store.memberIdMax();
    this.#names = new Map();
    for (const m of this.#store.members()) {
      this.#names.set(m.id, m.name);
      if (m.address !== "") this.addresses.set(m.id, m.address);
    }
  }

  /** Whether `id` is a voter or learner in this replica's applied membership. */
  isMember(id: number): boolean {
    return this.#voters.has(id) || this.#learners.has(id);
  }

  /** The highest member id this replica knows was handed out. */
  get idMax(): number {
    return this.#idMax;
  }

  /** Whether `id` is a learner in this replica's applied membership. */
  isLearner(id: number): boolean {
    return this.#learners.has(id);
  }

  /**
   * Whether member `id` was removed: it was handed out (ids are never reused, so it is not a
   * member still to come) and is no longer a member.
   */
  wasRemoved(id: number): boolean {
    return id > 0 && id <= this.#idMax && !this.isMember(id);
  }

  /** The member's name, or `id N` when this replica does not know it. */
  name(id: number): string {
    return this.#names.get(id) ?? `id ${id}`;
  }

  /** Whether `id` is a member here and its name is `name` (a certificate's node). */
  isMemberNamed(id: number, name: string): boolean {
    return this.isMember(id) && this.#names.get(id) === name;
  }
}
