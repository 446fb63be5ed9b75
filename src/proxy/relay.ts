/**
 * Byte relays between a client socket and an instance: TCP routes and upgraded HTTP
 * connections (WebSocket). Connects to an instance of the route (another one after a connect
 * failure, up to `retriesMax`), writes the preamble, then pipes both ways until either side
 * closes or the relay idles out.
 *
 * @module
 */
import net from "node:net";
import type { Duplex } from "node:stream";
import type { Target } from "./balancer.ts";
import type { ServiceRoute } from "./routes.ts";
import type { UpstreamPool } from "./upstream_pool.ts";

export interface RelayOptions {
  pool: UpstreamPool;
  connectTimeoutMs: number;
  retriesMax: number;
  /** Closes both sides after this long without traffic either way. */
  idleTimeoutMs: number;
  /** Written to the instance before the client's bytes (the upgrade request head). */
  preamble?: (string | Uint8Array)[];
  /** No instance could be reached; `why` names the last failure. The client is still open. */
  onFail: (why: string) => void;
}

/** Relays `client` to an instance of `route`. */
export function relay(client: Duplex, route: ServiceRoute, opts: RelayOptions): void {
  attempt(client, route, opts, [], null);
}

function attempt(
  client: Duplex,
  route: ServiceRoute,
  opts: RelayOptions,
  tried: Target[],
  lastError: string | null,
): void {
  if (client.destroyed) return;
  const target = opts.pool.pick(route, tried);
  if (target === null) {
    opts.onFail(lastError ?? "no instance to try");
    return;
  }
  tried.push(target);
  const { pool } = opts;
  const up = pool.get(target);
  const upstream = net.connect({ host: target.address, port: target.port });
  up.tunnels.add(upstream);
  up.active++;
  let connected = false;
  const timer = setTimeout(
    () => upstream.destroy(new Error("connect timeout")),
    opts.connectTimeoutMs,
  );
  const onClientGone = () => upstream.destroy();
  client.once("close", onClientGone);
  upstream.once("connect", () => {
    connected = true;
    clearTimeout(timer);
    pool.succeeded(up);
    upstream.setNoDelay(true);
    for (const chunk of opts.preamble ?? []) if (chunk.length > 0) upstream.write(chunk);
    upstream.setTimeout(opts.idleTimeoutMs, () => upstream.destroy());
    if (client instanceof net.Socket) {
      client.setNoDelay(true);
      client.setTimeout(opts.idleTimeoutMs, () => client.destroy());
    }
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.once("close", () => {
    clearTimeout(timer);
    up.tunnels.delete(upstream);
    up.active--;
    client.off("close", onClientGone);
    if (connected) client.destroy();
  });
  upstream.on("error", (e: Error & { code?: string }) => {
    if (connected) return;
    const why = `instance ${target.id}: ${e.code ?? e.message}`;
    pool.failed(up, e.code ?? e.message);
    if (tried.length <= opts.retriesMax) attempt(client, route, opts, tried, why);
    else opts.onFail(why);
  });
}
