/**
 * The proxy's route table: built once from the store's instances and nodes, then kept up to
 * date from the change feed's deltas in O(changed), and looked up on every request.
 *
 * Routes, per service, from every instance of it:
 * - each of `instance.httpHosts` (lower-case) with `instance.httpPath` (or `/`);
 * - `instance.httpPath` alone when the instance names no host: that prefix on any host;
 * - `SERVICE.<edgeDomain>` with `/` when an edge domain is set and the service has an instance
 *   not tagged `udp`.
 *
 * Instances tagged `udp` (UDP container ports) serve only the UDP routes (`berth.udp.port`): they
 * claim no host, path or TCP port and are never HTTP or TCP targets (route_member.ts).
 *
 * Lookup: the request's Host is lower-cased and its port and trailing dot dropped; routes of
 * that host are tried longest prefix first, then the any-host (path-only) routes. A prefix
 * matches on a path-segment boundary: `/api` matches `/api`, `/api/x` and `/api?q`, not `/apix`.
 * When two services claim the same host and prefix, the explicit route beats the edge default,
 * then the first service name in sort order wins (and the clash is listed in `conflicts`).
 *
 * A service's balancing policy (`berth.lb`), upstream protocol (`berth.http.proto`) and HSTS
 * header are the first instance's (in id order) that sets them.
 *
 * A service's targets are its served instances not tagged `udp` (`instanceHealth(…).served`, node liveness
 * included) with weight above 0. A route whose service has none still matches, and the proxy
 * answers 503.
 *
 * Updates (`apply`): an instance delta touches its service (routed_service.ts: members in id
 * order, claims counted) and, when the service's claims or TCP ports changed, those hosts' and
 * ports' winners (route_claims.ts); a node delta touches the node's instances only when the
 * node's verdict flips. Each touched service makes a new immutable `ServiceRoute` at its next
 * lookup (requests under way keep theirs); each touched host gets a new lookup array, swapped
 * in with one assignment. Lookups allocate nothing beyond the Host normalization (and, the
 * first after a change of the service, its new route: O(its instances), routed_service.ts).
 *
 * @module
 */
import type { Instance, InstanceDelta, NodeDelta, NodeInfo } from "../store/mod.ts";
import type { HttpProto, RouteKeyIndex } from "../store/mod.ts";
import { HostIndex, matchPrefix, type PathRoute, type TcpClash, TcpIndex } from "./route_claims.ts";
import {
  type Member,
  Members,
  nodeHealthOk,
  normalizeHost,
  normalizePrefix,
} from "./route_member.ts";
import type { RouteSpec } from "./route_member.ts";
import type { Target } from "./balancer.ts";
import { RoutedService, type ServiceContext, type ServiceRoute } from "./routed_service.ts";

export {
  normalizeHost,
  normalizePrefix,
  type PathRoute,
  RoutedService,
  type ServiceRoute,
  type TcpClash,
};

export interface RouteTableOptions {
  /** Edge domain (trailing dot optional); each service also answers on `SERVICE.<edgeDomain>`. */
  edgeDomain?: string | null;
  /** The table this one replaces: balancer rotation state is carried over per service. */
  previous?: RouteTable | null;
  /** In-flight requests per target key, for least_conn and p2c. */
  load?: (key: string) => number;
  /** Random source for p2c. Default Math.random. */
  random?: () => number;
  /** A target's weight during a slow-start ramp (slow_start.ts). Default: no ramp. */
  rampedWeight?: (t: Target, rampMs: number) => number;
  /** Route settings read from meta (route_settings.ts). Default: every one (ROUTE_KEYS). */
  routeKeys?: RouteKeyIndex;
}

/** One HTTP route as listed by the routes API: host (null: any host) and path prefix. */
export interface HttpRouteInfo {
  host: string | null;
  prefix: string;
  service: string;
  /** Served targets of the service. */
  targets: number;
  /** What the proxy speaks to the instances (`berth.http.proto`). */
  proto: HttpProto;
}

/** What one `apply` changed that the proxy acts on. */
export interface RouteChanges {
  /** TCP ports whose serving service changed (opened, closed or handed over). */
  tcpPorts: number[];
  /** UDP ports whose serving service changed (udp_proxy.ts). */
  udpPorts: number[];
  /** Target keys no longer served (their pooled connections drain). */
  gone: string[];
  /** Target keys served again or newly. */
  back: string[];
  /** Conflict lines that were not listed before. */
  conflicts: string[];
}

/** The routes; `match()` is the per-request lookup, `apply()` the per-change update. */
export class RouteTable {
  /** Every service that has a route or TCP port, by name, as its current `ServiceRoute`. */
  readonly services: ReadonlyMap<string, ServiceRoute>;
  readonly #ctx: ServiceContext;
  readonly #edge: string | null;
  readonly #members = new Map<string, Member>();
  readonly #make: Members;
  readonly #byNode = new Map<string, Set<string>>();
  /** Verdicts of known nodes; a node the store does not know passes. */
  readonly #nodeOk = new Map<string, boolean>();
  readonly #services = new Map<string, RoutedService>();
  readonly #hosts = new HostIndex();
  readonly #tcp = new TcpIndex();
  readonly #udp = new TcpIndex("UDP");
  #previous: RouteTable | null;
  readonly #dirty = new Set<RoutedService>();
  /** While applying: first-touched instance id → its target key then (null: not a target). */
  #touched: Map<string, string | null> | null = null;

  constructor(opts: RouteTableOptions = {}) {
    this.#edge = opts.edgeDomain ? opts.edgeDomain.toLowerCase().replace(/\.$/, "") : null;
    this.#previous = opts.previous ?? null;
    this.#make = new Members(opts.routeKeys);
    this.#ctx = {
      nodeOk: (node) => this.nodeOk(node),
      load: opts.load,
      random: opts.random,
      rampedWeight: opts.rampedWeight,
    };
    this.services = new RoutedView(this.#services, this.#edge !== null);
  }

  /** An empty table: every request gets 404. */
  static empty(): RouteTable {
    return new RouteTable();
  }

  /** TCP listener port → the service listening there. */
  get tcp(): ReadonlyMap<number, RoutedService> {
    return this.#tcp.owners;
  }

  /** TCP ports claimed by more than one service: the services that did not get them. */
  get tcpClashes(): readonly TcpClash[] {
    return this.#tcp.clashes;
  }

  /** UDP listener port → the service listening there (`berth.udp.port`). */
  get udp(): ReadonlyMap<number, RoutedService> {
    return this.#udp.owners;
  }

  /** UDP ports claimed by more than one service: the services that did not get them. */
  get udpClashes(): readonly TcpClash[] {
    return this.#udp.clashes;
  }

  /** Human-readable notes on ignored or clashing routes: services by name, TCP, HTTP routes. */
  get conflicts(): string[] {
    const names = [...this.#services.keys()].sort();
    return [
      ...names.flatMap((n) => this.#services.get(n)!.notes),
      ...this.#tcp.conflicts(),
      ...this.#udp.conflicts(),
      ...this.#hosts.conflicts(),
    ];
  }

  /** Specs and options shared by members (a test sees released ones go). */
  get sharedCount(): number {
    return this.#make.sharedCount;
  }

  /** Named hosts that have a route (for ACME names). */
  hosts(): IterableIterator<string> {
    return this.#hosts.byHost.keys();
  }

  /** Named hosts with a route served by a service asking for ACME (`berth.tls=acme`). */
  get acmeHosts(): ReadonlySet<string> {
    return this.#hosts.acmeHosts;
  }

  /** Raised whenever `hosts()` or `acmeHosts` changes. */
  get hostsVersion(): number {
    return this.#hosts.hostsVersion;
  }

  /** The service `name` (routed or not), or undefined. */
  service(name: string): RoutedService | undefined {
    return this.#services.get(name);
  }

  /** Whether the node passes (not down, node-level checks passing; unknown nodes pass). */
  nodeOk(node: string): boolean {
    return this.#nodeOk.get(node) ?? true;
  }

  /** Keys of every served target (the proxy keeps their pooled connections). */
  liveKeys(): Set<string> {
    const live = new Set<string>();
    for (const m of this.#members.values()) if (this.#isTarget(m)) live.add(m.key);
    return live;
  }

  /** Every HTTP route, host routes by host then any-host ones, each longest prefix first. */
  httpRoutes(): HttpRouteInfo[] {
    const info = (host: string | null, r: PathRoute): HttpRouteInfo => {
      const route = r.svc.route;
      return {
        host,
        prefix: r.prefix,
        service: route.service,
        targets: route.targets.length,
        proto: route.proto,
      };
    };
    const out: HttpRouteInfo[] = [];
    const byHost = this.#hosts.byHost;
    for (const host of [...byHost.keys()].sort()) {
      for (const r of byHost.get(host)!) out.push(info(host, r));
    }
    for (const r of this.#hosts.anyHost) out.push(info(null, r));
    return out;
  }

  /** The service for a request's Host header and URL (path with query), or null (404). */
  match(hostHeader: string | undefined, url: string): ServiceRoute | null {
    return this.matchPath(hostHeader, url)?.svc.route ?? null;
  }

  /** The route (host, path prefix, service) a request matches, or null (404). */
  matchPath(hostHeader: string | undefined, url: string): PathRoute | null {
    if (hostHeader !== undefined && hostHeader !== "") {
      const routes = this.#hosts.byHost.get(normalizeHost(hostHeader));
      if (routes !== undefined) {
        const r = matchPrefix(routes, url);
        if (r !== null) return r;
      }
    }
    return matchPrefix(this.#hosts.anyHost, url);
  }

  /** The routes of a named host (null: the any-host ones), longest prefix first. */
  routesOf(host: string | null): readonly PathRoute[] {
    return host === null ? this.#hosts.anyHost : this.#hosts.byHost.get(host) ?? [];
  }

  /**
   * Adds rows to a table being built (a full build, or one page of a chunked one): nodes first,
   * then instances. Sets each row to its value, like `apply`.
   */
  load(instances: readonly Instance[], nodes: readonly NodeInfo[] = []): void {
    for (const n of nodes) this.#setNode(n.name, n);
    for (const i of instances) this.#put(i);
    this.#flush();
  }

  /** The build is over: the table no longer reads rotation state from the one it replaces. */
  loaded(): this {
    this.#previous = null;
    return this;
  }

  /**
   * Applies a change's deltas (each sets a row to its `after`; replaying ones already applied
   * changes nothing). Returns what the proxy must act on.
   */
  apply(instances: readonly InstanceDelta[], nodes: readonly NodeDelta[]): RouteChanges {
    const touched = this.#touched = new Map();
    try {
      for (const d of nodes) this.#setNode(d.name, d.after);
      for (const d of instances) {
        if (d.after === null) this.#remove(d.id);
        else this.#put(d.after);
      }
    } finally {
      this.#touched = null;
    }
    const { tcpPorts, udpPorts, conflicts } = this.#flush();
    const gone: string[] = [];
    const back: string[] = [];
    for (const [id, was] of touched) {
      const m = this.#members.get(id);
      const now = m !== undefined && this.#isTarget(m) ? m.key : null;
      if (was === now) continue;
      if (was !== null) gone.push(was);
      if (now !== null) back.push(now);
    }
    return { tcpPorts, udpPorts, gone, back, conflicts };
  }

  #isTarget(m: Member): boolean {
    return m.weight > 0 && m.ownOk && this.nodeOk(m.node);
  }

  #touch(m: Member): void {
    const t = this.#touched;
    if (t !== null && !t.has(m.id)) t.set(m.id, this.#isTarget(m) ? m.key : null);
  }

  #setNode(name: string, info: NodeInfo | null): void {
    const ok = info === null || nodeHealthOk(info);
    if (ok !== this.nodeOk(name)) {
      for (const id of this.#byNode.get(name) ?? []) {
        const m = this.#members.get(id)!;
        this.#touch(m);
        this.#dirty.add(this.#services.get(m.service)!);
      }
    }
    if (info === null) this.#nodeOk.delete(name);
    else this.#nodeOk.set(name, ok);
  }

  #put(i: Instance): void {
    const old = this.#members.get(i.id);
    const m = this.#make.make(i, old);
    if (m === old) return;
    if (old !== undefined) this.#touch(old);
    else if (this.#touched !== null && !this.#touched.has(i.id)) this.#touched.set(i.id, null);
    const svc = this.#service(m.service);
    if (old !== undefined && old.service === m.service) {
      svc.put(m); // in place: no splice for a big service
      if (old.spec !== m.spec) {
        this.#claim(svc, old.spec, -1);
        this.#claim(svc, m.spec, 1);
      }
      if (old.node !== m.node) {
        this.#unindexNode(old);
        this.#indexNode(m);
      }
      this.#make.release(old);
    } else {
      if (old !== undefined) this.#drop(old);
      svc.put(m);
      this.#claim(svc, m.spec, 1);
      this.#indexNode(m);
    }
    this.#members.set(m.id, m);
    this.#dirty.add(svc);
  }

  #remove(id: string): void {
    const old = this.#members.get(id);
    if (old === undefined) return;
    this.#touch(old);
    this.#drop(old);
    this.#members.delete(id);
  }

  /** Takes `old` out of its service, node index and shared parts. */
  #drop(old: Member): void {
    const svc = this.#services.get(old.service)!;
    svc.remove(old.id);
    this.#claim(svc, old.spec, -1);
    this.#unindexNode(old);
    this.#make.release(old);
    this.#dirty.add(svc);
  }

  #indexNode(m: Member): void {
    let ids = this.#byNode.get(m.node);
    if (ids === undefined) this.#byNode.set(m.node, ids = new Set());
    ids.add(m.id);
  }

  #unindexNode(m: Member): void {
    const ids = this.#byNode.get(m.node);
    ids?.delete(m.id);
    if (ids?.size === 0) this.#byNode.delete(m.node);
  }

  /** The service `name`, made (with its edge route) when it has no member yet. */
  #service(name: string): RoutedService {
    let svc = this.#services.get(name);
    if (svc === undefined) {
      const previous = this.#previous?.service(name)?.balancer ?? null;
      svc = new RoutedService(name, this.#ctx, previous);
      this.#services.set(name, svc);
    }
    return svc;
  }

  #edgeHost(service: string): string {
    return `${service.toLowerCase()}.${this.#edge}`;
  }

  /** Counts a member's claims in (`d` 1) or out (-1) of its service, and the service's in the indexes. */
  #claim(svc: RoutedService, spec: RouteSpec, d: 1 | -1): void {
    for (const c of spec.claims) {
      const e = svc.claims.get(c.key);
      if (d > 0) {
        if (e !== undefined) e.n++;
        else {
          svc.claims.set(c.key, { claim: c, n: 1 });
          this.#hosts.add(c.host, c.prefix, svc, false);
        }
      } else if (e !== undefined && --e.n === 0) {
        svc.claims.delete(c.key);
        this.#hosts.remove(c.host, c.prefix, svc, false);
      }
    }
    const port = spec.tcpPort;
    if (port !== null) {
      const n = (svc.tcpPorts.get(port) ?? 0) + d;
      if (n > 0) svc.tcpPorts.set(port, n);
      else svc.tcpPorts.delete(port);
      if (d > 0 && n === 1) this.#tcp.add(port, svc);
      if (d < 0 && n === 0) this.#tcp.remove(port, svc);
    }
    const udp = spec.udpPort;
    if (udp !== null) {
      const n = (svc.udpPorts.get(udp) ?? 0) + d;
      if (n > 0) svc.udpPorts.set(udp, n);
      else svc.udpPorts.delete(udp);
      if (d > 0 && n === 1) this.#udp.add(udp, svc);
      if (d < 0 && n === 0) this.#udp.remove(udp, svc);
    }
    if (spec.routed) svc.routedMembers += d;
    if (!spec.udp) {
      // The edge-domain route (`SERVICE.<edgeDomain>`) while the service has an HTTP/TCP member:
      // a service of UDP instances only has no HTTP target, so no HTTP route.
      svc.streamMembers += d;
      if (this.#edge !== null && svc.streamMembers === (d > 0 ? 1 : 0)) {
        if (d > 0) this.#hosts.add(this.#edgeHost(svc.service), "/", svc, true);
        else this.#hosts.remove(this.#edgeHost(svc.service), "/", svc, true);
      }
    }
  }

  /** Settles the services, hosts and ports touched since the last flush. */
  #flush(): { tcpPorts: number[]; udpPorts: number[]; conflicts: string[] } {
    const conflicts: string[] = [];
    for (const svc of this.#dirty) {
      if (svc.members.length === 0) {
        if (this.#services.get(svc.service) === svc) this.#services.delete(svc.service);
        continue;
      }
      const notes = svc.notes;
      if (svc.changed()) {
        for (const { claim } of svc.claims.values()) this.#hosts.touch(claim.host);
        if (this.#edge !== null) this.#hosts.touch(this.#edgeHost(svc.service));
      }
      for (const l of svc.notes) if (!notes.includes(l)) conflicts.push(l);
    }
    this.#dirty.clear();
    this.#hosts.flush(conflicts);
    const ports = new Set<number>();
    this.#tcp.flush(ports, conflicts);
    const udpPorts = new Set<number>();
    this.#udp.flush(udpPorts, conflicts);
    return { tcpPorts: [...ports], udpPorts: [...udpPorts], conflicts };
  }
}

/** The routed services (a route or TCP port, or any service with an edge domain) as routes. */
class RoutedView implements ReadonlyMap<string, ServiceRoute> {
  readonly #all: ReadonlyMap<string, RoutedService>;
  readonly #edge: boolean;

  constructor(all: ReadonlyMap<string, RoutedService>, edge: boolean) {
    this.#all = all;
    this.#edge = edge;
  }

  #routed(s: RoutedService | undefined): s is RoutedService {
    return s !== undefined && ((this.#edge && s.streamMembers > 0) || s.routedMembers > 0);
  }

  get(name: string): ServiceRoute | undefined {
    const s = this.#all.get(name);
    return this.#routed(s) ? s.route : undefined;
  }

  has(name: string): boolean {
    return this.#routed(this.#all.get(name));
  }

  get size(): number {
    let n = 0;
    for (const s of this.#all.values()) if (this.#routed(s)) n++;
    return n;
  }

  *entries(): MapIterator<[string, ServiceRoute]> {
    for (const [n, s] of this.#all) if (this.#routed(s)) yield [n, s.route];
  }

  *keys(): MapIterator<string> {
    for (const [n] of this.entries()) yield n;
  }

  *values(): MapIterator<ServiceRoute> {
    for (const [, r] of this.entries()) yield r;
  }

  [Symbol.iterator](): MapIterator<[string, ServiceRoute]> {
    return this.entries();
  }

  forEach(fn: (v: ServiceRoute, k: string, m: ReadonlyMap<string, ServiceRoute>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}

/** Builds a table from the store's rows at once. */
export function buildRouteTable(
  instances: readonly Instance[],
  nodes: readonly NodeInfo[],
  opts: RouteTableOptions = {},
): RouteTable {
  const table = new RouteTable(opts);
  table.load(instances, nodes);
  return table.loaded();
}
