/**
 * The zone view: what DNS can answer, held in memory and kept current by deltas (zone_delta.ts:
 * plain rows, "set to after"), so one changed instance costs the same with 100 or 100,000 in the
 * catalog. Only served instances (their own sources and their node's passing) enter the service
 * names; reverse (PTR) names cover every registered node and instance address, as Consul's
 * catalog does. Names are keyed lower case, so lookups are case-insensitive.
 *
 * Per instance the zone keeps one compact entry (address, port, weight, lower-cased tags; the
 * strings interned, src/lib/intern.ts), indexed by id, by node (a node delta re-evaluates only
 * that node's instances) and, when served, by service. `apply()` returns the dependency keys
 * (`serviceDep`, `nodeDep`, `addressDep`, `ZONE_DEP`) whose answers the delta changed, so cached
 * answers are dropped name by name (answer_cache.ts). Applying the same delta again changes
 * nothing and returns no key.
 *
 * @module
 */
import { intern, internList } from "../lib/intern.ts";
import { canonicalIp } from "./ip_hex.ts";
import {
  fillDelta,
  type ZoneDelta,
  type ZoneFilter,
  type ZoneInstanceRow,
  type ZoneNodeRow,
} from "./zone_delta.ts";
import type { Instance, NodeInfo } from "../store/mod.ts";

export type { ZoneFilter };

/** What the zone is built with (DnsOptions' naming part). */
export interface ZoneOptions {
  /** Lower case, trailing dot: `berth.`. */
  domain: string;
  /** Lower case, no dot: names may carry it (`NAME.service.DC.DOMAIN`); default `dc1`. */
  datacenter?: string;
  /** Lower case, trailing dot, or null: names under it answer the proxy members. */
  edgeDomain: string | null;
  /** TTL (seconds) of service, node and addr answers. */
  ttl: number;
  /** Service TTLs (seconds) by lower-cased service name; `*` replaces `ttl` for other services. */
  serviceTtl?: ReadonlyMap<string, number>;
  /** What the constructor's data may name (`--dns-acl`); absent: everything. */
  visible?: ZoneFilter;
}

/** The names a reverse (PTR) lookup of one address answers with, before the domain. */
export interface ReverseNames {
  /** Lower-cased names of the nodes with this address, sorted. */
  nodes: readonly string[];
  /** Lower-cased names of the services with an instance at this address, sorted. */
  services: readonly string[];
}

/** One served instance, reduced to what answers need. */
export interface ZoneInstance {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  /** Lower-cased, sorted, each once. */
  readonly tags: readonly string[];
}

/** Dependency key of the apex, edge and negative answers: name servers, edge members, SOA. */
export const ZONE_DEP = "zone";
/** Dependency key of a lower-cased service's names (every tag, datacenter and type form). */
export function serviceDep(service: string): string {
  return `service ${service}`;
}
/** Dependency key of a lower-cased node name's answers. */
export function nodeDep(node: string): string {
  return `node ${node}`;
}
/** Dependency key of the PTR answers of an address (canonicalIp form). */
export function addressDep(address: string): string {
  return `addr ${address}`;
}

/** One instance the zone holds (visible, any health). A class: one shape, no closures. */
class Entry implements ZoneInstance {
  readonly id: string;
  /** Lower-cased. */
  readonly service: string;
  readonly node: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly tags: readonly string[];
  /** Its own sources pass. */
  readonly passing: boolean;
  /** It passes and so does its node: it is in its service's answers. */
  served = false;

  constructor(row: ZoneInstanceRow) {
    this.id = row.id;
    this.service = intern(row.service.toLowerCase());
    this.node = intern(row.node);
    this.address = intern(row.address);
    this.port = row.port;
    this.weight = row.weight;
    this.tags = internList(lowerSet(row.tags));
    this.passing = row.passing;
  }

  same(o: Entry): boolean {
    return this.service === o.service && this.node === o.node && this.address === o.address &&
      this.port === o.port && this.weight === o.weight && this.passing === o.passing &&
      sameList(this.tags, o.tags);
  }
}

/** A service's served instances; `sorted` (by id) is made when asked and dropped on change. */
class ServiceEntry {
  readonly served = new Set<Entry>();
  sorted: Entry[] | null = null;
}

/**
 * The names at one address, as sorted multisets: one element per node or instance there. The
 * zone holds a bare service name instead when one instance and no node are there (the common
 * case: a container's own address).
 */
class ReverseEntry {
  readonly nodes: string[];
  readonly services: string[];

  constructor(nodes: string[], services: string[]) {
    this.nodes = nodes;
    this.services = services;
  }
}

const NONE: readonly ZoneInstance[] = Object.freeze([]);

export class Zone {
  readonly domain: string;
  readonly datacenter: string;
  readonly edgeDomain: string | null;
  readonly ttl: number;
  readonly serviceTtls: ReadonlyMap<string, number>;
  /**
   * The suffixes handlers match, datacenter-qualified first: `.service.DC.DOMAIN` then
   * `.service.DOMAIN`; likewise `.node.` and `.addr.`. `.EDGE` (or null).
   */
  readonly serviceSuffixes: readonly [string, string];
  readonly nodeSuffixes: readonly [string, string];
  readonly addrSuffixes: readonly [string, string];
  readonly edgeSuffix: string | null;
  #version: number;
  readonly #byId = new Map<string, Entry>();
  readonly #byNode = new Map<string, Set<Entry>>();
  readonly #services = new Map<string, ServiceEntry>();
  /** Every node by exact name, any status, visible or not. */
  readonly #nodeRows = new Map<string, ZoneNodeRow>();
  /** Visible nodes by lower-cased name (two names equal but for case: the last in name order). */
  readonly #nodes = new Map<string, ZoneNodeRow>();
  readonly #reverse = new Map<string, ReverseEntry | string>();
  #nameServers: readonly string[] = [];
  #edgeAddresses: readonly string[] = [];
  /** Where apply() collects the keys it changed; null outside apply() (and in fill()). */
  #changed: Set<string> | null = null;

  /** A zone holding `data` (empty arrays: an empty zone to fill with `apply`). */
  constructor(
    data: { instances: readonly Instance[]; nodes: readonly NodeInfo[]; version: number },
    options: ZoneOptions,
  ) {
    this.domain = options.domain;
    this.datacenter = options.datacenter ?? "dc1";
    this.edgeDomain = options.edgeDomain;
    this.ttl = options.ttl;
    this.serviceTtls = options.serviceTtl ?? new Map();
    const suffixes = (kind: string): [string, string] => [
      `.${kind}.${this.datacenter}.${this.domain}`,
      `.${kind}.${this.domain}`,
    ];
    this.serviceSuffixes = suffixes("service");
    this.nodeSuffixes = suffixes("node");
    this.addrSuffixes = suffixes("addr");
    this.edgeSuffix = this.edgeDomain === null ? null : `.${this.edgeDomain}`;
    this.#version = data.version;
    this.fill(fillDelta(data, options.visible));
  }

  /** Store index of the last change applied; the SOA serial. */
  get version(): number {
    return this.#version;
  }

  /** Visible nodes by lower-cased name, any status. */
  get nodes(): ReadonlyMap<string, Readonly<ZoneNodeRow>> {
    return this.#nodes;
  }

  /** Alive visible node names (lower case, in name order): the name servers of the zone. */
  get nameServers(): readonly string[] {
    return this.#nameServers;
  }

  /** Addresses of alive nodes whose meta.proxy is "true", in name order (visible or not). */
  get edgeAddresses(): readonly string[] {
    return this.#edgeAddresses;
  }

  /** Instances held (visible, any health). */
  get size(): number {
    return this.#byId.size;
  }

  /** Served instances of a lower-cased service name having every one of the lower-cased tags. */
  instances(service: string, tags: readonly string[] = []): readonly ZoneInstance[] {
    const s = this.#services.get(service);
    if (s === undefined) return NONE;
    const all = s.sorted ??= [...s.served].sort(idOrder);
    return tags.length === 0 ? all : all.filter((i) => tags.every((t) => i.tags.includes(t)));
  }

  /** Lower-cased names of the services with a served instance, sorted. */
  serviceNames(): string[] {
    return [...this.#services.keys()].sort();
  }

  /** TTL (seconds) of a lower-cased service's answers: its own, else `*`'s, else `ttl`. */
  serviceTtl(service: string): number {
    return this.serviceTtls.get(service) ?? this.serviceTtls.get("*") ?? this.ttl;
  }

  /** The PTR names of an address in canonicalIp form, or undefined when none is there. */
  reverseNames(address: string): ReverseNames | undefined {
    const r = this.#reverse.get(address);
    if (r === undefined) return undefined;
    if (typeof r === "string") return { nodes: [], services: [r] };
    return { nodes: distinct(r.nodes), services: distinct(r.services) };
  }

  /** Addresses (canonicalIp form) with PTR names, sorted (for tests). */
  reverseAddresses(): string[] {
    return [...this.#reverse.keys()].sort();
  }

  /**
   * Sets the delta's rows (nodes first, then instances; the result is the same either way) and
   * the version. Returns the dependency keys of the answers that changed.
   */
  apply(delta: ZoneDelta): Set<string> {
    const changed = new Set<string>();
    this.#changed = changed;
    try {
      this.#apply(delta);
    } finally {
      this.#changed = null;
    }
    return changed;
  }

  /**
   * Every row the zone holds, as one delta that fills an empty zone with the same options into
   * an equal one (how a DNS worker's replica gets the whole zone). Instance services and tags
   * come lower-cased, as the zone keeps them.
   */
  rows(): ZoneDelta {
    const instances: { id: string; row: ZoneInstanceRow }[] = [];
    for (const e of this.#byId.values()) {
      const { id, service, node, address, port, weight, tags, passing } = e;
      instances.push({ id, row: { id, service, node, address, port, weight, tags, passing } });
    }
    const nodes = [...this.#nodeRows.values()].map((row) => ({ name: row.name, row }));
    return { version: this.#version, instances, nodes };
  }

  /** Like apply(), naming no keys: for filling a zone that answers nothing yet (cheaper). */
  fill(delta: ZoneDelta): void {
    this.#apply(delta);
  }

  /** Notes that the answers of a dependency key changed (during apply()). */
  #note(key: string): void {
    this.#changed?.add(key);
  }

  #apply(delta: ZoneDelta): void {
    this.#version = delta.version;
    let global = false;
    for (const { name, row } of delta.nodes) {
      if (this.#setNode(name, row)) global = true;
    }
    if (global) {
      this.#deriveNameServers();
      this.#note(ZONE_DEP);
    }
    for (const { id, row } of delta.instances) this.#setInstance(id, row);
  }

  #setInstance(id: string, row: ZoneInstanceRow | null): void {
    const old = this.#byId.get(id);
    const next = row === null ? undefined : new Entry(row);
    if (old === undefined && next === undefined) return;
    if (old !== undefined && next !== undefined && old.same(next)) return;
    if (next === undefined) this.#byId.delete(id);
    else this.#byId.set(id, next);
    if (old !== undefined) {
      const set = this.#byNode.get(old.node)!;
      set.delete(old);
      if (set.size === 0) this.#byNode.delete(old.node);
      this.#setServed(old, false);
    }
    if (next !== undefined) {
      let set = this.#byNode.get(next.node);
      if (set === undefined) this.#byNode.set(next.node, set = new Set());
      set.add(next);
      this.#setServed(next, next.passing && this.#nodePassing(next.node));
      // Added before the old one goes, so an unchanged (address, service) pair stays put.
      this.#reverseAdd(next.address, "services", next.service);
    }
    if (old !== undefined) this.#reverseRemove(old.address, "services", old.service);
  }

  #nodePassing(node: string): boolean {
    return this.#nodeRows.get(node)?.passing ?? true; // unknown to the store: counts as alive
  }

  #setServed(e: Entry, served: boolean): void {
    if (e.served === served) return;
    e.served = served;
    let s = this.#services.get(e.service);
    if (served) {
      if (s === undefined) this.#services.set(e.service, s = new ServiceEntry());
      s.served.add(e);
    } else {
      s!.served.delete(e);
      if (s!.served.size === 0) this.#services.delete(e.service);
    }
    if (s !== undefined) s.sorted = null;
    if (this.#changed !== null) this.#note(serviceDep(e.service));
  }

  /** Sets one node's row; true when name servers, edge addresses or glue may have changed. */
  #setNode(name: string, row: ZoneNodeRow | null): boolean {
    const old = this.#nodeRows.get(name) ?? null;
    if (sameNode(old, row)) return false;
    if (row === null) this.#nodeRows.delete(name);
    else this.#nodeRows.set(name, row);
    const passing = row?.passing ?? true;
    if ((old?.passing ?? true) !== passing) {
      for (const e of this.#byNode.get(name) ?? []) {
        this.#setServed(e, e.passing && passing);
      }
    }
    const lower = intern(name.toLowerCase());
    const oldAddress = old?.visible ? old.address : null;
    const newAddress = row?.visible ? intern(row.address) : null;
    if (newAddress !== null) this.#reverseAdd(newAddress, "nodes", lower);
    if (oldAddress !== null) this.#reverseRemove(oldAddress, "nodes", lower);
    this.#setVisibleNode(lower, name, row?.visible ? row : null);
    if (old === null || row === null) {
      this.#note(nodeDep(lower));
      return true;
    }
    const moved = old.address !== row.address || old.visible !== row.visible;
    if (moved || !sameMeta(old.meta, row.meta)) this.#note(nodeDep(lower));
    return moved || old.status !== row.status || old.meta.proxy !== row.meta.proxy;
  }

  /** Keeps `#nodes[lower]` the visible node last in name order among those spelled `lower`. */
  #setVisibleNode(lower: string, name: string, row: ZoneNodeRow | null): void {
    const held = this.#nodes.get(lower);
    if (row !== null && (held === undefined || held.name <= name)) {
      this.#nodes.set(lower, row);
      return;
    }
    if (held === undefined || held.name !== name) return;
    // The holder went away or hid: the next in name order spelled the same takes its place.
    this.#nodes.delete(lower);
    for (const r of this.#nodeRows.values()) {
      if (!r.visible || r.name.toLowerCase() !== lower) continue;
      const h = this.#nodes.get(lower);
      if (h === undefined || h.name < r.name) this.#nodes.set(lower, r);
    }
  }

  /** Name servers and edge addresses from every node (nodes are hosts: few). */
  #deriveNameServers(): void {
    const rows = [...this.#nodeRows.values()].sort(nameOrder);
    const alive = rows.filter((n) => n.status === "alive");
    this.#nameServers = alive.filter((n) => n.visible).map((n) => intern(n.name.toLowerCase()));
    // Edge names stay open (they are the public entry); the name servers are nodes.
    this.#edgeAddresses = alive.filter((n) => n.meta.proxy === "true").map((n) => n.address);
  }

  #reverseAdd(address: string, kind: "nodes" | "services", name: string): void {
    const key = canonicalIp(address);
    if (key === null) return;
    const r = this.#reverse.get(key);
    if (r === undefined) {
      this.#reverse.set(key, kind === "services" ? name : new ReverseEntry([name], []));
      if (this.#changed !== null) this.#note(addressDep(key));
      return;
    }
    let e: ReverseEntry;
    if (typeof r === "string") this.#reverse.set(key, e = new ReverseEntry([], [r]));
    else e = r;
    const list = e[kind];
    const at = lowerBound(list, name);
    if (list[at] !== name && this.#changed !== null) this.#note(addressDep(key));
    list.splice(at, 0, name);
  }

  #reverseRemove(address: string, kind: "nodes" | "services", name: string): void {
    const key = canonicalIp(address);
    if (key === null) return;
    const r = this.#reverse.get(key);
    if (r === undefined) return;
    if (typeof r === "string") {
      if (kind !== "services" || r !== name) return;
      this.#reverse.delete(key);
      if (this.#changed !== null) this.#note(addressDep(key));
      return;
    }
    const list = r[kind];
    const at = lowerBound(list, name);
    if (list[at] !== name) return;
    list.splice(at, 1);
    if (list[at] !== name && this.#changed !== null) this.#note(addressDep(key));
    if (r.nodes.length > 0 || r.services.length > 1) return;
    if (r.services.length === 0) this.#reverse.delete(key);
    else this.#reverse.set(key, r.services[0]!);
  }
}

function sameNode(a: ZoneNodeRow | null, b: ZoneNodeRow | null): boolean {
  if (a === null || b === null) return a === b;
  return a.name === b.name && a.address === b.address && a.status === b.status &&
    a.passing === b.passing && a.visible === b.visible && sameMeta(a.meta, b.meta);
}

function sameMeta(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}

/** Lower-cased, sorted, each once. */
function lowerSet(items: readonly string[]): string[] {
  return [...new Set(items.map((t) => t.toLowerCase()))].sort();
}

/** Sorted, each once (a sorted multiset's distinct elements). */
function distinct(list: readonly string[]): string[] {
  return list.filter((x, i) => i === 0 || list[i - 1] !== x);
}

/** First index of a sorted list whose element is not below `s`. */
function lowerBound(list: readonly string[], s: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function idOrder(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function nameOrder(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
