/**
 * OwnRows: this node's Docker rows (instances with `node` = this node and a `containerId`), by
 * id and by container, kept from the change feed's rows. A reconcile pass and a `kill` event
 * then cost O(this node's containers), not a read of every instance of the node (an agent that
 * also holds API registrations, 100,000 in the scale bench, would read them all per pass).
 * A reset (restore, snapshot install) reads the node's rows again.
 *
 * @module
 */
import type { Change, Instance, Store } from "../store/mod.ts";
import type { InstanceReader } from "./reconcile.ts";

export class OwnRows implements InstanceReader {
  readonly #store: Pick<Store, "instance" | "instancesOfNode">;
  readonly #node: string;
  readonly #byId = new Map<string, Instance>();
  /** Container id → ids of its instances. */
  readonly #byContainer = new Map<string, Set<string>>();

  constructor(store: Pick<Store, "instance" | "instancesOfNode">, node: string) {
    this.#store = store;
    this.#node = node;
    this.load();
  }

  /** Reads this node's Docker rows from the store again. */
  load(): void {
    this.#byId.clear();
    this.#byContainer.clear();
    for (const i of this.#store.instancesOfNode(this.#node)) this.#set(i.id, i);
  }

  /** Applies the instance rows `c` wrote ("set to after": applying one twice changes nothing). */
  apply(c: Change): void {
    if (c.reset) {
      this.load();
      return;
    }
    for (const d of c.instances) this.#set(d.id, d.after);
  }

  instance(id: string): Instance | undefined {
    return this.#byId.get(id) ?? this.#store.instance(id);
  }

  dockerRows(): Iterable<Instance> {
    return this.#byId.values();
  }

  /** This node's instances of container `containerId`. */
  ofContainer(containerId: string): Instance[] {
    return [...this.#byContainer.get(containerId) ?? []].map((id) => this.#byId.get(id)!);
  }

  #set(id: string, row: Instance | null): void {
    const old = this.#byId.get(id);
    if (old !== undefined) {
      const ids = this.#byContainer.get(old.containerId!);
      ids?.delete(id);
      if (ids?.size === 0) this.#byContainer.delete(old.containerId!);
      this.#byId.delete(id);
    }
    if (row === null || row.node !== this.#node || row.containerId === null) return;
    this.#byId.set(id, row);
    const ids = this.#byContainer.get(row.containerId);
    if (ids === undefined) this.#byContainer.set(row.containerId, new Set([id]));
    else ids.add(id);
  }
}
