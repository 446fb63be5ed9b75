/**
 * `berth explain` from the proxy's side: which route a URL matches and why (or why none), and
 * which routes, TCP ports and targets a service has, read from a RouteTable. Pure reads for
 * the explain API (src/api/explain.ts, wired by the agent); nothing here runs per request.
 *
 * @example
 * ```ts
 * explainUrl(table, "http://web.example.com/api/x");
 * // → { matched: { host: "web.example.com", prefix: "/api", service: "web", … }, … }
 * ```
 *
 * @module
 */
import type { PathRoute, RouteTable, ServiceRoute } from "./routes.ts";
import { matchPrefix } from "./route_claims.ts";
import type { UrlTarget } from "../lib/request_target.ts";
import { lbSettings } from "./lb_settings.ts";
import { normalizeTarget } from "./request_path.ts";
import { requestSteps } from "./route_explain_steps.ts";
import { HIDDEN_VALUE, isSecretKey } from "../store/mod.ts";
import { ALLOW_KEY, AUTH_BASIC_KEY, NOBODY } from "../store/route_keys_http.ts";

export { parseTarget, type UrlTarget } from "../lib/request_target.ts";

/** One instance of a service as the route table holds it. */
export interface MemberInfo {
  instance: string;
  address: string;
  port: number;
  weight: number;
  node: string;
  /** Whether the proxy sends it requests (the route's targets). */
  target: boolean;
  /** Why not, when it is no target. */
  why: string | null;
  /** Tagged `udp`: a target of the service's UDP routes only, never of its HTTP or TCP ones. */
  udp?: true;
}

/** A service's route options, as its members set them. */
export interface RouteOptionsInfo {
  service: string;
  policy: string;
  proto: string;
  redirectHttps: boolean;
  hsts: string | null;
  acme: boolean;
  /** Route settings (`berth.http.*`, `berth.lb.*`, …) by key; auth values hidden. */
  settings: Record<string, string>;
  /**
   * Set when the route fails closed: every request is answered `status` before balancing,
   * because `key` is `none` (a bad label or Meta value stores it, or it was written so).
   */
  refused: { status: 403 | 401; key: string } | null;
  members: MemberInfo[];
}

/** Whether `settings` refuse every request (allow comes before basic-auth: middleware/order.ts). */
export function refusedBy(
  settings: { get(key: string): string | undefined },
): RouteOptionsInfo["refused"] {
  if (settings.get(ALLOW_KEY) === NOBODY) return { status: 403, key: ALLOW_KEY };
  if (settings.get(AUTH_BASIC_KEY) === NOBODY) return { status: 401, key: AUTH_BASIC_KEY };
  return null;
}

/** The sentence for a route that refuses every request. */
export function refusedText(r: NonNullable<RouteOptionsInfo["refused"]>): string {
  return `every request is refused: ${r.status} ${
    r.status === 403 ? "Forbidden" : "Unauthorized"
  }, because ${r.key}=${NOBODY}`;
}

/** One HTTP route a service claims (or has from the edge domain) and who serves it. */
export interface ClaimInfo {
  /** Null: any host (a path-only route). */
  host: string | null;
  prefix: string;
  /** The `SERVICE.<edge-domain>` default route. */
  edge: boolean;
  /** The service the proxy sends it to (another one when this one lost the claim). */
  servedBy: string | null;
}

export interface ServiceRoutesInfo {
  http: ClaimInfo[];
  tcp: { port: number; servedBy: string | null }[];
  /** UDP route ports (`berth.udp.port` of its instances tagged udp) and who keeps each. */
  udp?: { port: number; servedBy: string | null }[];
  /** The table's conflict lines that name the service. */
  conflicts: string[];
  options: RouteOptionsInfo;
}

export interface UrlExplain extends UrlTarget {
  /** The route taken, or null (the proxy answers 404). */
  matched: { host: string | null; prefix: string; edge: boolean; service: string } | null;
  /** Why this route, or why none: one sentence each. */
  reasons: string[];
  /** The table's conflict lines about the matched route. */
  conflicts: string[];
  /** The matched service's options and members; null without a match. */
  route: RouteOptionsInfo | null;
  /** The instance the balancer would pick now (`Balancer.peek`), or null; `pickNote` says how. */
  pick: string | null;
  pickNote: string;
  /** What the proxy's rules do to this request, in order (route_explain_steps.ts). */
  steps?: string[];
}

/** What the balancer's choice depends on besides the table. */
export interface PickContext {
  /** The HTTPS listener's port on this member; null: none (for redirect=https). */
  httpsPort?: number | null;
  /** The client IP `allow` is checked with. */
  client?: string;
  /** Instances this member's proxy skips now (passive health). */
  ejected?: ReadonlySet<string>;
  /** The hash key (`berth.lb=hash`: the client IP or the header/cookie value). */
  key?: string;
}

/** The answer about `t` on a member whose proxy is off (nothing is routed there). */
export function proxyOffUrl(t: UrlTarget): UrlExplain {
  const off = "the proxy is off on this member";
  return {
    ...t,
    matched: null,
    reasons: [off],
    conflicts: [],
    route: null,
    pick: null,
    pickNote: off,
  };
}

/** The route a URL matches now, why, and the matched service's members. */
export function explainUrl(
  table: RouteTable,
  target: UrlTarget,
  ctx: PickContext = {},
): UrlExplain {
  const { host } = target;
  // The path as the proxy routes it: normalized, or a 400 for the forms it refuses.
  const normalized = normalizeTarget(target.path);
  if ("refused" in normalized) {
    return {
      host,
      scheme: target.scheme ?? "http",
      path: target.path,
      matched: null,
      reasons: [`the proxy answers 400: ${normalized.refused}`],
      conflicts: [],
      route: null,
      pick: null,
      pickNote: "no route",
    };
  }
  const path = normalized.url;
  const hit = matchRoute(table, host, path);
  const m = hit === null ? null : { ...hit, host: hit.host === "" ? null : hit.host };
  const reasons: string[] = [];
  if (m === null) {
    const own = host === null ? [] : table.routesOf(host);
    const any = table.routesOf(null);
    if (host !== null && own.length === 0) reasons.push(`no route names the host ${host}`);
    if (own.length > 0) {
      reasons.push(
        `the host ${host} has routes ${prefixes(own)}; none is a prefix of ${cut(path)}`,
      );
    }
    reasons.push(
      any.length === 0
        ? "no path-only (any-host) route exists"
        : `no path-only route ${prefixes(any)} is a prefix of ${cut(path)}`,
    );
    reasons.push("the proxy answers 404");
    return {
      host,
      scheme: target.scheme ?? "http",
      path,
      matched: null,
      reasons,
      conflicts: [],
      route: null,
      pick: null,
      pickNote: "no route",
    };
  }
  const service = m.svc.service;
  reasons.push(
    m.host === null
      ? `no route of the host ${host ?? "(none)"} matches; the path-only route ${m.prefix} does`
      : m.edge
      ? `${m.host} is ${service}'s edge-domain name (route ${m.prefix})`
      : `the host ${m.host} with the longest matching prefix ${m.prefix}`,
  );
  const head = `route ${m.host ?? "*"}${m.prefix}:`;
  const conflicts = table.conflicts.filter((l) => l.startsWith(head));
  const route = routeOptions(table, service);
  if (route.refused !== null) {
    reasons.push(refusedText(route.refused));
  } else if (route.members.every((x) => !x.target)) {
    reasons.push(`${service} has no target now: the proxy answers 503`);
  }
  const { pick, pickNote } = route.refused === null ? explainPick(m.svc.route, ctx) : {
    pick: null,
    pickNote: `every request is answered ${route.refused.status} before balancing`,
  };
  const steps = route.refused !== null ? [] : requestSteps(m.svc.route, {
    scheme: target.scheme ?? "http",
    host,
    url: path,
    prefix: m.prefix,
    httpsPort: ctx.httpsPort ?? null,
    ...(ctx.client === undefined ? {} : { client: ctx.client }),
  });
  return {
    host,
    scheme: target.scheme ?? "http",
    path,
    matched: { host: m.host, prefix: m.prefix, edge: m.edge, service },
    reasons,
    conflicts,
    route,
    pick,
    pickNote,
    steps,
  };
}

/**
 * The instance the balancer would pick now for a request with `ctx.key`, and what that means:
 * - `hash` by client IP: every request has a key, so without `--key` there is no one pick
 *   ("depends on the client"); by a header or cookie, a request without it goes round robin;
 * - `sticky_cookie`: `--key` is the cookie's value (the proxy follows it while its instance is a
 *   target and not ejected, as `cookieTarget` does); without it, or when it names none, the
 *   first pick is round robin's (sticky_cookie.ts `pickSticky`);
 * - any other policy: the next pick of this member's table.
 */
function explainPick(
  route: ServiceRoute,
  ctx: PickContext,
): { pick: string | null; pickNote: string } {
  const balancer = route.balancer;
  const ejected = ctx.ejected ?? new Set<string>();
  const skip = (t: { id: string }) => ejected.has(t.id);
  const none = "no target to pick (every target ejected, or none)";
  const peeked = (key?: string) => balancer.peek(skip, key)?.id ?? null;
  const key = ctx.key;
  if (balancer.policy === "sticky_cookie") {
    if (key !== undefined) {
      const named = balancer.byToken(key);
      if (named !== null && !skip(named)) {
        return { pick: named.id, pickNote: `sticky_cookie: the cookie value names this one` };
      }
      const pick = peeked();
      return {
        pick,
        pickNote: pick === null ? none : "sticky_cookie: the cookie value names no target " +
          "(unknown, gone or ejected), so round robin picks this one and the answer sets a new cookie",
      };
    }
    const pick = peeked();
    return {
      pick,
      pickNote: pick === null
        ? none
        : "sticky_cookie: a request without the cookie gets this one (round robin); the cookie " +
          "then keeps the client there (--key COOKIE-VALUE for one that has it)",
    };
  }
  if (balancer.policy === "hash") {
    const source = lbSettings(route).hash;
    const what = source.from === "ip" ? "the client IP" : `the ${source.from} ${source.name}`;
    if (key !== undefined) {
      const pick = peeked(key);
      return { pick, pickNote: pick === null ? none : `hash of ${what} ${JSON.stringify(key)}` };
    }
    if (source.from === "ip" && balancer.targets.length > 1) {
      return {
        pick: null,
        pickNote: "hash of the client IP: depends on the client (every request has one); " +
          "give --key IP",
      };
    }
    const pick = peeked();
    return {
      pick,
      pickNote: pick === null
        ? none
        : source.from === "ip"
        ? "hash: the only target"
        : `hash of ${what}: a request without it gets this one (round robin)`,
    };
  }
  const pick = peeked();
  return {
    pick,
    pickNote: pick === null ? none : `${balancer.policy}: the next request on this member's table`,
  };
}

/** The routes, TCP ports and members of `service` in the table; null when it has no member. */
export function explainServiceRoutes(table: RouteTable, service: string): ServiceRoutesInfo | null {
  const svc = table.service(service);
  if (svc === undefined) return null;
  const http: ClaimInfo[] = [];
  for (const { claim } of svc.claims.values()) {
    const host = claim.host === "" ? null : claim.host;
    http.push({
      host,
      prefix: claim.prefix,
      edge: false,
      servedBy: servedAt(table, host, claim.prefix),
    });
  }
  // The edge-domain route: a served route of this service that no member claims.
  for (const r of table.httpRoutes()) {
    if (r.service !== service || r.host === null) continue;
    if (http.some((c) => c.host === r.host && c.prefix === r.prefix)) continue;
    http.push({ host: r.host, prefix: r.prefix, edge: true, servedBy: service });
  }
  http.sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
  const tcp = [...svc.tcpPorts.keys()].sort((a, b) => a - b)
    .map((port) => ({ port, servedBy: table.tcp.get(port)?.service ?? null }));
  const udp = [...svc.udpPorts.keys()].sort((a, b) => a - b)
    .map((port) => ({ port, servedBy: table.udp.get(port)?.service ?? null }));
  // Conflict lines name services between spaces, commas and `;` (route_claims.ts).
  const named = new RegExp(`(^|[\\s,])${escapeRe(service)}([\\s,;:]|$)`);
  return {
    http,
    tcp,
    udp,
    conflicts: table.conflicts.filter((l) => named.test(l)),
    options: routeOptions(table, service),
  };
}

function routeOptions(table: RouteTable, service: string): RouteOptionsInfo {
  const svc = table.service(service)!;
  const route: ServiceRoute = svc.route;
  // UDP instances (tagged `udp`) are targets of the UDP routes only.
  const targets = new Set([...route.targets, ...route.udpTargets].map((t) => t.id));
  return {
    service,
    policy: route.balancer.policy,
    proto: route.proto,
    redirectHttps: route.redirectHttps,
    hsts: route.hsts,
    acme: route.acme,
    refused: refusedBy(route.settings),
    settings: Object.fromEntries(
      [...route.settings.values].map(([k, v]) => [k, isSecretKey(k) ? HIDDEN_VALUE : v]),
    ),
    members: svc.members.map((m) => ({
      instance: m.id,
      address: m.address,
      port: m.port,
      weight: m.weight,
      node: m.node,
      target: targets.has(m.id),
      ...(m.spec.udp ? { udp: true as const } : {}),
      why: targets.has(m.id)
        ? null
        : m.weight <= 0
        ? "weight 0"
        : !m.ownOk
        ? "its health is not passing"
        : !table.nodeOk(m.node)
        ? `its node ${m.node} is down or failing a node check`
        : "not a target",
    })),
  };
}

function servedAt(table: RouteTable, host: string | null, prefix: string): string | null {
  const r = table.routesOf(host).find((x: PathRoute) => x.prefix === prefix);
  return r?.svc.service ?? null;
}

function key(c: ClaimInfo): string {
  return `${c.host ?? ""}\u0000${c.prefix}`;
}

function prefixes(routes: readonly PathRoute[]): string {
  const list = routes.slice(0, 8).map((r) => r.prefix).join(", ");
  return routes.length > 8 ? `${list}, … (${routes.length})` : list;
}

function cut(path: string): string {
  return path.length > 120 ? `${path.slice(0, 120)}…` : path;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The route `RouteTable.match` takes for a (normalized) host and path. */
function matchRoute(table: RouteTable, host: string | null, path: string): PathRoute | null {
  const own = host === null || host === "" ? null : matchPrefix(table.routesOf(host), path);
  return own ?? matchPrefix(table.routesOf(null), path);
}
