/**
 * NodeItems: what one node's rows give a part of the agent (the checks HealthChecker runs, the
 * registered checks CheckTimers times), kept current from the change feed's rows: a change costs
 * O(rows of this node it wrote), never a rescan of the node's instances. `load()` reads them all
 * (start, and a reset: a restore or a snapshot install).
 *
 * Items are derived per owner: the node row, and each instance row of the node. Each item has an
 * id unique on the node; the order is the node's items first, then the instances' by instance id.
 *
 * @module
 */
import type { Change, Instance, NodeInfo, Store } from "../store/mod.ts";
import { compareCodePoints } from "../lib/code_point_order.ts";

/** The owner key of the node row's items (instance ids never contain a NUL). */
const NODE_OWNER = "\u0000node";

export interface NodeItemsOptions<T> {
  /** The node whose rows count. */
  node: string;
  /** The items of one of the node's instances (in their order). */
  ofInstance: (i: Instance) => T[];
  /** The items of the node row itself. */
  ofNode: (n: NodeInfo) => T[];
}

/**
 * What one change did to the items: the items (re)derived, the ids that went away, and the
 * owners whose rows it wrote (`load`: every owner before and after).
 */
export interface ItemsChanged<T> {
  changed: T[];
  gone: string[];
  owners: string[];
}

export class NodeItems<T extends { id: string }> {
  readonly #o: NodeItemsOptions<T>;
  /** Items by owner (owners without items are absent). */
  readonly #byOwner = new Map<string, T[]>();
  /** Instance owners with items, in the store's id order (for `first`). */
  #order: string[] = [];
  /** Item and its owner, by item id. */
  readonly #byId = new Map<string, { item: T; owner: string }>();
  #count = 0;

  constructor(o: NodeItemsOptions<T>) {
    this.#o = o;
  }

  /** How many items there are. */
  get size(): number {
    return this.#count;
  }

  get(id: string): T | undefined {
    return this.#byId.get(id)?.item;
  }

  /** Every item, node's first, then by instance id. */
  *all(): Iterable<T> {
    yield* this.#byOwner.get(NODE_OWNER) ?? [];
    for (const o of this.#order) yield* this.#byOwner.get(o)!;
  }

  /** The first `max` items in order: O(max), whatever the number of instances. */
  first(max: number): T[] {
    const out: T[] = [];
    const take = (items: readonly T[]) => {
      for (let i = 0; i < items.length && out.length < max; i++) out.push(items[i]!);
      return out.length < max;
    };
    if (!take(this.#byOwner.get(NODE_OWNER) ?? [])) return out;
    for (const o of this.#order) if (!take(this.#byOwner.get(o)!)) break;
    return out;
  }

  /** Reads every item from the store again; answers every item then and the ids that went. */
  load(store: Pick<Store, "node" | "instancesOfNode">): ItemsChanged<T> {
    const before = new Set(this.#byId.keys());
    this.#byOwner.clear();
    this.#byId.clear();
    this.#order = [];
    this.#count = 0;
    const node = store.node(this.#o.node);
    if (node !== undefined) this.#set(NODE_OWNER, this.#o.ofNode(node));
    const instances = store.instancesOfNode(this.#o.node);
    // In the store's order (by id), which `#order` keeps.
    for (const i of instances) this.#set(i.id, this.#o.ofInstance(i), false);
    for (const id of this.#byId.keys()) before.delete(id);
    return { changed: [...this.all()], gone: [...before], owners: [NODE_OWNER, ...this.#order] };
  }

  /**
   * Applies the rows of this node that `c` wrote (`reset`: reads everything, as `load`).
   * Rows are "set to after": applying a change twice changes nothing the second time.
   */
  apply(c: Change, store: Pick<Store, "node" | "instancesOfNode">): ItemsChanged<T> {
    if (c.reset) return this.load(store);
    const changed: T[] = [];
    const dropped: string[] = [];
    const owners: string[] = [];
    const node = this.#o.node;
    for (const d of c.nodes) {
      if (d.name !== node) continue;
      const items = d.after === null ? [] : this.#o.ofNode(d.after);
      dropped.push(...this.#set(NODE_OWNER, items));
      changed.push(...items);
      owners.push(NODE_OWNER);
    }
    for (const d of c.instances) {
      if (d.before?.node !== node && d.after?.node !== node) continue;
      const items = d.after?.node === node ? this.#o.ofInstance(d.after) : [];
      dropped.push(...this.#set(d.id, items));
      changed.push(...items);
      owners.push(d.id);
    }
    // An id dropped by one owner and taken by another in the same change stays.
    return { changed, gone: dropped.filter((id) => !this.#byId.has(id)), owners };
  }

  /**
   * Whether `owner` (one of ItemsChanged.owners) comes after every item of the owner of item
   * `id` in the order of `all()`; false when there is no item `id`.
   */
  ownerAfter(owner: string, id: string): boolean {
    const of = this.#byId.get(id)?.owner;
    if (of === undefined || owner === NODE_OWNER) return false;
    return of === NODE_OWNER || compareCodePoints(of, owner) < 0;
  }

  /** Replaces `owner`'s items; answers the ids it no longer has. */
  #set(owner: string, items: T[], sorted = true): string[] {
    const old = this.#byOwner.get(owner) ?? [];
    for (const it of old) {
      if (this.#byId.get(it.id)?.owner === owner) this.#byId.delete(it.id);
    }
    for (const it of items) this.#byId.set(it.id, { item: it, owner });
    this.#count += items.length - old.length;
    if (items.length > 0) this.#byOwner.set(owner, items);
    else this.#byOwner.delete(owner);
    if (owner !== NODE_OWNER && (old.length === 0) !== (items.length === 0)) {
      if (!sorted) this.#order.push(owner);
      else if (items.length > 0) this.#order.splice(sortedIndex(this.#order, owner), 0, owner);
      else this.#order.splice(sortedIndex(this.#order, owner), 1);
    }
    const kept = new Set(items.map((it) => it.id));
    return old.filter((it) => !kept.has(it.id)).map((it) => it.id);
  }
}

/** Where `s` is or would go in `list`, sorted as the store sorts ids (binary search). */
function sortedIndex(list: string[], s: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareCodePoints(list[mid]!, s) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
