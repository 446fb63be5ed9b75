/**
 * CatalogIndex: what the API answers about the whole catalog without reading every instance per
 * request (Consul answers these from its indexes): the services with the union of their
 * instances' tags (`/v1/catalog/services`), instance counts by health status (`/metrics`) and
 * the instances that have a check in a given status (`/v1/health/state/warning|critical`).
 *
 * It is kept from the change feed's rows: a change costs O(rows it wrote), using each row's
 * `before` to take back what the row added. An instance's counted status is the worst of its own
 * sources (Docker, checks) kept per node, and its node's part is applied when counting, so a
 * node's status flip costs nothing here. A reset (restore, snapshot install) rebuilds by pages
 * of the store, yielding between them; while it does, the answers are computed from the store as
 * before this index existed (`scan*`, also the reference the tests compare with). A change that
 * comes meanwhile is applied to the part already read (ids up to the last page), the rest is
 * read later as it is then.
 *
 * @module
 */
import type { Change, CheckStatus, Instance, NodeInfo, Store } from "../store/mod.ts";
import { CHECK_STATUSES, instanceChecks, instanceHealth } from "../store/mod.ts";
import { compareCodePoints } from "../lib/code_point_order.ts";

/** Instances read per page when a reset rebuilds the index. */
export const REBUILD_PAGE = 2000;

const RANK = { passing: 0, warning: 1, critical: 2 } as const satisfies Record<CheckStatus, number>;

/** Statuses whose instances the index lists (a passing list is about every instance). */
export type ListedStatus = "warning" | "critical";

interface ServiceEntry {
  instances: number;
  /** Tag → instances of the service carrying it. */
  tags: Map<string, number>;
}

/** The counts and sets the index keeps. */
class State {
  readonly services = new Map<string, ServiceEntry>();
  /** Node name → instances by their own status's rank (the node's part not included). */
  readonly ownByNode = new Map<string, [number, number, number]>();
  /** Node name → the rank of the node's part (liveness, node-level checks); absent: passing. */
  readonly nodeRank = new Map<string, number>();
  /** Ids of instances with at least one check in the status. */
  readonly withCheck: Record<ListedStatus, Set<string>> = {
    warning: new Set(),
    critical: new Set(),
  };
  /** A service or a tag of one came or went in the last `apply`. */
  servicesChanged = false;

  add(i: Instance, sign: 1 | -1): void {
    let s = this.services.get(i.service);
    if (s === undefined) {
      s = { instances: 0, tags: new Map() };
      this.services.set(i.service, s);
    }
    s.instances += sign;
    for (const t of new Set(i.tags)) {
      const n = (s.tags.get(t) ?? 0) + sign;
      if (n === 0) s.tags.delete(t);
      else s.tags.set(t, n);
    }
    if (s.instances === 0) this.services.delete(i.service);
    let own = this.ownByNode.get(i.node);
    if (own === undefined) {
      own = [0, 0, 0];
      this.ownByNode.set(i.node, own);
    }
    own[RANK[instanceHealth(i, "alive").status]] += sign;
    if (own[0] === 0 && own[1] === 0 && own[2] === 0) this.ownByNode.delete(i.node);
    const statuses = new Set(instanceChecks(i, undefined).map((v) => v.status));
    for (const st of ["warning", "critical"] as const) {
      if (sign < 0) this.withCheck[st].delete(i.id);
      else if (statuses.has(st)) this.withCheck[st].add(i.id);
    }
  }

  setNode(name: string, n: NodeInfo | null): void {
    const rank = n === null ? 0 : RANK[nodePart(n)];
    if (rank === 0) this.nodeRank.delete(name);
    else this.nodeRank.set(name, rank);
  }

  apply(c: Change, upTo: string | null): void {
    for (const d of c.nodes) this.setNode(d.name, d.after);
    // The tags of each service the change touches, as they were, to see if the list changed.
    const was = new Map<string, string | null>();
    for (const d of c.instances) {
      // While a rebuild reads pages, only ids it has read already (the rest are read later).
      if (upTo !== null && compareCodePoints(d.id, upTo) > 0) continue;
      for (const name of [d.before?.service, d.after?.service]) {
        if (name !== undefined && !was.has(name)) was.set(name, this.#listed(name));
      }
      if (d.before !== null) this.add(d.before, -1);
      if (d.after !== null) this.add(d.after, 1);
    }
    this.servicesChanged = false;
    for (const [name, before] of was) {
      if (this.#listed(name) !== before) this.servicesChanged = true;
    }
  }

  /** How `/v1/catalog/services` shows service `name` (null: not listed). */
  #listed(name: string): string | null {
    const s = this.services.get(name);
    return s === undefined ? null : JSON.stringify([...s.tags.keys()].sort());
  }
}

/** The status of a node's part of its instances' health. */
function nodePart(n: NodeInfo): CheckStatus {
  return instanceHealth(
    { node: n.name, docker: null, check: null, checkResult: null, containerId: null },
    n,
  ).node.status;
}

export interface CatalogIndexOptions {
  /** Instances read per page by a rebuild (default REBUILD_PAGE). */
  pageSize?: number;
}

export class CatalogIndex {
  readonly #store: Store;
  readonly #pageSize: number;
  #state: State | null = null;
  /** A rebuild in progress, or null; bumped to abandon one. */
  #rebuild: { state: State; upTo: string } | null = null;
  #generation = 0;
  #unsubscribe: () => void;
  /** The applied index of the last change to the service names or their tags (see below). */
  #servicesIndex: number;

  /** Reads the whole catalog once (start) and follows the store's changes. */
  constructor(store: Store, opts: CatalogIndexOptions = {}) {
    this.#store = store;
    this.#pageSize = opts.pageSize ?? REBUILD_PAGE;
    this.#state = this.#load();
    this.#servicesIndex = store.tableIndex("instances");
    this.#unsubscribe = store.subscribe((c) => this.#onChange(c));
  }

  close(): void {
    this.#unsubscribe();
    this.#generation++;
  }

  /** Whether answers come from the index (false while a reset rebuilds it). */
  get ready(): boolean {
    return this.#state !== null;
  }

  /** Service names (sorted, as Consul's) with the union of their instances' tags, sorted. */
  services(): Map<string, string[]> {
    const st = this.#state;
    if (st === null) {
      return new Map([...this.#store.services()].sort(([a], [b]) => compareCodePoints(a, b)));
    }
    const names = [...st.services.keys()].sort(compareCodePoints);
    return new Map(names.map((n) => [n, [...st.services.get(n)!.tags.keys()].sort()]));
  }

  /**
   * The X-Consul-Index of `/v1/catalog/services`: moves only when a service or a tag of one
   * comes or goes (Consul's services index), not when an instance's health or address changes,
   * so a blocked read of the list is not answered with the same list. Since this agent started
   * (it starts at the instances table's index), never backwards.
   */
  servicesIndex(): number {
    // While a rebuild reads pages, any change may have moved the list.
    return this.#state === null
      ? Math.max(this.#servicesIndex, this.#store.tableIndex("instances"))
      : this.#servicesIndex;
  }

  /** How many services have at least one instance. */
  serviceCount(): number {
    return this.#state?.services.size ?? this.#store.services().size;
  }

  /** Instances by their health status (instanceHealth with their node). */
  instancesByStatus(): Record<CheckStatus, number> {
    const st = this.#state;
    if (st === null) return scanInstancesByStatus(this.#store);
    const out: Record<CheckStatus, number> = { passing: 0, warning: 0, critical: 0 };
    for (const [node, own] of st.ownByNode) {
      const nodeRank = st.nodeRank.get(node) ?? 0;
      own.forEach((n, rank) => out[CHECK_STATUSES[Math.max(rank, nodeRank)]!] += n);
    }
    return out;
  }

  /** Ids of the instances with at least one check (Docker, own, registered) in `status`. */
  withCheckStatus(status: ListedStatus): ReadonlySet<string> {
    return this.#state?.withCheck[status] ?? scanWithCheckStatus(this.#store, status);
  }

  #load(): State {
    const st = new State();
    for (const n of this.#store.nodes()) st.setNode(n.name, n);
    for (const i of this.#store.instances()) st.add(i, 1);
    return st;
  }

  #onChange(c: Change): void {
    if (c.reset) {
      this.#servicesIndex = Math.max(this.#servicesIndex, c.index);
      this.#startRebuild();
      return;
    }
    if (c.instances.length === 0 && c.nodes.length === 0) return;
    const st = this.#state;
    if (st !== null) {
      st.apply(c, null);
      if (st.servicesChanged) this.#servicesIndex = c.index;
    }
    if (this.#rebuild !== null) this.#rebuild.state.apply(c, this.#rebuild.upTo);
  }

  /** Rebuilds from the store: at once when one page holds it all, else page by page. */
  #startRebuild(): void {
    const generation = ++this.#generation;
    const first = this.#store.instancesPage("", this.#pageSize);
    if (first.length < this.#pageSize) {
      this.#rebuild = null;
      this.#state = this.#load();
      return;
    }
    this.#state = null;
    const state = new State();
    for (const n of this.#store.nodes()) state.setNode(n.name, n);
    const rebuild = { state, upTo: "" };
    this.#rebuild = rebuild;
    const step = (page: Instance[]) => {
      if (generation !== this.#generation) return;
      for (const i of page) state.add(i, 1);
      if (page.length < this.#pageSize) {
        this.#rebuild = null;
        this.#state = state;
        // The store's index was reported meanwhile: never go below it.
        this.#servicesIndex = Math.max(this.#servicesIndex, this.#store.tableIndex("instances"));
        return;
      }
      rebuild.upTo = page[page.length - 1]!.id;
      setTimeout(() => {
        if (generation !== this.#generation) return;
        step(this.#store.instancesPage(rebuild.upTo, this.#pageSize));
      }, 0);
    };
    step(first);
  }
}

/** Instances by health status, read from every instance (the index's reference). */
export function scanInstancesByStatus(store: Store): Record<CheckStatus, number> {
  const out: Record<CheckStatus, number> = { passing: 0, warning: 0, critical: 0 };
  const nodes = new Map(store.nodes().map((n) => [n.name, n]));
  for (const i of store.instances()) out[instanceHealth(i, nodes.get(i.node)).status]++;
  return out;
}

/** Ids of instances with a check in `status`, read from every instance (the reference). */
export function scanWithCheckStatus(store: Store, status: ListedStatus): Set<string> {
  return new Set(
    store.instances().filter((i) => instanceChecks(i, undefined).some((v) => v.status === status))
      .map((i) => i.id),
  );
}
