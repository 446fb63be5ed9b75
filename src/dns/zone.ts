/**
 * The zone view: an immutable snapshot of what DNS can answer, built from the store's instances
 * and nodes. Only served instances (`instanceHealth(…).served`, node liveness included) enter it.
 * Names are keyed lower case, so lookups are case-insensitive. A new Zone replaces the old one on
 * every relevant change; the server caches answers per zone version (answer_cache.ts).
 *
 * @module
 */
import { instanceHealth } from "../store/mod.ts";
import type { Instance, NodeInfo } from "../store/mod.ts";

/** What the zone is built with (DnsOptions' naming part). */
export interface ZoneOptions {
  /** Lower case, trailing dot: `berth.`. */
  domain: string;
  /** Lower case, trailing dot, or null: names under it answer the proxy members. */
  edgeDomain: string | null;
  /** TTL (seconds) of service, node and addr answers. */
  ttl: number;
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
  readonly edgeDomain: string | null;
  readonly ttl: number;
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
  /** `.service.DOMAIN`, `.node.DOMAIN`, `.addr.DOMAIN`, `.EDGE` (or null): suffixes handlers match. */
  readonly serviceSuffix: string;
  readonly nodeSuffix: string;
  readonly addrSuffix: string;
  readonly edgeSuffix: string | null;

  constructor(
    data: { instances: readonly Instance[]; nodes: readonly NodeInfo[]; version: number },
    options: ZoneOptions,
  ) {
    this.domain = options.domain;
    this.edgeDomain = options.edgeDomain;
    this.ttl = options.ttl;
    this.version = data.version;
    this.serviceSuffix = `.service.${this.domain}`;
    this.nodeSuffix = `.node.${this.domain}`;
    this.addrSuffix = `.addr.${this.domain}`;
    this.edgeSuffix = this.edgeDomain === null ? null : `.${this.edgeDomain}`;
    const nodes = new Map<string, NodeInfo>();
    // Node-level checks count towards every instance of the node (instanceHealth).
    const byName = new Map<string, NodeInfo>();
    for (const n of data.nodes) {
      nodes.set(n.name.toLowerCase(), n);
      byName.set(n.name, n);
    }
    this.nodes = nodes;
    const services = new Map<string, ZoneInstance[]>();
    for (const i of data.instances) {
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
    const alive = data.nodes.filter((n) => n.status === "alive")
      .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    this.edgeAddresses = alive.filter((n) => n.meta.proxy === "true").map((n) => n.address);
    this.nameServers = alive.map((n) => n.name.toLowerCase());
  }

  /** Served instances of a service, filtered by a lower-cased tag when given. */
  instances(service: string, tag: string | null): readonly ZoneInstance[] {
    const all = this.services.get(service) ?? [];
    return tag === null ? all : all.filter((i) => i.tags.has(tag));
  }
}
