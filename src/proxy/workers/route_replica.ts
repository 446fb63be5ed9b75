/**
 * The route rows on both sides of the thread boundary. `RouteSender` (main thread) turns the
 * store's change feed into route messages (protocol.ts); `RouteReplica` (in a worker) applies
 * them and is the `RouteSource` the worker's HttpProxy reads, so the worker's route table is
 * kept by the same RouteFeed as on the main thread, from the same deltas.
 *
 * Versions: a delta names the version of the message before it (`from`). The replica applies a
 * delta when `from` is at most the version it holds and the delta is newer (a delta covering a
 * full table it already has sets rows to their `after` again: no change); a `from` beyond it
 * means a message was missed: `receive` answers "resync" and deltas are ignored until the next
 * full table.
 *
 * @module
 */
import type {
  Change,
  Instance,
  InstanceDelta,
  NodeDelta,
  NodeInfo,
  Store,
  Table,
} from "../../store/mod.ts";
import type { RouteSource } from "../route_feed.ts";
import type { RoutesDelta, RoutesFull, RoutesMessage } from "./protocol.ts";

/** What the sender reads of the store. */
export type RouteRowsSource = Pick<Store, "appliedIndex" | "instances" | "nodes">;

/** Main thread: route messages from the store's change feed. */
export class RouteSender {
  readonly #store: RouteRowsSource;
  /** Version of the last message broadcast (0: none yet). */
  #last = 0;

  constructor(store: RouteRowsSource) {
    this.#store = store;
  }

  /** Every row now, at the store's applied index. */
  full(): RoutesFull {
    return {
      type: "routes.full",
      version: this.#store.appliedIndex(),
      instances: this.#store.instances(),
      nodes: this.#store.nodes(),
    };
  }

  /**
   * The message every worker gets for a change: a full table after a reset, a delta when
   * instance or node rows changed, null otherwise.
   */
  onChange(c: Change): RoutesMessage | null {
    if (c.reset) {
      const full = this.full();
      this.#last = Math.max(this.#last, full.version);
      return full;
    }
    if (c.instances.length === 0 && c.nodes.length === 0) return null;
    const delta: RoutesDelta = {
      type: "routes.delta",
      from: this.#last,
      version: c.index,
      instances: c.instances.map((d) => ({ id: d.id, after: d.after })),
      nodes: c.nodes.map((d) => ({ name: d.name, after: d.after })),
    };
    this.#last = c.index;
    return delta;
  }
}

/** Worker: the rows the main thread sent, as a RouteSource. */
export class RouteReplica implements RouteSource {
  readonly #instances = new Map<string, Instance>();
  readonly #nodes = new Map<string, NodeInfo>();
  readonly #subscribers = new Set<(c: Change) => void>();
  /** Instance ids in order, for `instancesPage`; null: to be sorted again. */
  #sorted: string[] | null = [];
  /** The version held; -1: none yet (every delta waits for a full table). */
  #version = -1;
  /** A gap was seen: deltas are ignored until a full table. */
  #gap = false;

  /** The store index the rows are at; -1 before the first full table. */
  get version(): number {
    return this.#version;
  }

  /**
   * Applies a route message and tells the subscribers (a full table is a `reset`). Returns
   * "resync" when a message was missed (the main thread is to send a full table), else null.
   */
  receive(m: RoutesMessage): "resync" | null {
    if (m.type === "routes.full") {
      this.#load(m);
      return null;
    }
    if (this.#gap) return null; // asked already
    if (m.from > this.#version) {
      this.#gap = true;
      return "resync";
    }
    if (m.version <= this.#version) return null;
    this.#apply(m);
    return null;
  }

  #load(m: RoutesFull): void {
    this.#instances.clear();
    this.#nodes.clear();
    for (const i of m.instances) this.#instances.set(i.id, i);
    for (const n of m.nodes) this.#nodes.set(n.name, n);
    this.#sorted = null;
    this.#version = m.version;
    this.#gap = false;
    this.#emit({
      index: m.version,
      tables: new Set<Table>(["instances", "nodes"]),
      services: new Set(),
      keys: new Set(),
      instances: [],
      nodes: [],
      reset: true,
    });
  }

  #apply(m: RoutesDelta): void {
    const instances: InstanceDelta[] = [];
    const services = new Set<string>();
    for (const { id, after } of m.instances) {
      const before = this.#instances.get(id) ?? null;
      if (before === null && after === null) continue;
      if (after === null) this.#instances.delete(id);
      else this.#instances.set(id, after);
      if ((before === null) !== (after === null)) this.#sorted = null;
      if (before !== null) services.add(before.service);
      if (after !== null) services.add(after.service);
      instances.push({ id, before, after });
    }
    const nodes: NodeDelta[] = [];
    for (const { name, after } of m.nodes) {
      const before = this.#nodes.get(name) ?? null;
      if (before === null && after === null) continue;
      if (after === null) this.#nodes.delete(name);
      else this.#nodes.set(name, after);
      nodes.push({ name, before, after });
    }
    this.#version = m.version;
    const tables = new Set<Table>();
    if (instances.length > 0) tables.add("instances");
    if (nodes.length > 0) tables.add("nodes");
    this.#emit({
      index: m.version,
      tables,
      services,
      keys: new Set(),
      instances,
      nodes,
      reset: false,
    });
  }

  #emit(c: Change): void {
    for (const fn of [...this.#subscribers]) fn(c);
  }

  /** Instances with id > `afterId`, in id order, at most `limit`. */
  instancesPage(afterId: string, limit: number): Instance[] {
    const ids = this.#sorted ??= [...this.#instances.keys()].sort((a, b) =>
      a < b ? -1 : a > b ? 1 : 0
    );
    // First id > afterId (binary search).
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ids[mid]! <= afterId) lo = mid + 1;
      else hi = mid;
    }
    return ids.slice(lo, lo + limit).map((id) => this.#instances.get(id)!);
  }

  /** Every instance, in id order. */
  instances(): Instance[] {
    return this.instancesPage("", this.#instances.size);
  }

  nodes(): NodeInfo[] {
    return [...this.#nodes.values()];
  }

  subscribe(fn: (c: Change) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }
}
