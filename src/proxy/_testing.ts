/**
 * Helpers for the proxy's socket tests: tiny backends, a client and a store with instances;
 * for HTTPS, served certificates made in-test (pki/testing.ts, each with its own CA), an HTTPS
 * client and `openssl s_client` runs.
 *
 * @module
 */
import http from "node:http";
import https from "node:https";
import { X509Certificate } from "node:crypto";
import { testEdgeCert } from "../pki/testing.ts";
import type { ServedCert } from "./sni_index.ts";
import net from "node:net";
import type { Buffer } from "node:buffer";
import { type InstanceSpec, Store } from "../store/mod.ts";
import { instanceSpec } from "../../test/fixtures.ts";
import { HttpProxy, type ProxyOptions } from "./http_proxy.ts";

export interface Backend {
  name: string;
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Request headers seen, in order. */
  seen: http.IncomingHttpHeaders[];
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A node:http server on 127.0.0.1 answering `NAME URL` (or via `handler`). */
export async function startBackend(
  name: string,
  handler?: Handler,
  onUpgrade?: (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void,
): Promise<Backend> {
  const sockets = new Set<net.Socket>();
  const b: Backend = {
    name,
    port: 0,
    connections: 0,
    seen: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
  const server = http.createServer((req, res) => {
    b.seen.push(req.headers);
    if (handler) return handler(req, res);
    req.resume();
    req.on("end", () => res.end(`${name} ${req.url}`));
  });
  if (onUpgrade) {
    server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      sockets.add(socket);
      socket.on("error", () => socket.destroy());
      onUpgrade(req, socket, head);
    });
  }
  server.on("connection", (s: net.Socket) => {
    b.connections++;
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  b.port = (server.address() as net.AddressInfo).port;
  return b;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection. */
export function request(
  port: number,
  path: string,
  opts: { host?: string; method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      path,
      method: opts.method ?? "GET",
      agent: false,
      headers: { host: opts.host ?? "web.test", ...opts.headers },
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => body += d);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

/**
 * web-a, with `meta`, in a new TestStore, served by backend "a" that holds every response in
 * `held` until the test ends it (the max-conns and queue tests).
 */
export async function heldWebA(
  meta: Record<string, string>,
): Promise<{ ts: TestStore; backend: Backend; held: http.ServerResponse[] }> {
  const held: http.ServerResponse[] = [];
  const backend = await startBackend("a", (req, res) => {
    req.resume();
    held.push(res);
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: backend.port, meta }));
  return { ts, backend, held };
}

/** The shared instance fixture as the proxy tests want it: on loopback, routed as web.test. */
export function spec(over: Partial<InstanceSpec> & { id: string; port: number }): InstanceSpec {
  return instanceSpec({
    address: "127.0.0.1",
    tags: [],
    meta: {},
    containerId: null,
    docker: null,
    httpHosts: ["web.test"],
    ...over,
  });
}

/** An in-memory store that applies commands at consecutive indexes. */
export class TestStore {
  readonly store = Store.open(":memory:");
  #index = 0;

  register(s: InstanceSpec): void {
    this.#apply({ type: "register", instance: s });
  }

  deregister(id: string): void {
    this.#apply({ type: "deregister", id });
  }

  check(id: string, status: "passing" | "critical"): void {
    this.#apply({ type: "check", id, status, output: "" });
  }

  /** Applies any store command (cert.put, …) at the next index. */
  apply(cmd: unknown): void {
    this.#apply(cmd);
  }

  #apply(cmd: unknown): void {
    const r = this.store.apply(++this.#index, cmd);
    if (!r.ok) throw new Error(`apply failed: ${r.error}`);
  }
}

/**
 * A raw TCP backend that answers each request head with `reply(head, n)` (`n`: the request's
 * place on its connection, from 0), then maybe closes.
 */
export async function rawBackend(
  reply: (head: string, n: number) => { wire: string; close?: boolean },
): Promise<{ port: number; heads: string[]; connections: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const b = { port: 0, heads: [] as string[], connections: 0, close: async () => {} };
  const server = net.createServer((s) => {
    b.connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = "";
    let n = 0;
    s.on("data", (d) => {
      buf += d.toString("latin1");
      let end: number;
      while ((end = buf.indexOf("\r\n\r\n")) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        b.heads.push(head);
        const r = reply(head, n++);
        s.write(r.wire);
        if (r.close) s.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  b.port = (server.address() as net.AddressInfo).port;
  b.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return b;
}

/** Longest a raw client waits for its answer before giving up (a test failure, not a hang). */
export const RAW_CLIENT_WAIT_MS = 5_000;

/**
 * Writes `wire` on a fresh connection (then half-closes it when `end`), and resolves with all
 * bytes received once `until(received)` holds or the proxy closes the connection.
 */
export function rawClient(
  port: number,
  wire: string | Buffer,
  opts: { until?: (received: string) => boolean; end?: boolean } = {},
): Promise<{ received: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let received = "";
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ received, closed });
    };
    const timer = setTimeout(() => finish(false), RAW_CLIENT_WAIT_MS);
    s.on("error", () => {});
    s.on("data", (d: Buffer) => {
      received += d.toString("latin1");
      if (opts.until?.(received)) finish(false);
    });
    s.on("close", () => finish(true));
    s.on("connect", () => {
      s.write(wire);
      if (opts.end) s.end();
    });
  });
}

/** Runs `fn` against an HttpProxy over `ts` on a free loopback port; closes both after. */
export async function withProxy(
  ts: TestStore,
  over: Partial<ProxyOptions>,
  fn: (port: number, proxy: HttpProxy) => void | Promise<void>,
): Promise<void> {
  const proxy = new HttpProxy({
    source: ts.store,
    listen: { host: "127.0.0.1", port: 0 },
    edgeDomain: null,
    log: () => {},
    ...over,
  });
  try {
    await proxy.start();
    // No plain listener (`listen: null`): port 0.
    await fn(proxy.report().listen === null ? 0 : proxy.address.port, proxy);
  } finally {
    await proxy.close();
    ts.store.close();
  }
}

/** A served certificate for `names` (the first is its name) and the CA that signed it. */
export function servedCert(
  names: string[],
  over: Partial<ServedCert> = {},
): ServedCert & { caPem: string } {
  const t = testEdgeCert(names);
  const leaf = new X509Certificate(t.leafPem);
  return {
    name: names[0]!,
    names,
    certPem: t.certPem,
    keyPem: t.keyPem,
    isDefault: false,
    fingerprint: leaf.fingerprint256.replaceAll(":", "").toLowerCase(),
    notAfter: leaf.validToDate.getTime(),
    caPem: t.caPem,
    ...over,
  };
}

/** Longest an openssl run may take before it is killed (a failure, not a hang). */
const S_CLIENT_WAIT_MS = 10_000;

/**
 * Runs `openssl s_client -connect 127.0.0.1:PORT ARGS` with `stdin` as its input (after a
 * short wait, so a TLS 1.3 session ticket arrives before it quits); stdout and stderr together.
 */
export async function sClient(port: number, args: string[], stdin = ""): Promise<string> {
  const child = new Deno.Command("openssl", {
    args: ["s_client", "-connect", `127.0.0.1:${port}`, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), S_CLIENT_WAIT_MS);
  const w = child.stdin.getWriter();
  await new Promise((r) => setTimeout(r, 300));
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder();
  return text.decode(out.stdout) + text.decode(out.stderr);
}

/** The subject CN of the certificate s_client was served, or null. */
export function servedSubject(out: string): string | null {
  return /^subject=.*?CN\s*=\s*([^,\n]+)/m.exec(out)?.[1]?.trim() ?? null;
}

/** One HTTPS request to 127.0.0.1:`port` for `host` (SNI and Host), trusting `caPem`. */
export function httpsRequest(
  port: number,
  path: string,
  opts: { host: string; caPem: string; method?: string; headers?: Record<string, string> },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1",
      port,
      path,
      method: opts.method ?? "GET",
      servername: opts.host,
      ca: opts.caPem,
      agent: false,
      headers: { host: opts.host, ...opts.headers },
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => body += d);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** Connects to `port`, sends `msg`, waits for its echo, closes. */
export function echoOnce(port: number, msg: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, "127.0.0.1", () => c.write(msg));
    c.on("data", () => c.end());
    c.on("close", () => resolve());
    c.on("error", reject);
  });
}
