/**
 * One service in the route table: its members in id order, what they claim (host/path routes
 * and TCP ports, reference-counted) and its options, kept up to date member by member; its
 * `ServiceRoute` (targets and balancer) is an immutable value made when first asked for after a
 * change, so requests under way keep the one they started with.
 *
 * Costs, for a service of n members: adding, replacing or removing one is a binary search and,
 * for adding and removing, one array splice (O(n) pointer moves, native); the options are
 * re-derived from the first members that set them (usually the first). The next lookup after
 * a change makes the new route: O(n) (its targets array and balancer), once per burst of changes.
 *
 * @module
 */
import type { HttpProto } from "../store/mod.ts";
import {
  ALLOW_KEY,
  AUTH_BASIC_KEY,
  HTTP_PROTO_META_KEY,
  NOBODY,
  parseHttpProto,
  PROXY_PROTOCOL_KEY,
} from "../store/mod.ts";
import {
  Balancer,
  LB_META_KEY,
  LB_POLICIES,
  type LbPolicy,
  parseLbPolicy,
  type Target,
} from "./balancer.ts";
import type { Claim, Member, MemberOptions } from "./route_member.ts";
import { RouteSettings } from "./route_settings.ts";
import { idleLbSettings, LB_PART } from "./lb_settings.ts";

/** One service as the proxy sees it. */
export interface ServiceRoute {
  readonly service: string;
  /**
   * Served targets with weight > 0, in instance id order, of the HTTP and TCP routes: the
   * instances not tagged `udp`; empty → 503.
   */
  readonly targets: readonly Target[];
  /** The served instances tagged `udp` (weight > 0, id order): the UDP routes' (udp_proxy.ts). */
  readonly udpTargets: readonly Target[];
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
  /**
   * Route settings (route_settings.ts): those of the first instance in id order that has any;
   * RouteSettings.EMPTY when none has.
   */
  readonly settings: RouteSettings;
}

/** What a service needs from its table. */
export interface ServiceContext {
  /** Whether the node passes (not down, node-level checks passing; unknown nodes pass). */
  nodeOk(node: string): boolean;
  load?: (key: string) => number;
  random?: () => number;
  /** A target's weight during a slow-start ramp of `rampMs` (slow_start.ts). */
  rampedWeight?: (t: Target, rampMs: number) => number;
}

/** The options of a service, from its members in id order. */
interface ServiceOptions {
  readonly policy: LbPolicy;
  readonly proto: HttpProto;
  readonly hsts: string | null;
  readonly redirectHttps: boolean;
  readonly acme: boolean;
  readonly settings: RouteSettings;
  /** Unknown `berth.lb` / `berth.http.proto` values and differing route settings, as lines. */
  readonly notes: readonly string[];
}

const DEFAULT_OPTIONS: ServiceOptions = {
  policy: "round_robin",
  proto: "http1",
  hsts: null,
  redirectHttps: false,
  acme: false,
  settings: RouteSettings.EMPTY,
  notes: [],
};

/** Members setting each option, to know whether a scan for the first setter is needed. */
interface OptionCounts {
  lb: number;
  proto: number;
  hsts: number;
  redirect: number;
  acme: number;
}

/** A service with at least one member (the table drops it when its last member goes). */
export class RoutedService {
  readonly service: string;
  /** Members in id order. */
  readonly members: Member[] = [];
  /** Route claims of the members: claim key → claim and how many members make it. */
  readonly claims = new Map<string, { claim: Claim; n: number }>();
  /** TCP ports of the members → how many members ask for it. */
  readonly tcpPorts = new Map<number, number>();
  /** UDP ports of the members (`berth.udp.port` of those tagged udp) → how many ask for it. */
  readonly udpPorts = new Map<number, number>();
  /** Members that ask for any route. */
  routedMembers = 0;
  /** Members not tagged `udp` (HTTP/TCP ones): the edge-domain route is kept while any is. */
  streamMembers = 0;
  readonly #counts: OptionCounts = { lb: 0, proto: 0, hsts: 0, redirect: 0, acme: 0 };
  /** Members holding each non-empty route settings object (interned: one object per value). */
  readonly #settings = new Map<RouteSettings, number>();
  #options: ServiceOptions = DEFAULT_OPTIONS;
  readonly #ctx: ServiceContext;
  #route: ServiceRoute | null = null;
  /** The balancer of the last route made, to carry its rotation over to the next. */
  #previous: Balancer | null;

  constructor(service: string, ctx: ServiceContext, previous: Balancer | null = null) {
    this.service = service;
    this.#ctx = ctx;
    this.#previous = previous;
  }

  /** The current route (made now when the service changed since it was last asked for). */
  get route(): ServiceRoute {
    return this.#route ?? this.#makeRoute();
  }

  /** The balancer in use or the last one made (for a rebuilt table to carry over). */
  get balancer(): Balancer | null {
    return this.#route?.balancer ?? this.#previous;
  }

  get acme(): boolean {
    return this.#counts.acme > 0;
  }

  /** Conflict lines about the service's own options. */
  get notes(): readonly string[] {
    return this.#options.notes;
  }

  /** Index of member `id`, or `-(insertion point) - 1` when absent. */
  indexOf(id: string): number {
    const ms = this.members;
    let lo = 0;
    let hi = ms.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const m = ms[mid]!.id;
      if (m < id) lo = mid + 1;
      else if (m > id) hi = mid - 1;
      else return mid;
    }
    return -lo - 1;
  }

  /** Puts `m` in id order (replacing the member with its id). Returns the member replaced. */
  put(m: Member): Member | undefined {
    const at = this.indexOf(m.id);
    let old: Member | undefined;
    if (at >= 0) {
      old = this.members[at]!;
      this.members[at] = m;
      this.#count(old.opts, -1);
    } else this.members.splice(-at - 1, 0, m);
    this.#count(m.opts, 1);
    return old;
  }

  /** Removes member `id`. Returns it. */
  remove(id: string): Member | undefined {
    const at = this.indexOf(id);
    if (at < 0) return undefined;
    const old = this.members[at]!;
    this.members.splice(at, 1);
    this.#count(old.opts, -1);
    return old;
  }

  #count(o: MemberOptions, d: number): void {
    const c = this.#counts;
    if (o.lb !== undefined) c.lb += d;
    if (o.proto !== undefined) c.proto += d;
    if (o.hsts !== undefined) c.hsts += d;
    if (o.redirectHttps) c.redirect += d;
    if (o.acme) c.acme += d;
    if (o.settings !== RouteSettings.EMPTY) {
      const n = (this.#settings.get(o.settings) ?? 0) + d;
      if (n === 0) this.#settings.delete(o.settings);
      else this.#settings.set(o.settings, n);
    }
  }

  /**
   * The route settings of the first served member (weight > 0, own health ok, node ok; id order)
   * that has any, else of the first member that has any (none is served): a stopped container
   * with old labels or a critical API instance does not set a route for the healthy ones. A
   * note for each other settings a member has (naming the keys that differ), and one for the
   * members that have none while others have some. One map lookup when every member has the
   * same settings. Access keys (`SECURITY_KEYS`) fail closed: when the members the settings are
   * taken from (served ones, else all) disagree on one, the route gets `none` for it (nobody
   * passes) and a note says so, rather than the first member's value silently dropping
   * another's protection.
   */
  #chooseSettings(notes: string[]): RouteSettings {
    if (this.#settings.size === 0) return RouteSettings.EMPTY;
    if (this.#settings.size === 1) {
      const [only, n] = this.#settings.entries().next().value!;
      if (n === this.members.length) return only;
    }
    const ctx = this.#ctx;
    const served = (m: Member) => m.weight > 0 && m.ownOk && ctx.nodeOk(m.node);
    let first: Member | null = null;
    let firstAny: Member | null = null;
    const bare: string[] = [];
    for (const m of this.members) {
      const st = m.opts.settings;
      if (st === RouteSettings.EMPTY) bare.push(m.id);
      else {
        firstAny ??= m;
        if (first === null && served(m)) first = m;
      }
    }
    const chosenBy = first ?? firstAny!;
    const chosen = chosenBy.opts.settings;
    const from = new Set<RouteSettings>();
    const noted = new Set<RouteSettings>([chosen]);
    for (const m of this.members) {
      const st = m.opts.settings;
      if (st === RouteSettings.EMPTY) continue;
      if (first === null || served(m)) from.add(st);
      if (noted.has(st)) continue;
      noted.add(st);
      notes.push(
        `service ${this.service}: instance ${m.id} sets other berth.* route settings than ` +
          `${chosenBy.id} (${differingKeys(st, chosen).join(", ")}); using ${chosenBy.id}'s` +
          (first !== null && !served(m) ? " (it is not served)" : ""),
      );
    }
    if (bare.length > 0) {
      const shown = bare.length > 3
        ? `${bare.slice(0, 3).join(", ")} and ${bare.length - 3} more`
        : bare.join(", ");
      notes.push(
        `service ${this.service}: ${bare.length === 1 ? "instance" : "instances"} ${shown} ` +
          `set${bare.length === 1 ? "s" : ""} no berth.* route settings; using ${chosenBy.id}'s`,
      );
    }
    const closed = SECURITY_KEYS.filter((k) => [...from].some((st) => st.get(k) !== chosen.get(k)));
    if (closed.length === 0) return chosen;
    notes.push(
      `service ${this.service}: its instances set ${closed.join(", ")} differently; ` +
        `nobody is let in (${NOBODY}) until they agree`,
    );
    return chosen.with(Object.fromEntries(closed.map((k) => [k, NOBODY])));
  }

  /** Where `berth.proxy-protocol` is set but no header is sent (README "PROXY protocol"). */
  #proxyProtocolNotes(settings: RouteSettings, notes: string[]): void {
    if (settings.get(PROXY_PROTOCOL_KEY) === undefined) return;
    if (this.udpPorts.size > 0) {
      notes.push(
        `service ${this.service}: ${PROXY_PROTOCOL_KEY} sends no header on UDP route ` +
          `datagrams`,
      );
    }
  }

  /**
   * After its members changed: the next `route` is made anew, and the options are derived again
   * from the first members (in id order) that set them. Returns whether `acme` flipped.
   */
  changed(): boolean {
    if (this.#route !== null) {
      this.#previous = this.#route.balancer;
      this.#route = null;
    }
    const c = this.#counts;
    let lb: string | undefined;
    let proto: string | undefined;
    let hsts: string | undefined;
    let missing = (c.lb > 0 ? 1 : 0) + (c.proto > 0 ? 1 : 0) + (c.hsts > 0 ? 1 : 0);
    for (let i = 0; missing > 0 && i < this.members.length; i++) {
      const o = this.members[i]!.opts;
      if (lb === undefined && o.lb !== undefined) {
        lb = o.lb;
        missing--;
      }
      if (proto === undefined && o.proto !== undefined) {
        proto = o.proto;
        missing--;
      }
      if (hsts === undefined && o.hsts !== undefined) {
        hsts = o.hsts;
        missing--;
      }
    }
    const notes: string[] = [];
    let policy: LbPolicy = "round_robin";
    if (lb !== undefined) {
      const p = parseLbPolicy(lb);
      if (p === null) {
        notes.push(
          `service ${this.service}: ${LB_META_KEY}="${lb}" is unknown ` +
            `(use ${LB_POLICIES.join(", ")}); using round_robin`,
        );
      } else policy = p;
    }
    let httpProto: HttpProto = "http1";
    if (proto !== undefined) {
      const p = parseHttpProto(proto);
      if (p === null) {
        notes.push(
          `service ${this.service}: ${HTTP_PROTO_META_KEY}="${proto}" is unknown ` +
            `(use http1, h2c or grpc); using http1`,
        );
      } else httpProto = p;
    }
    const settings = this.#chooseSettings(notes);
    this.#proxyProtocolNotes(settings, notes);
    for (const idle of idleLbSettings(policy, settings, { proto: httpProto })) {
      notes.push(`service ${this.service}: ${idle}`);
    }
    const acmeFlipped = this.#options.acme !== c.acme > 0;
    this.#options = {
      policy,
      proto: httpProto,
      hsts: hsts ?? null,
      redirectHttps: c.redirect > 0,
      acme: c.acme > 0,
      settings,
      notes,
    };
    return acmeFlipped;
  }

  #makeRoute(): ServiceRoute {
    const ctx = this.#ctx;
    const targets: Member[] = [];
    const udpTargets: Member[] = [];
    for (const m of this.members) {
      if (m.weight > 0 && m.ownOk && ctx.nodeOk(m.node)) {
        (m.spec.udp ? udpTargets : targets).push(m);
      }
    }
    const o = this.#options;
    const previous = this.#previous;
    const route: ServiceRoute = {
      service: this.service,
      targets,
      udpTargets,
      balancer: new Balancer(o.policy, targets, {
        load: ctx.load,
        random: ctx.random,
        previous: previous?.policy === o.policy ? previous : null,
        weight: rampedWeight(ctx, o.settings),
      }),
      acme: o.acme,
      proto: o.proto,
      redirectHttps: o.redirectHttps,
      hsts: o.hsts,
      settings: o.settings,
    };
    this.#previous = null;
    this.#route = route;
    return route;
  }
}

/** The balancer's weight function for a service's `berth.http.slow-start`, if it has one. */
function rampedWeight(
  ctx: ServiceContext,
  settings: RouteSettings,
): ((t: Target) => number) | undefined {
  const ramp = ctx.rampedWeight;
  if (ramp === undefined || settings.size === 0) return undefined;
  const ms = settings.compiled(LB_PART).slowStartMs;
  return ms === null ? undefined : (t) => ramp(t, ms);
}

/**
 * Access settings that fail closed when a service's instances disagree on them
 * (`#chooseSettings`).
 */
export const SECURITY_KEYS: readonly string[] = [ALLOW_KEY, AUTH_BASIC_KEY];

/** The keys whose values differ between `a` and `b`, sorted. */
function differingKeys(a: RouteSettings, b: RouteSettings): string[] {
  const keys = new Set([...a.values.keys(), ...b.values.keys()]);
  return [...keys].filter((k) => a.get(k) !== b.get(k)).sort();
}
