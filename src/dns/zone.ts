/**
 * The zone view: an immutable snapshot of what DNS can answer, built from the store's instances
 * and nodes. Only served instances (`instanceHealth(…).served`, node liveness included) enter the
 * service names; reverse (PTR) names cover every registered node and instance address, as
 * Consul's catalog does. Names are keyed lower case, so lookups are case-insensitive. A new Zone
 * replaces the old one on every relevant change; the server caches answers per zone version
 * (answer_cache.ts).
 *
 * @module
 */
import { instanceHealth } from "../store/mod.ts";
import type { Instance, NodeInfo } from "../store/mod.ts";
import { ipBytes } from "./wire.ts";

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
  /** What the zone may name (`--dns-acl`: the anonymous token's rights); absent: everything. */
  visible?: ZoneFilter;
}

/**
 * Which services and nodes a zone may name. A node it may not read is absent (its name, address,
 * meta, NS and PTR records); an instance is served only when its service and its node are both
 * readable (Consul's DNS rule with ACLs).
 */
export interface ZoneFilter {
  service(name: string): boolean;
  node(name: string): boolean;
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
  address: string;
  port: number;
  weight: number;
  /** Lower-cased tags. */
  tags: ReadonlySet<string>;
}

export class Zone {
  readonly domain: string;
  readonly datacenter: string;
  readonly edgeDomain: string | null;
  readonly ttl: number;
  readonly serviceTtls: ReadonlyMap<string, number>;
  /** Store index the zone was built at; the SOA serial. */
  readonly version: number;
  /** Lower-cased service name → served instances, in store order (by id). */
  readonly services: ReadonlyMap<string, readonly ZoneInstance[]>;
  /** Lower-cased node name → node (every registered node, any status). */
  readonly nodes: ReadonlyMap<string, NodeInfo>;
  /** Addresses of alive nodes whose meta.proxy is "true", sorted by node name. */
  readonly edgeAddresses: readonly string[];
  /** Alive node names (lower case, sorted): the name servers of the zone. */
  readonly nameServers: readonly string[];
  /** Address (ipToHex form) → the names a PTR query answers with. */
  readonly reverse: ReadonlyMap<string, ReverseNames>;
  /**
   * The suffixes handlers match, datacenter-qualified first: `.service.DC.DOMAIN` then
   * `.service.DOMAIN`; likewise `.node.` and `.addr.`. `.EDGE` (or null).
   */
  readonly serviceSuffixes: readonly [string, string];
  readonly nodeSuffixes: readonly [string, string];
  readonly addrSuffixes: readonly [string, string];
  readonly edgeSuffix: string | null;

  constructor(
    data: { instances: readonly Instance[]; nodes: readonly NodeInfo[]; version: number },
    options: ZoneOptions,
  ) {
    this.domain = options.domain;
    this.datacenter = options.datacenter ?? "dc1";
    this.edgeDomain = options.edgeDomain;
    this.ttl = options.ttl;
    this.serviceTtls = options.serviceTtl ?? new Map();
    this.version = data.version;
    const suffixes = (kind: string): [string, string] => [
      `.${kind}.${this.datacenter}.${this.domain}`,
      `.${kind}.${this.domain}`,
    ];
    this.serviceSuffixes = suffixes("service");
    this.nodeSuffixes = suffixes("node");
    this.addrSuffixes = suffixes("addr");
    this.edgeSuffix = this.edgeDomain === null ? null : `.${this.edgeDomain}`;
    const visible = options.visible;
    const nodeList = visible === undefined
      ? data.nodes
      : data.nodes.filter((n) => visible.node(n.name));
    const instanceList = visible === undefined
      ? data.instances
      : data.instances.filter((i) => visible.service(i.service) && visible.node(i.node));
    const nodes = new Map<string, NodeInfo>();
    // Node-level checks count towards every instance of the node (instanceHealth).
    const byName = new Map<string, NodeInfo>();
    const reverse = new Map<string, { nodes: Set<string>; services: Set<string> }>();
    const reverseOf = (address: string) => {
      const key = ipToHex(address);
      if (key === null) return null;
      let r = reverse.get(key);
      if (r === undefined) reverse.set(key, r = { nodes: new Set(), services: new Set() });
      return r;
    };
    for (const n of nodeList) {
      nodes.set(n.name.toLowerCase(), n);
      byName.set(n.name, n);
      reverseOf(n.address)?.nodes.add(n.name.toLowerCase());
    }
    this.nodes = nodes;
    const services = new Map<string, ZoneInstance[]>();
    for (const i of instanceList) {
      reverseOf(i.address)?.services.add(i.service.toLowerCase());
      if (!instanceHealth(i, byName.get(i.node)).served) continue;
      const key = i.service.toLowerCase();
      let list = services.get(key);
      if (list === undefined) services.set(key, list = []);
      list.push({
        address: i.address,
        port: i.port,
        weight: i.weight,
        tags: new Set(i.tags.map((t) => t.toLowerCase())),
      });
    }
    this.services = services;
    const sorted = (names: Set<string>) => [...names].sort();
    this.reverse = new Map(
      [...reverse].map(([k, r]) => [k, { nodes: sorted(r.nodes), services: sorted(r.services) }]),
    );
    // Edge names stay open (they are the public entry); the name servers are nodes.
    this.edgeAddresses = data.nodes.filter((n) => n.status === "alive" && n.meta.proxy === "true")
      .sort(nameOrder).map((n) => n.address);
    const alive = nodeList.filter((n) => n.status === "alive").sort(nameOrder);
    this.nameServers = alive.map((n) => n.name.toLowerCase());
  }

  /** Served instances of a lower-cased service name having every one of the lower-cased tags. */
  instances(service: string, tags: readonly string[] = []): readonly ZoneInstance[] {
    const all = this.services.get(service) ?? [];
    return tags.length === 0 ? all : all.filter((i) => tags.every((t) => i.tags.has(t)));
  }

  /** TTL (seconds) of a lower-cased service's answers: its own, else `*`'s, else `ttl`. */
  serviceTtl(service: string): number {
    return this.serviceTtls.get(service) ?? this.serviceTtls.get("*") ?? this.ttl;
  }
}

/** `10.0.0.1` → `0a000001`; IPv6 → 32 hex digits (Consul's `.addr.` form, the `reverse` key); null for a hostname. */
export function ipToHex(address: string): string | null {
  const bytes = ipBytes(address);
  if (bytes === null) return null;
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function nameOrder(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
