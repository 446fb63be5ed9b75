/**
 * UDP routes (README "UDP routes"): for every `berth.udp.port=N` of a service's instances tagged
 * `udp` (the UDP container ports Docker registers), listen on UDP port N and balance datagrams
 * per client flow. A flow is a client address and port; its first datagram picks an instance
 * (the service's balancer policy; `hash` and `sticky_cookie` hash the client's IP; the load
 * `least_conn` and `p2c` weigh is the instance's open flows), and every
 * later one goes to the same instance, from a socket of the flow's own, so that the instance's
 * replies come back to that socket and are sent on to the client from the listening socket.
 *
 * - Health gating: only the route's served instances are picked; a flow whose instance is no
 *   longer served moves to another on its next datagram (the route is read per datagram).
 * - A flow with no datagram either way for the service's `berth.udp.idle-timeout` (default
 *   30 s) is forgotten (its socket closed), found by a sweep every `SWEEP_MS`: never early, at
 *   most a sweep late.
 * - File descriptors: each flow holds a socket, so flows are capped twice (README "UDP routes"):
 *   at most `flowsPerClientMax` (32) per client address over every UDP route, a new one beyond
 *   it evicting that client's flow idle longest (one client spraying source ports evicts only
 *   its own flows), and at most `flowsMax` over every route of the process, a quarter of the
 *   open-file soft limit (at most 4096), a new one beyond it evicting the flow idle longest.
 * - Replies: a flow's socket takes datagrams only from its instance's address and port (an IP
 *   address; for a host name, the port only). It is bound to loopback when the instance is on
 *   loopback. Deno 2.9.6's `node:dgram` `connect()` does not connect the kernel socket (it
 *   filters nothing and reports no ICMP refusal), so an instance that is down is noticed by its
 *   health gating (`berth.check.udp` sees the refusal through a kernel-connected FFI socket,
 *   src/health/udp_check.ts), not by ECONNREFUSED here: there is no passive health for UDP.
 * - Send errors (on the listener or a flow) are counted and logged at most once a minute.
 * - A datagram that finds no instance is dropped (counted in the report).
 * - Ports: a port that is the agent's own DNS listener, that another service claimed first
 *   (route_claims.ts), or that cannot be bound is refused with one log line and reported
 *   failed, as TCP routes are (tcp_proxy.ts).
 *
 * UDP routes run on the main thread only, also with proxy workers: Deno 2.9.6's `node:dgram`
 * cannot share a port between threads (`reusePort` fails with EADDRINUSE) and
 * `Deno.listenDatagram` with `reuseAddress` hands every datagram to the last socket bound, so
 * workers could not share the port; the FFI sockets the DNS workers use (src/lib/ffi_udp.ts)
 * would also need a flow socket per client on each worker. README says so.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import dgram from "node:dgram";
import { isIP, isIPv6 } from "node:net";
import { errorText } from "../lib/error_text.ts";
import { openFileLimit } from "../lib/fd_limit.ts";
import {
  parseUdpIdleTimeout,
  UDP_IDLE_TIMEOUT_KEY,
  UDP_IDLE_TIMEOUT_MS_DEFAULT,
} from "../store/mod.ts";
import { Balancer, type Target } from "./balancer.ts";
import { clientKey } from "./lb_key.ts";
import type { Member } from "./route_member.ts";
import { readSetting, type RoutePart } from "./route_settings.ts";
import type { RoutedService, RouteTable, ServiceRoute, TcpClash } from "./routes.ts";
import { type ReservedListener, withClashRows } from "./tcp_proxy.ts";

/** Flows of the process at most; a new one beyond it evicts the one idle longest. */
export const UDP_FLOWS_MAX = 4096;
/** Flows of one client address at most (over every UDP route). */
export const UDP_FLOWS_PER_CLIENT_MAX = 32;
/** How often a send error is logged at most (the others are counted in that line). */
const SEND_ERROR_LOG_MS = 60_000;

/**
 * The flow budget for an open-file soft limit (null: unknown, taken as 1024, systemd's default):
 * a quarter of it, at least 16, at most UDP_FLOWS_MAX. The rest is for connections, Raft, files.
 */
export function udpFlowsBudget(softLimit: number | null): number {
  return Math.max(16, Math.min(UDP_FLOWS_MAX, Math.floor((softLimit ?? 1024) / 4)));
}
/** How often idle flows are looked for. */
export const SWEEP_MS = 1_000;

export interface UdpProxyOptions {
  /** Address the listeners bind. */
  host: string;
  log: (line: string) => void;
  /** The agent's own listeners; a UDP route on the DNS one's port is refused. */
  reserved?: readonly ReservedListener[];
  /** Flows over every route; default udpFlowsBudget(the open-file soft limit). */
  flowsMax?: number;
  /** Flows of one client address; default UDP_FLOWS_PER_CLIENT_MAX. */
  flowsPerClientMax?: number;
  /** Clock (ms). Default Date.now. */
  now?: () => number;
  /** Told of each client flow (proxy_metrics.ts counts them). */
  observer?: UdpObserver;
}

/** What a UDP route's client flows are reported to. */
export interface UdpObserver {
  /** A flow of a client began on the route on `port` of `service`. */
  udpFlowOpened(service: string, port: number): void;
  /** It ended, after `bytesIn` from the client and `bytesOut` to it. */
  udpFlowClosed(service: string, port: number, bytesIn: number, bytesOut: number): void;
}

/** A UDP route as the routes API lists it. */
export interface UdpRouteInfo {
  port: number;
  service: string;
  state: "listening" | "binding" | "failed";
  error: string | null;
  /** Client flows open now. */
  flows: number;
  /** Datagrams dropped because no instance was served. */
  dropped: number;
}

interface Flow {
  readonly l: Listener;
  /** Its key in the listener's flows (`address|port`). */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  target: Target;
  /** The flow's socket towards its instance. */
  socket: dgram.Socket;
  lastMs: number;
  /** The service it was opened for, and its datagram bytes either way (for the metrics). */
  readonly service: string;
  bytesIn: number;
  bytesOut: number;
}

/** The served instances of a route that serve a UDP port, and a balancer over them. */
interface UdpTargets {
  readonly route: ServiceRoute;
  readonly keys: ReadonlySet<string>;
  readonly balancer: Balancer;
  readonly idleMs: number;
}

interface Listener {
  readonly port: number;
  socket: dgram.Socket | null;
  svc: RoutedService;
  state: UdpRouteInfo["state"];
  error: string | null;
  /** Flows by `address|port`, least recently active first. */
  readonly flows: Map<string, Flow>;
  /** The targets of the route last seen (routes are immutable: one per change). */
  cache: UdpTargets | null;
  dropped: number;
}

/** `berth.udp.idle-timeout` of a route (ms), compiled once per settings object. */
const IDLE_PART: RoutePart<number> = {
  name: "udp-idle-timeout",
  compile: (s) =>
    readSetting(s, UDP_IDLE_TIMEOUT_KEY, parseUdpIdleTimeout) ?? UDP_IDLE_TIMEOUT_MS_DEFAULT,
};

const WILDCARDS = new Set(["0.0.0.0", "::", ""]);
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1)$/;

/** An IPv4 address without its `::ffff:` IPv6 form. */
function unmapped(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** The UDP side of the proxy; told which ports of the route table changed. */
export class UdpProxy {
  readonly #o: UdpProxyOptions;
  readonly #flowsMax: number;
  readonly #perClientMax: number;
  readonly #now: () => number;
  readonly #listeners = new Map<number, Listener>();
  /** Every flow, least recently active first. */
  readonly #all = new Set<Flow>();
  /** Each client address's flows (over every listener), least recently active first. */
  readonly #clients = new Map<string, Set<Flow>>();
  /** Open flows by target key: the load `least_conn` and `p2c` weigh. */
  readonly #perTarget = new Map<string, number>();
  readonly #load = (key: string): number => this.#perTarget.get(key) ?? 0;
  #sendErrors = 0;
  #sendErrorLoggedMs = -Infinity;
  #sweep: ReturnType<typeof setInterval> | null = null;
  #closed = false;

  constructor(opts: UdpProxyOptions) {
    this.#o = opts;
    this.#flowsMax = opts.flowsMax ?? udpFlowsBudget(openFileLimit()?.soft ?? null);
    this.#perClientMax = opts.flowsPerClientMax ?? UDP_FLOWS_PER_CLIENT_MAX;
    this.#now = opts.now ?? Date.now;
  }

  /** Ports with a listener (bound or being bound). */
  get ports(): number[] {
    return [...this.#listeners].filter(([, l]) => l.state !== "failed").map(([p]) => p)
      .sort((a, b) => a - b);
  }

  /** Every UDP route with its listener's state; services in `clashes` are failed. */
  report(clashes: readonly TcpClash[]): UdpRouteInfo[] {
    const out: UdpRouteInfo[] = [...this.#listeners.values()].map((l) => ({
      port: l.port,
      service: l.svc.service,
      state: l.state,
      error: l.error,
      flows: l.flows.size,
      dropped: l.dropped,
    }));
    return withClashRows(out, clashes, (row) => ({ ...row, flows: 0, dropped: 0 }));
  }

  /**
   * Opens, retargets and closes listeners to match `table.udp` on `ports` (default: every port
   * of the table or with a listener). Resolves once bound, and removed ports closed.
   */
  async update(table: RouteTable, ports?: Iterable<number>): Promise<void> {
    if (this.#closed) return;
    const binding: Promise<void>[] = [];
    for (const port of ports ?? new Set([...this.#listeners.keys(), ...table.udp.keys()])) {
      const svc = table.udp.get(port);
      const l = this.#listeners.get(port);
      if (l !== undefined && svc === undefined) {
        this.#listeners.delete(port);
        binding.push(this.#closeListener(l));
      } else if (l !== undefined && svc !== undefined) {
        l.svc = svc; // each datagram reads the service's current route
      } else if (svc !== undefined) binding.push(this.#listen(port, svc));
    }
    if (this.#listeners.size > 0) this.#sweep ??= setInterval(this.sweepIdle, SWEEP_MS);
    await Promise.all(binding);
  }

  #listen(port: number, svc: RoutedService): Promise<void> {
    const { host } = this.#o;
    const l: Listener = {
      port,
      socket: null,
      svc,
      state: "binding",
      error: null,
      flows: new Map(),
      cache: null,
      dropped: 0,
    };
    this.#listeners.set(port, l);
    const own = this.#o.reserved?.find((r) =>
      r.what === "dns" && r.port === port &&
      (r.host === host || WILDCARDS.has(r.host) || WILDCARDS.has(host))
    );
    if (own !== undefined) {
      return Promise.resolve(this.#failed(
        l,
        `port ${port} is the agent's own DNS listener (${own.host}:${own.port})`,
        "refused UDP route",
      ));
    }
    const socket = dgram.createSocket(isIPv6(host) ? "udp6" : "udp4");
    l.socket = socket;
    socket.on("message", (msg: Buffer, from: dgram.RemoteInfo) => this.#onDatagram(l, msg, from));
    return new Promise<void>((resolve) => {
      socket.once("error", (e: Error) => {
        l.socket = null;
        try {
          socket.close();
        } catch { /* never bound */ }
        this.#failed(l, `cannot listen on ${host}:${port}: ${errorText(e, { preferCode: true })}`);
        resolve();
      });
      socket.bind(port, host, () => {
        if (l.state === "binding") l.state = "listening";
        socket.removeAllListeners("error");
        socket.on("error", (e) => this.#sendFailed(`UDP ${port}`, e));
        resolve();
      });
    });
  }

  #failed(l: Listener, error: string, what = "cannot serve UDP route"): void {
    l.state = "failed";
    l.error = error;
    this.#o.log(
      `proxy: ${what} ${this.#o.host}:${l.port} of service ${l.svc.service}: ${error} ` +
        `(free the port or change berth.udp.port)`,
    );
  }

  /** The route's UDP targets on this listener's port (remade when the route changed). */
  #targets(l: Listener): UdpTargets {
    const route = l.svc.route;
    const c = l.cache;
    if (c !== null && c.route === route) return c;
    const targets = route.udpTargets.filter((t) => (t as Member).spec?.udpPort === l.port);
    const made: UdpTargets = {
      route,
      keys: new Set(targets.map((t) => t.key)),
      balancer: new Balancer(route.balancer.policy, targets, {
        previous: c?.balancer.policy === route.balancer.policy ? c.balancer : null,
        load: this.#load,
      }),
      idleMs: route.settings.size === 0
        ? UDP_IDLE_TIMEOUT_MS_DEFAULT
        : route.settings.compiled(IDLE_PART),
    };
    l.cache = made;
    return made;
  }

  #onDatagram(l: Listener, msg: Buffer, from: dgram.RemoteInfo): void {
    const key = `${from.address}|${from.port}`;
    const ut = this.#targets(l);
    let flow = l.flows.get(key);
    if (flow !== undefined && !ut.keys.has(flow.target.key)) {
      // Its instance is no longer served: the flow moves on.
      this.#endFlow(flow);
      flow = undefined;
    }
    const now = this.#now();
    if (flow === undefined) {
      const target = ut.balancer.pick(undefined, clientKey(from.address));
      if (target === null) {
        l.dropped++;
        return;
      }
      const mine = this.#clients.get(from.address);
      if (mine !== undefined && mine.size >= this.#perClientMax) {
        this.#endFlow(mine.values().next().value!); // that client's idlest
      } else if (this.#all.size >= this.#flowsMax) {
        this.#endFlow(this.#all.values().next().value!); // the idlest of all
      }
      flow = this.#openFlow(l, key, from, target);
    } else this.#touch(flow);
    flow.lastMs = now;
    flow.bytesIn += msg.length;
    flow.socket.send(msg, flow.target.port, flow.target.address, this.#sent);
  }

  /** Moves a flow to the end (most recently active) of the orders it is in. */
  #touch(flow: Flow): void {
    flow.l.flows.delete(flow.key);
    flow.l.flows.set(flow.key, flow);
    this.#all.delete(flow);
    this.#all.add(flow);
    const mine = this.#clients.get(flow.address);
    mine?.delete(flow);
    mine?.add(flow);
  }

  /** A send's callback: failures are counted and logged at most once a minute. */
  readonly #sent = (e: Error | null): void => {
    if (e) this.#sendFailed("UDP flow", e);
  };

  #sendFailed(where: string, e: Error): void {
    this.#sendErrors++;
    const now = this.#now();
    if (now - this.#sendErrorLoggedMs < SEND_ERROR_LOG_MS) return;
    this.#sendErrorLoggedMs = now;
    const n = this.#sendErrors;
    this.#sendErrors = 0;
    this.#o.log(
      `proxy: ${where}: ${errorText(e)}` +
        (n > 1 ? ` (${n} send errors since the last such line)` : ""),
    );
  }

  #openFlow(l: Listener, key: string, from: dgram.RemoteInfo, target: Target): Flow {
    const socket = dgram.createSocket(isIPv6(target.address) ? "udp6" : "udp4");
    const service = l.svc.service;
    const flow: Flow = {
      l,
      key,
      address: from.address,
      port: from.port,
      target,
      socket,
      lastMs: 0,
      service,
      bytesIn: 0,
      bytesOut: 0,
    };
    this.#o.observer?.udpFlowOpened(service, l.port);
    const want = isIP(target.address) === 0 ? null : unmapped(target.address);
    socket.on("message", (reply: Buffer, r: dgram.RemoteInfo) => {
      // Only the instance's replies; anything else reaching the flow's port is dropped.
      if (r.port !== flow.target.port || l.flows.get(key) !== flow) return;
      if (want !== null && unmapped(r.address) !== want) return;
      flow.lastMs = this.#now();
      this.#touch(flow);
      flow.bytesOut += reply.length;
      l.socket?.send(reply, flow.port, flow.address, this.#sent);
    });
    socket.on("error", () => this.#endFlow(flow));
    // Off the outer interfaces when the instance is on loopback.
    const loop = LOOPBACK.test(want ?? "") ? want : null;
    if (loop !== null) socket.bind(0, loop);
    l.flows.set(key, flow);
    this.#all.add(flow);
    const mine = this.#clients.get(flow.address);
    if (mine === undefined) this.#clients.set(flow.address, new Set([flow]));
    else mine.add(flow);
    this.#perTarget.set(target.key, this.#load(target.key) + 1);
    return flow;
  }

  #endFlow(flow: Flow): void {
    const l = flow.l;
    if (l.flows.get(flow.key) === flow) {
      l.flows.delete(flow.key);
      this.#all.delete(flow);
      const mine = this.#clients.get(flow.address);
      mine?.delete(flow);
      if (mine?.size === 0) this.#clients.delete(flow.address);
      const n = this.#load(flow.target.key) - 1;
      if (n > 0) this.#perTarget.set(flow.target.key, n);
      else this.#perTarget.delete(flow.target.key);
      this.#o.observer?.udpFlowClosed(flow.service, l.port, flow.bytesIn, flow.bytesOut);
    }
    try {
      flow.socket.close();
    } catch { /* closed already */ }
  }

  /** Forgets flows idle for their route's idle timeout. Runs every SWEEP_MS. */
  sweepIdle = (): void => {
    const now = this.#now();
    for (const l of this.#listeners.values()) {
      if (l.flows.size === 0) continue;
      const idleMs = this.#targets(l).idleMs;
      for (const flow of l.flows.values()) {
        if (now - flow.lastMs < idleMs) break; // least recently active first: the rest are newer
        this.#endFlow(flow);
      }
    }
  };

  /** Resolves once its port is free again. */
  #closeListener(l: Listener): Promise<void> {
    for (const flow of [...l.flows.values()]) this.#endFlow(flow);
    const socket = l.socket;
    l.socket = null;
    if (socket === null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve(); // closed already
      }
    });
  }

  /** Closes every listener and flow. */
  close(): void {
    this.#closed = true;
    if (this.#sweep !== null) clearInterval(this.#sweep);
    this.#sweep = null;
    for (const l of this.#listeners.values()) void this.#closeListener(l);
    this.#listeners.clear();
  }
}
