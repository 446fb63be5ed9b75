import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { CidrList, parseCidr } from "../lib/cidr.ts";
import { unusedPort } from "../../test/ports.ts";
import { parseProxyHeader, type ProxyHeader } from "./proxy_protocol.ts";
import { rawClient, spec, TestStore, withProxy } from "./_testing.ts";
import { type UpstreamConn, UpstreamPool } from "./upstream_pool.ts";
import { buildRouteTable } from "./routes.ts";

const LOOPBACK = new CidrList([parseCidr("127.0.0.0/8")!]);
const v1 = (src: string, sport = 40000) => `PROXY TCP4 ${src} 127.0.0.1 ${sport} 80\r\n`;

interface Instance {
  port: number;
  /** The PROXY header each connection began with, in connection order ("none": no header). */
  headers: (ProxyHeader | "none")[];
  close(): Promise<void>;
}

/**
 * An instance that reads a PROXY header at the start of every connection (as one configured
 * for it does), then answers each HTTP request head (or, with `tcp`, each chunk) with the
 * source address its connection's header named.
 */
async function proxiedInstance(opts: { tcp?: boolean } = {}): Promise<Instance> {
  const sockets = new Set<net.Socket>();
  const inst: Instance = { port: 0, headers: [], close: async () => {} };
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    let header: ProxyHeader | null = null;
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (header === null) {
        let r;
        try {
          r = parseProxyHeader(buf);
        } catch {
          inst.headers.push("none");
          s.destroy();
          return;
        }
        if (r === "more") return;
        header = r.header;
        inst.headers.push(header);
        buf = buf.subarray(r.length);
      }
      const who = header.source?.address ?? "local";
      if (opts.tcp) {
        if (buf.length > 0) s.write(`${who}:${buf}`);
        buf = Buffer.alloc(0);
        return;
      }
      let end: number;
      while ((end = buf.indexOf("\r\n\r\n")) >= 0) {
        buf = buf.subarray(end + 4);
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${who.length}\r\n\r\n${who}`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  inst.port = (server.address() as net.AddressInfo).port;
  inst.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return inst;
}

const GET = "GET / HTTP/1.1\r\nhost: web.test\r\n\r\n";
const responses = (n: number) => (s: string) => s.split("HTTP/1.1 200").length === n + 1;

Deno.test("TCP route with berth.proxy-protocol=v2: the instance reads the client's address first", async () => {
  const inst = await proxiedInstance({ tcp: true });
  const tcpPort = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({
    id: "db",
    service: "db",
    port: inst.port,
    tcpPort,
    httpHosts: [],
    meta: { "berth.proxy-protocol": "v2" },
  }));
  try {
    await withProxy(ts, { proxyProtocolFrom: LOOPBACK }, async (port) => {
      // Through a trusted balancer: the address it declared.
      const r = await rawClient(tcpPort, v1("203.0.113.5", 4444) + "ping", {
        until: (s) => s.length >= 16,
      });
      assert.equal(r.received, "203.0.113.5:ping");
      const h = inst.headers[0];
      assert.ok(h !== undefined && h !== "none");
      assert.equal(h.version, 2);
      assert.deepEqual(h.source, { address: "203.0.113.5", port: 4444 });
      assert.deepEqual(h.dest, { address: "127.0.0.1", port: 80 });
      assert.ok(port > 0);
    });
  } finally {
    await inst.close();
  }
});

Deno.test("HTTP route with berth.proxy-protocol=v1: connections are private to the client connection", async () => {
  const inst = await proxiedInstance();
  const ts = new TestStore();
  ts.register(
    spec({ id: "w", service: "web", port: inst.port, meta: { "berth.proxy-protocol": "v1" } }),
  );
  try {
    await withProxy(ts, { proxyProtocolFrom: LOOPBACK }, async (port) => {
      // Client A: two requests on one connection, then one on another connection.
      const a = await rawClient(port, v1("198.51.100.1") + GET + GET, { until: responses(2) });
      assert.ok(a.received.endsWith("198.51.100.1"), a.received);
      assert.equal(a.received.split("\r\n\r\n198.51.100.1").length, 3);
      // Client B while A's connection to the instance idles in the pool: never lent to B.
      const b = await rawClient(port, v1("198.51.100.2") + GET, { until: responses(1) });
      assert.ok(b.received.endsWith("\r\n\r\n198.51.100.2"), b.received);
      // A again, from another port: a connection (and header) of its own, never the first
      // one's, whose header named another client port.
      const a2 = await rawClient(port, v1("198.51.100.1", 40001) + GET, { until: responses(1) });
      assert.ok(a2.received.endsWith("\r\n\r\n198.51.100.1"), a2.received);
      // The same client connection identity again (address, port, destination): reused.
      const a3 = await rawClient(port, v1("198.51.100.1", 40001) + GET, { until: responses(1) });
      assert.ok(a3.received.endsWith("\r\n\r\n198.51.100.1"), a3.received);
      const sources = inst.headers.map((h) =>
        h === "none" ? h : `v${h.version} ${h.source?.address}:${h.source?.port}`
      );
      assert.deepEqual(sources, [
        "v1 198.51.100.1:40000",
        "v1 198.51.100.2:40000",
        "v1 198.51.100.1:40001",
      ]);
    });
  } finally {
    await inst.close();
  }
});

Deno.test("HTTP route without berth.proxy-protocol sends no header and shares its connections", async () => {
  const heads: string[] = [];
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    s.on("data", (d) => {
      heads.push(d.toString("latin1"));
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const ts = new TestStore();
  ts.register(spec({ id: "w", service: "web", port: (server.address() as net.AddressInfo).port }));
  try {
    await withProxy(ts, { proxyProtocolFrom: LOOPBACK }, async (port) => {
      await rawClient(port, v1("198.51.100.1") + GET, { until: responses(1) });
      await rawClient(port, v1("198.51.100.2") + GET, { until: responses(1) });
    });
    assert.equal(connections, 1);
    assert.ok(heads.every((h) => h.startsWith("GET / HTTP/1.1\r\n")), heads.join("|"));
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

Deno.test("HTTP route with berth.proxy-protocol=v2 names a direct client's own address", async () => {
  const inst = await proxiedInstance();
  const ts = new TestStore();
  ts.register(
    spec({ id: "w", service: "web", port: inst.port, meta: { "berth.proxy-protocol": "v2" } }),
  );
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await rawClient(port, GET, { until: responses(1) });
      assert.match(r.received, /\r\n\r\n127\.0\.0\.1$/);
      const h = inst.headers[0];
      assert.ok(h !== undefined && h !== "none");
      assert.equal(h.dest?.port, port);
    });
  } finally {
    await inst.close();
  }
});

/** The connection a lease was lent (a call: no narrowing across awaits). */
const lent = (l: { conn: UpstreamConn | null }) => l.conn;

/** A lease that records what it was lent and answers nothing. */
function recordingLease() {
  const l = {
    conn: null as UpstreamConn | null,
    attach(c: UpstreamConn) {
      l.conn = c;
    },
    onConnect() {},
    onData() {},
    onDrain() {},
    onClose() {},
  };
  return l;
}

Deno.test("UpstreamPool.acquire() never lends one client's private connection to another's waiting request", async () => {
  const inst = await proxiedInstance();
  const pool = new UpstreamPool({ socketsMax: 1 });
  const header = (ip: string) => Buffer.from(v1(ip));
  try {
    const up = pool.get({ id: "w", address: "127.0.0.1", port: inst.port, weight: 1, key: "w" });
    const a = recordingLease();
    pool.acquire(up, a, { private: { key: "A", header: header("192.0.2.1") } });
    const b = recordingLease();
    pool.acquire(up, b, { private: { key: "B", header: header("192.0.2.2") } });
    assert.equal(a.conn?.privateKey, "A");
    assert.equal(b.conn, null, "B waits: socketsMax is 1");
    while (inst.headers.length < 1) await new Promise((r) => setTimeout(r, 5));
    pool.release(up, a.conn!, true);
    while (lent(b) === null) await new Promise((r) => setTimeout(r, 5));
    assert.equal(lent(b)!.privateKey, "B");
    assert.notEqual(lent(b), a.conn);
    while (inst.headers.length < 2) await new Promise((r) => setTimeout(r, 5));
    // A shared request after B's private one: B's goes, a shared one opens.
    const c = recordingLease();
    pool.acquire(up, c);
    pool.release(up, lent(b)!, true);
    while (lent(c) === null) await new Promise((r) => setTimeout(r, 5));
    assert.equal(lent(c)!.privateKey, null);
    const sources = inst.headers.map((h) => h === "none" ? h : h.source?.address);
    assert.deepEqual(sources.slice(0, 2), ["192.0.2.1", "192.0.2.2"]);
  } finally {
    pool.close();
    await inst.close();
  }
});

Deno.test("UpstreamPool.acquire() closes other clients' idle private connections for a slot; the queue bound holds", async () => {
  const inst = await proxiedInstance();
  const pool = new UpstreamPool({ socketsMax: 2 });
  const priv = (ip: string) => ({ key: ip, header: Buffer.from(v1(ip)) });
  const cap = { conns: 2, queue: 0 };
  const full: string[] = [];
  const capped = (name: string) =>
    Object.assign(recordingLease(), { onQueueFull: () => full.push(name) });
  try {
    const up = pool.get({ id: "w", address: "127.0.0.1", port: inst.port, weight: 1, key: "w" });
    const a = recordingLease();
    const b = recordingLease();
    pool.acquire(up, a, { private: priv("192.0.2.1") });
    pool.acquire(up, b, { private: priv("192.0.2.2") });
    while (inst.headers.length < 2) await new Promise((r) => setTimeout(r, 5));
    pool.release(up, lent(a)!, true);
    pool.release(up, lent(b)!, true);
    assert.equal(up.idle.length, 2, "both slots hold idle private connections");
    // Client C: nothing is in flight, so it gets a connection at once (A's, the oldest, goes).
    const c = capped("C");
    pool.acquire(up, c, { private: priv("192.0.2.3"), cap });
    assert.equal(lent(c)?.privateKey, "192.0.2.3");
    assert.equal(a.conn!.socket.destroyed, true);
    // Client D: one slot busy (C), one idle (B's): B's goes.
    const d = capped("D");
    pool.acquire(up, d, { private: priv("192.0.2.4"), cap });
    assert.equal(lent(d)?.privateKey, "192.0.2.4");
    assert.equal(b.conn!.socket.destroyed, true);
    // Client E: both slots busy and a queue of 0: turned away at once, never queued.
    const e = capped("E");
    pool.acquire(up, e, { private: priv("192.0.2.5"), cap });
    assert.deepEqual(full, ["E"]);
    assert.equal(up.waiting.length, 0);
    assert.equal(up.conns.size, 2);
  } finally {
    pool.close();
    await inst.close();
  }
});

Deno.test("UpstreamPool.release() with the idle list full closes the oldest idle private connection, not the one released", async () => {
  const inst = await proxiedInstance();
  const pool = new UpstreamPool({ freeSocketsMax: 2 });
  const priv = (ip: string) => ({ key: ip, header: Buffer.from(v1(ip)) });
  try {
    const up = pool.get({ id: "w", address: "127.0.0.1", port: inst.port, weight: 1, key: "w" });
    // Clients A and B made a request each and went: their private connections idle.
    const [a, b, c] = ["192.0.2.1", "192.0.2.2", "192.0.2.3"].map((ip) => {
      const l = recordingLease();
      pool.acquire(up, l, { private: priv(ip) });
      return l;
    });
    while (inst.headers.length < 3) await new Promise((r) => setTimeout(r, 5));
    pool.release(up, lent(a!)!, true);
    pool.release(up, lent(b!)!, true);
    assert.equal(up.idle.length, 2);
    // Client C, still connected, releases its connection: it stays for C's next request.
    pool.release(up, lent(c!)!, true);
    assert.equal(lent(c!)!.socket.destroyed, false);
    assert.equal(lent(a!)!.socket.destroyed, true, "A's, the oldest idle private one, went");
    assert.deepEqual(up.idle.map((x) => x.privateKey), ["192.0.2.2", "192.0.2.3"]);
    const again = recordingLease();
    pool.acquire(up, again, { private: priv("192.0.2.3") });
    assert.equal(lent(again), lent(c!));
  } finally {
    pool.close();
    await inst.close();
  }
});

Deno.test("UpstreamPool.acquire() under a smaller cap closes as many idle private connections as it takes to get under it", async () => {
  const inst = await proxiedInstance();
  const pool = new UpstreamPool({ socketsMax: 3 });
  const priv = (ip: string) => ({ key: ip, header: Buffer.from(v1(ip)) });
  try {
    const up = pool.get({ id: "w", address: "127.0.0.1", port: inst.port, weight: 1, key: "w" });
    const leases = ["192.0.2.1", "192.0.2.2", "192.0.2.3"].map((ip) => {
      const l = recordingLease();
      pool.acquire(up, l, { private: priv(ip) });
      return l;
    });
    while (inst.headers.length < 3) await new Promise((r) => setTimeout(r, 5));
    for (const l of leases) pool.release(up, lent(l)!, true);
    const d = recordingLease();
    pool.acquire(up, d, { private: priv("192.0.2.4"), cap: { conns: 1, queue: 0 } });
    assert.equal(lent(d)?.privateKey, "192.0.2.4");
    assert.equal(up.conns.size, 1, "the cap holds: every idle connection went");
  } finally {
    pool.close();
    await inst.close();
  }
});

Deno.test("HTTP route with berth.proxy-protocol and max-conns=1, queue 0: another client's idle connection holds no slot", async () => {
  const inst = await proxiedInstance();
  const ts = new TestStore();
  ts.register(spec({
    id: "w",
    service: "web",
    port: inst.port,
    meta: {
      "berth.proxy-protocol": "v1",
      "berth.http.max-conns": "1",
      "berth.http.max-conns.queue": "0",
    },
  }));
  try {
    // Idle connections and queued requests would wait far longer than the client does.
    const over = { proxyProtocolFrom: LOOPBACK, idleTimeoutMs: 60_000, queueTimeoutMs: 60_000 };
    await withProxy(ts, over, async (port) => {
      const a = await rawClient(port, v1("198.51.100.1") + GET, { until: responses(1) });
      assert.ok(a.received.endsWith("\r\n\r\n198.51.100.1"), a.received);
      // A's connection idles in the pool; B is served at once (neither queued nor 503).
      const b = await rawClient(port, v1("198.51.100.2") + GET, { until: responses(1) });
      assert.ok(b.received.endsWith("\r\n\r\n198.51.100.2"), b.received);
      assert.equal(inst.headers.length, 2);
    });
  } finally {
    await inst.close();
  }
});

Deno.test("Upgrade request to a route with berth.proxy-protocol=v2: the tunnel starts with the header", async () => {
  const inst = await proxiedInstance();
  const ts = new TestStore();
  ts.register(
    spec({ id: "w", service: "web", port: inst.port, meta: { "berth.proxy-protocol": "v2" } }),
  );
  try {
    await withProxy(ts, { proxyProtocolFrom: LOOPBACK }, async (port) => {
      const upgrade =
        "GET /ws HTTP/1.1\r\nhost: web.test\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n";
      // The test instance answers 200, not 101: the proxy passes that on and closes.
      const r = await rawClient(port, v1("198.51.100.77") + upgrade);
      assert.match(r.received, /^HTTP\/1\.1 200 [^]*198\.51\.100\.77$/);
      const h = inst.headers[0];
      assert.ok(h !== undefined && h !== "none");
      assert.equal(h.version, 2);
      assert.equal(h.source?.address, "198.51.100.77");
    });
  } finally {
    await inst.close();
  }
});

Deno.test("buildRouteTable notes berth.proxy-protocol where no header is sent: UDP routes (h2c/grpc get one)", () => {
  const inst = (s: ReturnType<typeof spec>) => ({ ...s, createIndex: 1, modifyIndex: 1 });
  const pp = { "berth.proxy-protocol": "v2" };
  const table = buildRouteTable([
    inst(spec({ id: "web-1", service: "web", port: 81, meta: pp })),
    inst(spec({
      id: "rpc-1",
      service: "rpc",
      port: 82,
      meta: { ...pp, "berth.http.proto": "grpc" },
    })),
    inst(spec({
      id: "dns-1:udp",
      service: "dns",
      port: 83,
      httpHosts: [],
      tags: ["udp"],
      meta: { ...pp, "berth.udp.port": "5353" },
    })),
  ], []);
  assert.deepEqual(table.conflicts.filter((l) => l.includes("berth.proxy-protocol")).sort(), [
    "service dns: berth.proxy-protocol sends no header on UDP route datagrams",
  ]);
});
