/**
 * What the route table keeps of one instance: `Member`, an immutable record that is also the
 * balancer's `Target` (a service's targets array holds the members themselves), and the two
 * parts instances of a service usually share, interned per table with a reference count:
 * - `RouteSpec`: the routes the instance asks for (normalized hosts, path prefix, TCP port);
 * - `MemberOptions`: the route options its meta sets (`berth.lb`, `berth.http.proto`,
 *   `berth.http.hsts`, `berth.http.redirect=https`, `berth.tls=acme`) and its route settings
 *   (route_settings.ts; interned apart, so options that differ elsewhere share them).
 *
 * A member costs one object, its target key and two pointers to shared parts; nothing else
 * of the instance (tags, checks, meta) is kept.
 *
 * @module
 */
import type { Instance, NodeInfo } from "../store/mod.ts";
import {
  HSTS_META_KEY,
  HTTP_PROTO_META_KEY,
  instanceHealth,
  LB_META_KEY,
  parseUdpPort,
  REDIRECT_META_KEY,
  ROUTE_KEY_INDEX,
  type RouteKeyIndex,
  TLS_META_KEY,
  UDP_PORT_KEY,
} from "../store/mod.ts";
import { intern } from "../lib/intern.ts";
import type { Target } from "./balancer.ts";
import { RouteSettings } from "./route_settings.ts";

/** One (host, path prefix) route; host "" is any host (a path-only route). */
export interface Claim {
  /** `host \0 prefix`: the claim's identity within a service. */
  readonly key: string;
  readonly host: string;
  readonly prefix: string;
}

/** The routes an instance asks for. */
export interface RouteSpec {
  readonly key: string;
  /** Host routes (each host with the prefix), or one path-only claim, or none. */
  readonly claims: readonly Claim[];
  readonly tcpPort: number | null;
  /**
   * `berth.udp.port` of an instance tagged `udp` (a UDP container port): it serves the
   * service's UDP route on that port (udp_proxy.ts).
   */
  readonly udpPort: number | null;
  /**
   * The instance is tagged `udp` (a UDP container port, or an API registration saying so): it
   * serves the UDP route only, never an HTTP or TCP route (no claims, no TCP port).
   */
  readonly udp: boolean;
  /** The instance asks for any route (a host, a path, a TCP or UDP port). */
  readonly routed: boolean;
  /** Members holding this spec (Shared's reference count). */
  refs: number;
}

/** The route options an instance's meta sets (undefined: not set). */
export interface MemberOptions {
  readonly key: string;
  readonly lb: string | undefined;
  readonly proto: string | undefined;
  readonly hsts: string | undefined;
  readonly redirectHttps: boolean;
  readonly acme: boolean;
  /** The route settings of its meta (RouteSettings.EMPTY when none). */
  readonly settings: RouteSettings;
  refs: number;
}

/** Interned route settings; their count is the number of options holding them. */
interface SharedSettings {
  readonly key: string;
  readonly settings: RouteSettings;
  refs: number;
}

/** One instance as the route table keeps it; replaced whole when the instance changes. */
export class Member implements Target {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  /** `id|address|port`: the connection pool's and passive health's key. */
  readonly key: string;
  readonly service: string;
  readonly node: string;
  /** The instance's own health sources (Docker, checks) pass; its node is judged apart. */
  readonly ownOk: boolean;
  readonly spec: RouteSpec;
  readonly opts: MemberOptions;

  constructor(i: Instance, ownOk: boolean, spec: RouteSpec, opts: MemberOptions) {
    this.id = i.id;
    this.address = intern(i.address);
    this.port = i.port;
    this.weight = i.weight;
    // join() makes one flat string; a template literal keeps a rope of its parts (2x the bytes).
    this.key = [i.id, i.address, i.port].join("|");
    this.service = intern(i.service);
    this.node = intern(i.node);
    this.ownOk = ownOk;
    this.spec = spec;
    this.opts = opts;
  }

  /** Whether `i` (with these shared parts) would make an equal member. */
  same(i: Instance, ownOk: boolean, spec: RouteSpec, opts: MemberOptions): boolean {
    return this.address === i.address && this.port === i.port && this.weight === i.weight &&
      this.service === i.service && this.node === i.node && this.ownOk === ownOk &&
      this.spec === spec && this.opts === opts;
  }
}

/** Whether an instance's own sources pass (its node counted as alive without checks). */
export function ownHealthOk(i: Instance): boolean {
  return instanceHealth(i, undefined).served;
}

/** An instance with no source of its own: its health is its node's. */
const NODE_ONLY = { node: "", docker: null, check: null, checkResult: null, containerId: null };

/** Whether a node passes for its instances (not down, node-level checks passing). */
export function nodeHealthOk(n: NodeInfo): boolean {
  return instanceHealth(NODE_ONLY, n).served;
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

/** Interned values with a reference count: `get` finds or makes one, `release` drops it. */
class Shared<T extends { readonly key: string; refs: number }> {
  readonly #byKey = new Map<string, T>();

  get size(): number {
    return this.#byKey.size;
  }

  get(key: string): T | undefined {
    return this.#byKey.get(key);
  }

  /** The value for `key` (made by `make` when absent), its count raised by one. */
  acquire(key: string, make: () => T): T {
    let v = this.#byKey.get(key);
    if (v === undefined) this.#byKey.set(key, v = make());
    v.refs++;
    return v;
  }

  release(v: T): void {
    if (--v.refs === 0 && this.#byKey.get(v.key) === v) this.#byKey.delete(v.key);
  }
}

const SEP = "\u0000";

function specKey(i: Instance): string {
  if (isUdp(i)) return `udp/${udpPortOf(i) ?? ""}`;
  return `${i.tcpPort ?? ""}${SEP}${i.httpPath ?? SEP}${SEP}${i.httpHosts.join(SEP)}`;
}

/** Whether an instance is a UDP one (tagged `udp`): UDP routes only. */
export function isUdp(i: Pick<Instance, "tags">): boolean {
  return i.tags.includes("udp");
}

/** The UDP route port an instance serves: `berth.udp.port` when it is tagged `udp`, else null. */
export function udpPortOf(i: Pick<Instance, "tags" | "meta">): number | null {
  const v = i.meta[UDP_PORT_KEY];
  if (v === undefined || !isUdp(i)) return null;
  try {
    return parseUdpPort(v);
  } catch {
    return null; // stored by another version: no UDP route
  }
}

function optionsKey(m: Record<string, string>, settingsKey: string): string {
  const lb = m[LB_META_KEY];
  const proto = m[HTTP_PROTO_META_KEY];
  const hsts = m[HSTS_META_KEY];
  const flags = (m[REDIRECT_META_KEY] === "https" ? "r" : "") +
    (m[TLS_META_KEY] === "acme" ? "a" : "");
  if (lb === undefined && proto === undefined && hsts === undefined && settingsKey === "") {
    return flags;
  }
  return `${flags}${SEP}${lb ?? SEP}${SEP}${proto ?? SEP}${SEP}${hsts ?? SEP}${SEP}${settingsKey}`;
}

function makeSpec(key: string, i: Instance): RouteSpec {
  if (isUdp(i)) {
    const udpPort = udpPortOf(i);
    return {
      key,
      claims: [],
      tcpPort: null,
      udpPort,
      udp: true,
      routed: udpPort !== null,
      refs: 0,
    };
  }
  const prefix = intern(normalizePrefix(i.httpPath));
  const hosts = i.httpHosts.length > 0
    ? [...new Set(i.httpHosts.map((h) => intern(normalizeHost(h))))]
    : i.httpPath !== null
    ? [""]
    : [];
  const claims = hosts.map((host) => ({ key: `${host}${SEP}${prefix}`, host, prefix }));
  return {
    key,
    claims,
    tcpPort: i.tcpPort,
    udpPort: null,
    udp: false,
    routed: claims.length > 0 || i.tcpPort !== null,
    refs: 0,
  };
}

function makeOptions(
  key: string,
  m: Record<string, string>,
  settings: RouteSettings,
): MemberOptions {
  return {
    key,
    lb: m[LB_META_KEY],
    proto: m[HTTP_PROTO_META_KEY],
    hsts: m[HSTS_META_KEY],
    redirectHttps: m[REDIRECT_META_KEY] === "https",
    acme: m[TLS_META_KEY] === "acme",
    settings,
    refs: 0,
  };
}

/** Makes members, sharing their specs and options; one per route table. */
export class Members {
  readonly #specs = new Shared<RouteSpec>();
  readonly #options = new Shared<MemberOptions>();
  readonly #settings = new Shared<SharedSettings>();
  readonly #routeKeys: RouteKeyIndex;

  /** `routeKeys`: the route settings read from meta (default: every one, ROUTE_KEYS). */
  constructor(routeKeys: RouteKeyIndex = ROUTE_KEY_INDEX) {
    this.#routeKeys = routeKeys;
  }

  /** Distinct specs, options and non-empty settings held (for tests: released ones are gone). */
  get sharedCount(): number {
    return this.#specs.size + this.#options.size + this.#settings.size;
  }

  /** The member for `i`, or `old` itself when nothing the routes use changed. */
  make(i: Instance, old: Member | undefined): Member {
    const ownOk = ownHealthOk(i);
    const sk = specKey(i);
    const settingsKey = RouteSettings.keyOf(i.meta, this.#routeKeys);
    const ok = optionsKey(i.meta, settingsKey);
    if (
      old !== undefined && old.spec.key === sk && old.opts.key === ok &&
      old.same(i, ownOk, old.spec, old.opts)
    ) return old;
    const spec = this.#specs.acquire(sk, () => makeSpec(sk, i));
    const opts = this.#options.acquire(ok, () => {
      const settings = settingsKey === "" ? RouteSettings.EMPTY : this.#settings.acquire(
        settingsKey,
        () => ({
          key: settingsKey,
          settings: RouteSettings.fromMeta(i.meta, this.#routeKeys),
          refs: 0,
        }),
      ).settings;
      return makeOptions(ok, i.meta, settings);
    });
    return new Member(i, ownOk, spec, opts);
  }

  /** Drops a member that is no longer kept (its shared parts' counts). */
  release(m: Member): void {
    this.#specs.release(m.spec);
    this.#options.release(m.opts);
    if (m.opts.refs === 0 && m.opts.settings !== RouteSettings.EMPTY) {
      const held = this.#settings.get(m.opts.settings.key);
      if (held !== undefined) this.#settings.release(held);
    }
  }
}
