/**
 * TCP routes: for every service port `berth.tcp.port=N` (instance.tcpPort), listen on N and
 * relay each connection to an instance of the service, round robin (or the service's
 * `berth.lb`), trying another instance when one refuses. Listeners open and close as route
 * tables change; a closed listener's open connections keep going until the instance drains.
 *
 * A port that cannot be bound (already in use) is reported once and left alone until its route
 * disappears and comes back.
 *
 * @module
 */
import net from "node:net";
import { relay } from "./relay.ts";
import type { RouteTable, ServiceRoute } from "./routes.ts";
import type { UpstreamPool } from "./upstream_pool.ts";
import { errorText } from "../lib/error_text.ts";

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
}

interface Listener {
  server: net.Server;
  route: ServiceRoute;
  failed: boolean;
}

/** The TCP side of the proxy; HttpProxy feeds it every new route table. */
export class TcpProxy {
  readonly #pool: UpstreamPool;
  readonly #opts: TcpProxyOptions;
  readonly #idleTimeoutMs: number;
  readonly #connectionsMax: number;
  readonly #listeners = new Map<number, Listener>();
  readonly #clients = new Set<net.Socket>();
  #closed = false;

  constructor(pool: UpstreamPool, opts: TcpProxyOptions) {
    this.#pool = pool;
    this.#opts = opts;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? TCP_IDLE_TIMEOUT_MS;
    this.#connectionsMax = opts.connectionsMax ?? TCP_CONNECTIONS_MAX;
  }

  /** Ports with a listener (bound or being bound). */
  get ports(): number[] {
    return [...this.#listeners].filter(([, l]) => !l.failed).map(([p]) => p).sort((a, b) => a - b);
  }

  /** Opens, retargets and closes listeners to match `table.tcp`. Resolves once bound. */
  async update(table: RouteTable): Promise<void> {
    if (this.#closed) return;
    for (const [port, l] of this.#listeners) {
      if (!table.tcp.has(port)) {
        this.#listeners.delete(port);
        if (!l.failed) l.server.close();
      }
    }
    const binding: Promise<void>[] = [];
    for (const [port, route] of table.tcp) {
      const l = this.#listeners.get(port);
      if (l !== undefined) {
        l.route = route; // one assignment: new connections use the new route
        continue;
      }
      binding.push(this.#listen(port, route));
    }
    await Promise.all(binding);
  }

  #listen(port: number, route: ServiceRoute): Promise<void> {
    const server = net.createServer();
    const l: Listener = { server, route, failed: false };
    this.#listeners.set(port, l);
    server.on("connection", (c: net.Socket) => this.#onConnection(l, c));
    return new Promise<void>((resolve) => {
      server.once("error", (e: Error) => {
        l.failed = true;
        this.#opts.log(
          `proxy: cannot listen on TCP ${this.#opts.host}:${port} for service ` +
            `${l.route.service}: ${
              errorText(e, { preferCode: true })
            } (free the port or change berth.tcp.port)`,
        );
        resolve();
      });
      server.listen(port, this.#opts.host, () => {
        server.on("error", (e) => this.#opts.log(`proxy: TCP ${port}: ${errorText(e)}`));
        resolve();
      });
    });
  }

  #onConnection(l: Listener, client: net.Socket): void {
    if (this.#clients.size >= this.#connectionsMax) {
      client.destroy();
      return;
    }
    this.#clients.add(client);
    client.once("close", () => this.#clients.delete(client));
    client.on("error", () => client.destroy());
    relay(client, l.route, {
      pool: this.#pool,
      connectTimeoutMs: this.#opts.connectTimeoutMs,
      retriesMax: this.#opts.retriesMax,
      idleTimeoutMs: this.#idleTimeoutMs,
      onFail: () => client.destroy(),
    });
  }

  /** Closes every listener and relay. */
  async close(): Promise<void> {
    this.#closed = true;
    const closing = [...this.#listeners.values()].filter((l) => !l.failed).map((l) =>
      new Promise<void>((resolve) => l.server.close(() => resolve()))
    );
    this.#listeners.clear();
    for (const c of this.#clients) c.destroy();
    this.#clients.clear();
    await Promise.all(closing);
  }
}
