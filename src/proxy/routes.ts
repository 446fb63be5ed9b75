/**
 * The proxy's route table: an immutable value built from the store's instances and nodes, looked
 * up on every request and replaced whole (one reference assignment) when the store changes.
 *
 * Routes, per service, from every instance of it:
 * - each of `instance.httpHosts` (lower-case) with `instance.httpPath` (or `/`);
 * - `instance.httpPath` alone when the instance names no host: that prefix on any host;
 * - `SERVICE.<edgeDomain>` with `/` when an edge domain is set.
 *
 * Lookup: the request's Host is lower-cased and its port and trailing dot dropped; routes of
 * that host are tried longest prefix first, then the any-host (path-only) routes. A prefix
 * matches on a path-segment boundary: `/api` matches `/api`, `/api/x` and `/api?q`, not `/apix`.
 * When two services claim the same host and prefix, the explicit route beats the edge default,
 * then the first service name in sort order wins (and the clash is listed in `conflicts`).
 *
 * A service's balancing policy (`berth.lb`) and upstream protocol (`berth.http.proto`) are the
 * first instance's (in id order) that sets them.
 *
 * A service's targets are its served instances (`instanceHealth(…).served`, node liveness
 * included) with weight above 0. A route whose service has none still matches, and the proxy
 * answers 503.
 *
 * @module
 */
import type { HttpProto, Instance, NodeInfo } from "../store/mod.ts";
import {
  HSTS_META_KEY,
  HTTP_PROTO_META_KEY,
  instanceHealth,
  parseHttpProto,
  REDIRECT_META_KEY,
  TLS_META_KEY,
} from "../store/mod.ts";
import { Balancer, LB_META_KEY, type LbPolicy, parseLbPolicy, type Target } from "./balancer.ts";

/** One service as the proxy sees it. */
export interface ServiceRoute {
  readonly service: string;
  /** Served targets with weight > 0, in instance id order; empty → 503. */
  readonly targets: readonly Target[];
  readonly balancer: Balancer;
  /** An instance of the service says `berth.tls=acme`: ACME orders its hosts (src/acme/names.ts). */
  readonly acme: boolean;
  /**
   * What the proxy speaks to the instances (`berth.http.proto`): `http1` (pooled HTTP/1.1),
   * `h2c` (HTTP/2 cleartext, h2c_upstream.ts) or `grpc` (h2c; the proxy's own errors answered
   * as gRPC statuses whatever the request's content type).
   */
  readonly proto: HttpProto;
  /** An instance says `berth.http.redirect=https`: plain HTTP requests get a 308 to https. */
  readonly redirectHttps: boolean;
  /** `berth.http.hsts` (the first instance's that has one): Strict-Transport-Security over HTTPS. */
  readonly hsts: string | null;
}

interface PathRoute {
  readonly prefix: string;
  readonly route: ServiceRoute;
  /** True for the `SERVICE.<edgeDomain>` default, which explicit routes override. */
  readonly edge: boolean;
}

export interface RouteTableOptions {
  /** Edge domain (trailing dot optional); each service also answers on `SERVICE.<edgeDomain>`. */
  edgeDomain?: string | null;
  /** The table this one replaces: balancer rotation state is carried over per service. */
  previous?: RouteTable | null;
  /** In-flight requests per target key, for least_conn and p2c. */
  load?: (key: string) => number;
  /** Random source for p2c. Default Math.random. */
  random?: () => number;
}

/** A TCP route port left to another service (two services claimed it). */
export interface TcpClash {
  readonly port: number;
  readonly service: string;
  /** The service that keeps the port. */
  readonly keptBy: string;
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

/** Immutable routes; `match()` is the per-request lookup. */
export class RouteTable {
  /** Every service that has at least one route or TCP port, by name. */
  readonly services: ReadonlyMap<string, ServiceRoute>;
  /** TCP listener port → service. */
  readonly tcp: ReadonlyMap<number, ServiceRoute>;
  /** TCP ports claimed by more than one service: the services that did not get them. */
  readonly tcpClashes: readonly TcpClash[];
  /** Human-readable notes on ignored or clashing routes (for logs). */
  readonly conflicts: readonly string[];
  readonly #byHost: ReadonlyMap<string, readonly PathRoute[]>;
  readonly #anyHost: readonly PathRoute[];

  constructor(parts: {
    services: Map<string, ServiceRoute>;
    tcp: Map<number, ServiceRoute>;
    tcpClashes?: TcpClash[];
    conflicts: string[];
    byHost: Map<string, PathRoute[]>;
    anyHost: PathRoute[];
  }) {
    this.services = parts.services;
    this.tcp = parts.tcp;
    this.tcpClashes = parts.tcpClashes ?? [];
    this.conflicts = parts.conflicts;
    this.#byHost = parts.byHost;
    this.#anyHost = parts.anyHost;
  }

  /** An empty table: every request gets 404. */
  static empty(): RouteTable {
    return new RouteTable({
      services: new Map(),
      tcp: new Map(),
      conflicts: [],
      byHost: new Map(),
      anyHost: [],
    });
  }

  /** Every HTTP route, host routes by host then any-host ones, each longest prefix first. */
  httpRoutes(): HttpRouteInfo[] {
    const info = (host: string | null, r: PathRoute): HttpRouteInfo => ({
      host,
      prefix: r.prefix,
      service: r.route.service,
      targets: r.route.targets.length,
      proto: r.route.proto,
    });
    const out: HttpRouteInfo[] = [];
    for (const host of [...this.#byHost.keys()].sort()) {
      for (const r of this.#byHost.get(host)!) out.push(info(host, r));
    }
    for (const r of this.#anyHost) out.push(info(null, r));
    return out;
  }

  /** The service for a request's Host header and URL (path with query), or null (404). */
  match(hostHeader: string | undefined, url: string): ServiceRoute | null {
    if (hostHeader !== undefined && hostHeader !== "") {
      const routes = this.#byHost.get(normalizeHost(hostHeader));
      if (routes !== undefined) {
        const r = matchPrefix(routes, url);
        if (r !== null) return r;
      }
    }
    return matchPrefix(this.#anyHost, url);
  }
}

function matchPrefix(routes: readonly PathRoute[], url: string): ServiceRoute | null {
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i]!;
    const p = r.prefix;
    if (!url.startsWith(p)) continue;
    if (url.length === p.length || p.charCodeAt(p.length - 1) === 47) return r.route; // "/"
    const c = url.charCodeAt(p.length);
    if (c === 47 || c === 63) return r.route; // "/" or "?"
  }
  return null;
}

/** `Web.Example.com:8080` → `web.example.com`; `[::1]:80` → `[::1]`; `a.b.` → `a.b`. */
export function normalizeHost(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === 91) { // "[" IPv6 literal
    const close = host.indexOf("]");
    if (close > 0) end = close + 1;
  } else {
    const colon = host.indexOf(":");
    if (colon >= 0) end = colon;
  }
  if (end > 0 && host.charCodeAt(end - 1) === 46) end--; // trailing "."
  const h = end === host.length ? host : host.slice(0, end);
  return h.toLowerCase();
}

/** Normalizes a configured path prefix: leading `/`, no trailing `/` (except `/` itself). */
export function normalizePrefix(p: string | null): string {
  if (p === null || p === "") return "/";
  let s = p.startsWith("/") ? p : `/${p}`;
  while (s.length > 1 && s.endsWith("/")) s = s.slice(0, -1);
  return s;
}

/** Builds the table from the store's rows. Pure apart from the balancers' mutable rotation. */
export function buildRouteTable(
  instances: readonly Instance[],
  nodes: readonly NodeInfo[],
  opts: RouteTableOptions = {},
): RouteTable {
  // The node, not only its status: node-level checks count towards its instances' health.
  const byName = new Map<string, NodeInfo>(nodes.map((n) => [n.name, n]));
  const status = (name: string) => byName.get(name);
  const edge = opts.edgeDomain ? opts.edgeDomain.toLowerCase().replace(/\.$/, "") : null;

  // Group by service, in id order (store.instances() is ordered by id; sort anyway).
  const byService = new Map<string, Instance[]>();
  for (const i of [...instances].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) {
    const list = byService.get(i.service);
    if (list === undefined) byService.set(i.service, [i]);
    else list.push(i);
  }

  const conflicts: string[] = [];
  const services = new Map<string, ServiceRoute>();
  const tcp = new Map<number, ServiceRoute>();
  const tcpClashes: TcpClash[] = [];
  // host ("" = any host) → prefix → candidates
  const claims = new Map<string, Map<string, PathRoute[]>>();
  const claim = (host: string, prefix: string, pr: PathRoute) => {
    let m = claims.get(host);
    if (m === undefined) claims.set(host, m = new Map());
    const list = m.get(prefix);
    if (list === undefined) m.set(prefix, [pr]);
    else if (!list.some((x) => x.route === pr.route && x.edge === pr.edge)) list.push(pr);
  };

  for (const service of [...byService.keys()].sort()) {
    const list = byService.get(service)!;
    let policy: LbPolicy = "round_robin";
    const lbValue = list.find((i) => i.meta[LB_META_KEY] !== undefined)?.meta[LB_META_KEY];
    if (lbValue !== undefined) {
      const p = parseLbPolicy(lbValue);
      if (p === null) {
        conflicts.push(
          `service ${service}: ${LB_META_KEY}="${lbValue}" is unknown ` +
            `(use round_robin, least_conn or p2c); using round_robin`,
        );
      } else policy = p;
    }
    let proto: HttpProto = "http1";
    const protoValue = list.find((i) => i.meta[HTTP_PROTO_META_KEY] !== undefined)
      ?.meta[HTTP_PROTO_META_KEY];
    if (protoValue !== undefined) {
      const p = parseHttpProto(protoValue);
      if (p === null) {
        conflicts.push(
          `service ${service}: ${HTTP_PROTO_META_KEY}="${protoValue}" is unknown ` +
            `(use http1, h2c or grpc); using http1`,
        );
      } else proto = p;
    }
    const targets: Target[] = list
      .filter((i) => i.weight > 0 && instanceHealth(i, status(i.node)).served)
      .map((i) => ({
        id: i.id,
        address: i.address,
        port: i.port,
        weight: i.weight,
        key: `${i.id}|${i.address}|${i.port}`,
      }));
    const previous = opts.previous?.services.get(service)?.balancer;
    const route: ServiceRoute = {
      service,
      targets,
      balancer: new Balancer(policy, targets, {
        load: opts.load,
        random: opts.random,
        previous: previous?.policy === policy ? previous : null,
      }),
      acme: list.some((i) => i.meta[TLS_META_KEY] === "acme"),
      proto,
      redirectHttps: list.some((i) => i.meta[REDIRECT_META_KEY] === "https"),
      hsts: list.find((i) => i.meta[HSTS_META_KEY] !== undefined)?.meta[HSTS_META_KEY] ?? null,
    };
    let routed = false;
    for (const i of list) {
      const prefix = normalizePrefix(i.httpPath);
      if (i.httpHosts.length > 0) {
        for (const h of i.httpHosts) {
          claim(normalizeHost(h), prefix, { prefix, route, edge: false });
        }
        routed = true;
      } else if (i.httpPath !== null) {
        claim("", prefix, { prefix, route, edge: false });
        routed = true;
      }
      if (i.tcpPort !== null) {
        const other = tcp.get(i.tcpPort);
        if (other === undefined) tcp.set(i.tcpPort, route);
        else if (other !== route) {
          if (!tcpClashes.some((c) => c.port === i.tcpPort && c.service === service)) {
            tcpClashes.push({ port: i.tcpPort, service, keptBy: other.service });
          }
          conflicts.push(
            `TCP port ${i.tcpPort}: claimed by services ${other.service} and ${service}; ` +
              `${other.service} keeps it`,
          );
        }
        routed = true;
      }
    }
    if (edge !== null) {
      claim(`${service.toLowerCase()}.${edge}`, "/", { prefix: "/", route, edge: true });
      routed = true;
    }
    if (routed) services.set(service, route);
  }

  const byHost = new Map<string, PathRoute[]>();
  let anyHost: PathRoute[] = [];
  for (const [host, prefixes] of claims) {
    const routes: PathRoute[] = [];
    for (const [prefix, candidates] of prefixes) {
      // Explicit routes beat the edge default; then service name order (services are visited
      // sorted, so the first candidate of a kind is the first name).
      const winner = candidates.find((c) => !c.edge) ?? candidates[0]!;
      const losers = candidates.filter((c) => c !== winner && !c.edge);
      if (losers.length > 0) {
        conflicts.push(
          `route ${host || "*"}${prefix}: claimed by services ` +
            `${[winner, ...losers].map((c) => c.route.service).join(", ")}; ` +
            `${winner.route.service} serves it`,
        );
      }
      routes.push(winner);
    }
    routes.sort((a, b) => b.prefix.length - a.prefix.length);
    if (host === "") anyHost = routes;
    else byHost.set(host, routes);
  }
  return new RouteTable({ services, tcp, tcpClashes, conflicts, byHost, anyHost });
}
