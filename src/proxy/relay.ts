/**
 * Byte relays between a client socket and an instance: TCP routes and upgraded HTTP
 * connections (WebSocket). Connects to an instance of the route (another one after a connect
 * failure, up to `retriesMax`), writes the preamble, then pipes both ways until either side
 * closes or the relay idles out. An upgrade relay (`upgrade`) pipes only after the instance
 * answers `101 Switching Protocols`; any other answer goes to the client as a plain response
 * and the client connection closes (no raw tunnel to the instance without a switch). A tunnel
 * takes no `berth.http.max-conns` slot and never queues for one (README "Per-service limits").
 *
 * @module
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import type { Duplex } from "node:stream";
import type { Target } from "./balancer.ts";
import { responseHeaders } from "./headers.ts";
import { RESPONSE_HEAD_BYTES_MAX, ResponseParser } from "./response_parser.ts";
import type { ServiceRoute } from "./routes.ts";
import type { UpstreamPool } from "./upstream_pool.ts";
import { errorText } from "../lib/error_text.ts";

export interface RelayOptions {
  pool: UpstreamPool;
  connectTimeoutMs: number;
  retriesMax: number;
  /** Closes both sides after this long without traffic either way. */
  idleTimeoutMs: number;
  /** Written to the instance before the client's bytes (the upgrade request head). */
  preamble?: (string | Uint8Array)[];
  /**
   * An upgrade (the preamble is its request head): relay only after a 101 answer; `held` (the
   * client's bytes after its request head) goes to the instance once it switched.
   */
  upgrade?: {
    held: Uint8Array;
    /** An instance is tried (its id). */
    onTry?(instance: string): void;
    /** The status the instance answered (101: the tunnel runs). */
    onStatus?(status: number): void;
    /** The request's X-Request-Id: the answer to the client says it (in place of the instance's). */
    requestId?: string;
  };
  /** No instance could be reached; `why` names the last failure. The client is still open. */
  onFail: (why: string) => void;
  /** The hash key (`berth.lb=hash`, `sticky_cookie`): the client's IP (lb_key.ts). */
  key?: string;
  /** The first try's target (an upgrade's sticky cookie names it), instead of a pick. */
  first?: Target | null;
}

/** Relays `client` to an instance of `route`. */
/** How long a client connection the relay ended may take to close its side too. */
export const LINGER_MS = 5_000;

/**
 * Ends a client connection after what was written: its further bytes are read and dropped
 * (so its close is seen), and it is destroyed after `LINGER_MS` at the latest.
 */
export function endClient(client: Duplex, last?: string): void {
  if (last === undefined) client.end();
  else client.end(last);
  client.resume();
  if (client instanceof net.Socket) client.setTimeout(LINGER_MS, () => client.destroy());
}

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
  const target = tried.length === 0 && opts.first != null
    ? opts.first
    : opts.pool.pick(route, tried, opts.key);
  if (target === null) {
    opts.onFail(lastError ?? "no instance to try");
    return;
  }
  tried.push(target);
  opts.upgrade?.onTry?.(target.id);
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
    if (opts.upgrade === undefined) return pipeBoth(client, upstream);
    answer = awaitSwitch(client, upstream, opts.upgrade, (why) => {
      answer = null;
      upstream.destroy();
      opts.onFail(`instance ${target.id} ${why}`);
    });
  });
  /** While an upgrade's answer is awaited, a refusal is forwarded, or after the switch. */
  let answer: { refused: boolean; switched: boolean } | null = null;
  upstream.once("close", () => {
    clearTimeout(timer);
    up.tunnels.delete(upstream);
    up.active--;
    client.off("close", onClientGone);
    if (!connected || answer?.refused) return; // the refusal ends the client itself
    if (answer !== null && !answer.switched) {
      opts.onFail(`instance ${target.id} closed before answering the upgrade`);
    } else client.destroy();
  });
  upstream.on("error", (e: Error & { code?: string }) => {
    if (connected) return;
    const reason = errorText(e, { preferCode: true });
    const why = `instance ${target.id}: ${reason}`;
    pool.connectFailed(target);
    pool.failed(up, reason);
    if (tried.length <= opts.retriesMax) attempt(client, route, opts, tried, why);
    else opts.onFail(why);
  });
}

function pipeBoth(client: Duplex, upstream: net.Socket): void {
  upstream.pipe(client);
  client.pipe(upstream);
}

/**
 * Reads the instance's answer to an upgrade request: 101 starts the relay both ways (the held
 * client bytes first); any other final answer goes to the client as a plain response (hop-by-hop
 * headers dropped, `connection: close`) and then the client connection ends.
 */
function awaitSwitch(
  client: Duplex,
  upstream: net.Socket,
  upgrade: NonNullable<RelayOptions["upgrade"]>,
  fail: (why: string) => void,
): { refused: boolean; switched: boolean } {
  const held = upgrade.held;
  const state = { refused: false, switched: false };
  let buf: Buffer = Buffer.alloc(0);
  const parser = new ResponseParser({
    onHead: (h) => {
      let text = `HTTP/1.1 ${h.status} ${h.reason}\r\n`;
      const headers = responseHeaders(h.headers);
      for (let i = 0; i + 1 < headers.length; i += 2) {
        if (upgrade.requestId !== undefined && headers[i]!.toLowerCase() === "x-request-id") {
          continue;
        }
        text += `${headers[i]}: ${headers[i + 1]}\r\n`;
      }
      if (upgrade.requestId !== undefined) text += `x-request-id: ${upgrade.requestId}\r\n`;
      client.write(text + "connection: close\r\n\r\n", "latin1");
    },
    onBody: (chunk) => client.write(chunk),
    onEnd: () => {
      endClient(client);
      upstream.destroy();
    },
  });
  parser.reset(false);
  const onData = (d: Buffer) => {
    if (state.refused) {
      try {
        parser.feed(d);
      } catch {
        client.destroy();
        upstream.destroy();
      }
      return;
    }
    buf = Buffer.concat([buf, d]);
    const lineEnd = buf.indexOf("\r\n");
    const headEnd = buf.indexOf("\r\n\r\n");
    if (lineEnd < 0 || headEnd < 0) {
      if (buf.length > RESPONSE_HEAD_BYTES_MAX) fail("sent an oversized response head");
      return;
    }
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(buf.subarray(0, lineEnd).toString("latin1"));
    if (status === null) return fail("sent an invalid response to the upgrade request");
    upgrade.onStatus?.(Number(status[1]));
    if (status[1] === "101") {
      state.switched = true;
      upstream.off("data", onData);
      upstream.pause();
      client.write(withRequestId(buf, headEnd, upgrade.requestId));
      if (held.length > 0) upstream.write(held);
      pipeBoth(client, upstream);
      upstream.resume();
      return;
    }
    // Refused (or an interim answer first): a plain response, then the client closes.
    state.refused = true;
    upstream.once("close", () => {
      try {
        parser.close();
      } catch {
        client.destroy();
      }
    });
    const all = buf;
    buf = Buffer.alloc(0);
    onData(all);
  };
  upstream.on("data", onData);
  return state;
}

/**
 * `buf` (a 101 head ending at `headEnd`, then tunnel bytes) with `x-request-id: id` in place of
 * any the instance sent; `buf` itself without an id.
 */
function withRequestId(buf: Buffer, headEnd: number, id: string | undefined): Buffer {
  if (id === undefined) return buf;
  const lines = buf.subarray(0, headEnd).toString("latin1").split("\r\n")
    .filter((l, i) => i === 0 || !/^x-request-id[ \t]*:/i.test(l));
  lines.push(`x-request-id: ${id}`);
  return Buffer.concat([Buffer.from(lines.join("\r\n"), "latin1"), buf.subarray(headEnd)]);
}
