/**
 * TCP routes: for every service port `berth.tcp.port=N` (instance.tcpPort), listen on N and
 * relay each connection to an instance of the service, round robin (or the service's
 * `berth.lb`; `hash` and `sticky_cookie` hash the client's IP), trying another instance when
 * one refuses. Listeners open and close as the route
 * table's TCP ports change (only the ports a change touched are looked at); a listener follows
 * its service's current route, and a closed listener's open connections keep going until the
 * instance drains.
 *
 * A port that cannot be bound (already in use), or that is one of the agent's own listeners
 * (`reserved`: API, DNS, proxy, cluster), is refused: logged once, listed as failed by
 * `report()`, and left alone until its route disappears and comes back. The agent never stops
 * for a route.
 *
 * @module
 */
import net from "node:net";
import { clientKey } from "./lb_key.ts";
import { relay } from "./relay.ts";
import type { RoutedService, RouteTable, TcpClash } from "./routes.ts";
import type { UpstreamPool } from "./upstream_pool.ts";
import { errorText } from "../lib/error_text.ts";
import { settleWithin, TrackedSet } from "../lib/drain.ts";
import type { ProxyHeaderGate } from "./proxy_protocol_in.ts";
import { proxyPreamble } from "./proxy_protocol_out.ts";

export const TCP_CONNECTIONS_MAX = 10_000;
export const TCP_IDLE_TIMEOUT_MS = 3_600_000;

export interface TcpProxyOptions {
  /** Address the listeners bind. */
  host: string;
  connectTimeoutMs: number;
  retriesMax: number;
  /** A relay with no traffic either way closes after this. Default 1 h. */
  idleTimeoutMs?: number;
  /** Client connections across all TCP listeners. Default 10000. */
  connectionsMax?: number;
  log: (line: string) => void;
  /** Addresses the agent listens on itself; a route port that clashes with one is refused. */
  reserved?: readonly ReservedListener[];
  /** Bind with SO_REUSEPORT (every proxy worker listens on each route port). Default false. */
  reusePort?: boolean;
  /** Reads the PROXY header of connections from trusted sources (proxy_protocol_in.ts). */
  proxyIn?: ProxyHeaderGate | null;
  /** Told of each client connection (proxy_metrics.ts counts them). */
  observer?: TcpObserver;
}

/** What a TCP route's client connections are reported to. */
export interface TcpObserver {
  /** A client connected to the route on `port` of `service`. */
  tcpOpened(service: string, port: number): void;
  /** It closed, after `bytesIn` read from the client and `bytesOut` written to it. */
  tcpClosed(service: string, port: number, bytesIn: number, bytesOut: number): void;
}

/** One of the agent's own listeners, which no TCP route may take. */
export interface ReservedListener {
  /** What listens there, for the refusal: "api", "dns", "proxy", "cluster". */
  what: string;
  host: string;
  port: number;
}

/** A TCP route as reported by the routes API. */
export interface TcpRouteInfo {
  port: number;
  service: string;
  /** `failed`: not listening; `error` says why. */
  state: "listening" | "binding" | "failed";
  error: string | null;
}

/**
 * `rows` plus a failed row per clash (`failed` completes it), sorted by port then service: the
 * route report of the TCP and the UDP proxy.
 */
export function withClashRows<R extends TcpRouteInfo>(
  rows: R[],
  clashes: readonly TcpClash[],
  failed: (row: TcpRouteInfo) => R,
): R[] {
  for (const c of clashes) {
    rows.push(failed({
      port: c.port,
      service: c.service,
      state: "failed",
      error: `port ${c.port} is taken by service ${c.keptBy}`,
    }));
  }
  return rows.sort((a, b) => a.port - b.port || (a.service < b.service ? -1 : 1));
}

interface Listener {
  server: net.Server | null;
  /** The service whose current route each new connection takes. */
  svc: RoutedService;
  state: TcpRouteInfo["state"];
  error: string | null;
}

const WILDCARDS = new Set(["0.0.0.0", "::", "", "[::]"]);

/** Whether binding `host:port` would clash with a listener on `r` (same port, overlapping host). */
function clashes(host: string, port: number, r: ReservedListener): boolean {
  return r.port === port &&
    (r.host === host || WILDCARDS.has(r.host) || WILDCARDS.has(host));
}

/** The TCP side of the proxy; HttpProxy tells it which ports of its route table changed. */
export class TcpProxy {
  readonly #pool: UpstreamPool;
  readonly #opts: TcpProxyOptions;
  readonly #idleTimeoutMs: number;
  readonly #connectionsMax: number;
  readonly #listeners = new Map<number, Listener>();
  readonly #clients = new TrackedSet<net.Socket>();
  /** close() or drain() began: listeners no longer follow the route table. */
  #closed = false;

  constructor(pool: UpstreamPool, opts: TcpProxyOptions) {
    this.#pool = pool;
    this.#opts = opts;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? TCP_IDLE_TIMEOUT_MS;
    this.#connectionsMax = opts.connectionsMax ?? TCP_CONNECTIONS_MAX;
  }

  /** Ports with a listener (bound or being bound). */
  get ports(): number[] {
    return [...this.#listeners].filter(([, l]) => l.state !== "failed").map(([p]) => p)
      .sort((a, b) => a - b);
  }

  /** Every TCP route with its listener's state, by port; services in `clashes` are failed. */
  report(clashes: readonly TcpClash[]): TcpRouteInfo[] {
    const out: TcpRouteInfo[] = [...this.#listeners].map(([port, l]) => ({
      port,
      service: l.svc.service,
      state: l.state,
      error: l.error,
    }));
    return withClashRows(out, clashes, (row) => row);
  }

  /**
   * Opens, retargets and closes listeners to match `table.tcp` on `ports` (default: every port
   * of the table or with a listener). Resolves once bound.
   */
  async update(table: RouteTable, ports?: Iterable<number>): Promise<void> {
    if (this.#closed) return;
    const binding: Promise<void>[] = [];
    for (const port of ports ?? new Set([...this.#listeners.keys(), ...table.tcp.keys()])) {
      const svc = table.tcp.get(port);
      const l = this.#listeners.get(port);
      if (l !== undefined && svc === undefined) {
        this.#listeners.delete(port);
        l.server?.close();
      } else if (l !== undefined && svc !== undefined) {
        l.svc = svc; // one assignment: new connections use the new service's route
      } else if (svc !== undefined) binding.push(this.#listen(port, svc));
    }
    await Promise.all(binding);
  }

  #listen(port: number, svc: RoutedService): Promise<void> {
    const { host } = this.#opts;
    const own = this.#opts.reserved?.find((r) => clashes(host, port, r));
    if (own !== undefined) {
      const error = `port ${port} is the agent's own ${own.what} listener ` +
        `(${own.host}:${own.port})`;
      this.#listeners.set(port, { server: null, svc, state: "failed", error });
      this.#opts.log(
        `proxy: refused TCP route ${host}:${port} of service ${svc.service}: ${error} ` +
          `(change berth.tcp.port)`,
      );
      return Promise.resolve();
    }
    const server = net.createServer();
    const l: Listener = { server, svc, state: "binding", error: null };
    this.#listeners.set(port, l);
    server.on("connection", (c: net.Socket) => this.#onConnection(l, port, c));
    return new Promise<void>((resolve) => {
      server.once("error", (e: Error) => {
        const why = errorText(e, { preferCode: true });
        l.state = "failed";
        l.server = null;
        l.error = `cannot listen on ${host}:${port}: ${why}`;
        this.#opts.log(
          `proxy: cannot listen on TCP ${host}:${port} for service ` +
            `${l.svc.service}: ${why} (free the port or change berth.tcp.port)`,
        );
        resolve();
      });
      server.listen({ port, host, reusePort: this.#opts.reusePort === true }, () => {
        if (l.state === "binding") l.state = "listening";
        server.on("error", (e) => this.#opts.log(`proxy: TCP ${port}: ${errorText(e)}`));
        resolve();
      });
    });
  }

  #onConnection(l: Listener, port: number, client: net.Socket): void {
    if (this.#clients.size >= this.#connectionsMax) {
      client.destroy();
      return;
    }
    this.#clients.add(client);
    client.once("close", () => this.#clients.delete(client));
    const observer = this.#opts.observer;
    if (observer !== undefined) {
      const service = l.svc.service;
      observer.tcpOpened(service, port);
      client.once(
        "close",
        () => observer.tcpClosed(service, port, client.bytesRead, client.bytesWritten),
      );
    }
    client.on("error", () => client.destroy());
    const gate = this.#opts.proxyIn;
    if (gate == null || !gate.trusts(client)) return this.#relay(l, client);
    gate.accept(client, `tcp ${port}`, (rest) => {
      if (rest.length > 0) client.unshift(rest);
      this.#relay(l, client);
    });
  }

  /** Relays a client (paused or not yet read: the relay's pipe reads it) to the route. */
  #relay(l: Listener, client: net.Socket): void {
    const route = l.svc.route;
    relay(client, route, {
      preamble: proxyPreamble(route, client),
      pool: this.#pool,
      connectTimeoutMs: this.#opts.connectTimeoutMs,
      retriesMax: this.#opts.retriesMax,
      idleTimeoutMs: this.#idleTimeoutMs,
      onFail: () => client.destroy(),
      key: clientKey(client.remoteAddress ?? ""),
    });
  }

  /**
   * Graceful shutdown: closes every listener, lets the relays under way go on for up to
   * `timeoutMs`, then closes them. Resolves with how many it cut.
   */
  async drain(timeoutMs: number): Promise<number> {
    const closing = this.#closeListeners();
    await settleWithin(this.#clients.empty(), timeoutMs);
    const cut = this.#clients.size;
    await this.close();
    await closing;
    return cut;
  }

  /** Closes every listener and relay. */
  async close(): Promise<void> {
    const closing = this.#closeListeners();
    for (const c of this.#clients) c.destroy();
    this.#clients.clear();
    await closing;
  }

  /** Stops accepting; resolves once the listeners are closed (their relays may go on). */
  #closeListeners(): Promise<void> {
    this.#closed = true;
    const closing = [...this.#listeners.values()].map((l) => l.server).filter((s) => s !== null)
      .map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    this.#listeners.clear();
    return Promise.all(closing).then(() => {});
  }
}
