/**
 * `berth.proxy-protocol` on h2c/gRPC services (README "PROXY protocol"): a real h2c instance
 * that reads the PROXY header each connection starts with and answers every stream with the
 * client address that header named.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import net from "node:net";
import { CidrList, parseCidr } from "../lib/cidr.ts";
import { parseProxyHeader, type ProxyHeader } from "./proxy_protocol.ts";
import { rawClient, spec, TestStore, withProxy } from "./_testing.ts";
import { unusedPort } from "../../test/ports.ts";
import { h2Connect, h2Request, silentServer, until, withH2Proxy } from "./_h2_testing.ts";

const LOOPBACK = new CidrList([parseCidr("127.0.0.0/8")!]);
const v1 = (src: string, sport = 40000) => `PROXY TCP4 ${src} 127.0.0.1 ${sport} 80\r\n`;
const GET = "GET / HTTP/1.1\r\nhost: web.test\r\n\r\n";
/** `n` whole responses (the proxy sends an h2c instance's bodies chunked). */
const responses = (n: number) => (s: string) => s.split("\r\n0\r\n\r\n").length === n + 1;
/** How many response bodies (one chunk each) say `text`. */
const bodies = (received: string, text: string) =>
  received.split(`\r\n${text.length.toString(16)}\r\n${text}\r\n0\r\n`).length - 1;

/** One connection the instance accepted: the header it began with, and whether it closed. */
interface Accepted {
  header: ProxyHeader | "none";
  streams: number;
  closed: Promise<void>;
}

/**
 * An h2c instance behind a PROXY header (as one configured to require it): a connection that
 * does not start with a header is closed; each stream is answered `ADDRESS:PORT` (the header's
 * source; `local` for a LOCAL header). With `hold`, streams wait until `answerHeld()`; with
 * `goaway`, each connection sends GOAWAY once it has answered its first stream.
 */
async function proxiedH2cInstance(opts: { hold?: boolean; goaway?: boolean } = {}) {
  const sockets = new Set<net.Socket>();
  const accepted: Accepted[] = [];
  const held: (() => void)[] = [];
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    const a: Accepted = {
      header: "none",
      streams: 0,
      closed: new Promise((r) => s.once("close", () => r())),
    };
    s.once("close", () => sockets.delete(s));
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      let r;
      try {
        r = parseProxyHeader(buf);
      } catch {
        accepted.push(a);
        return s.destroy();
      }
      if (r === "more") return;
      s.off("data", onData);
      s.pause();
      a.header = r.header;
      accepted.push(a);
      const src = r.header.source;
      const who = src === null ? "local" : `${src.address}:${src.port}`;
      const rest = buf.subarray(r.length);
      if (rest.length > 0) s.unshift(rest);
      const session = http2.performServerHandshake(s);
      session.on("error", () => {});
      session.on("stream", (stream) => {
        a.streams++;
        stream.on("error", () => {});
        const answer = () => {
          stream.respond({ ":status": 200 });
          stream.end(who, () => {
            if (opts.goaway === true) session.goaway();
          });
        };
        if (opts.hold === true) held.push(answer);
        else answer();
      });
      s.resume();
    };
    s.on("data", onData);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted,
    /** Streams waiting for `answerHeld()`. */
    held: () => held.length,
    answerHeld: () => held.splice(0).forEach((answer) => answer()),
    /** `vN ADDRESS:PORT` of each connection's header, in connection order. */
    sources: () =>
      accepted.map((a) =>
        a.header === "none"
          ? "none"
          : `v${a.header.version} ${a.header.source?.address}:${a.header.source?.port}`
      ),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function h2cService(port: number, version: "v1" | "v2", proto = "h2c") {
  const ts = new TestStore();
  ts.register(spec({
    id: "rpc-1",
    service: "rpc",
    port,
    meta: { "berth.proxy-protocol": version, "berth.http.proto": proto },
  }));
  return ts;
}

/** Resolves once `p` does; a promise that never settles fails the test after 5 s. */
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within 5 s: ${what}`)), 5_000);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

Deno.test("h2c route with berth.proxy-protocol=v1: each client connection gets its own instance connection naming it", async () => {
  const inst = await proxiedH2cInstance();
  try {
    await withProxy(h2cService(inst.port, "v1"), { proxyProtocolFrom: LOOPBACK }, async (port) => {
      // Client A: two requests on one connection: one instance connection for both.
      const a = await rawClient(port, v1("198.51.100.1") + GET + GET, { until: responses(2) });
      assert.equal(bodies(a.received, "198.51.100.1:40000"), 2, a.received);
      // Client B: its own connection, never A's.
      const b = await rawClient(port, v1("198.51.100.2", 41000) + GET, { until: responses(1) });
      assert.equal(bodies(b.received, "198.51.100.2:41000"), 1, b.received);
      assert.deepEqual(inst.sources(), ["v1 198.51.100.1:40000", "v1 198.51.100.2:41000"]);
      assert.deepEqual(inst.accepted.map((c) => c.streams), [2, 1]);
      // Each client closed its connection (rawClient does once answered): so did the proxy.
      await within(Promise.all(inst.accepted.map((c) => c.closed)), "instance connections close");
    });
  } finally {
    await inst.close();
  }
});

Deno.test("grpc route with berth.proxy-protocol=v2: an HTTP/2 client's parallel streams share one instance connection, closed with the client", async () => {
  const inst = await proxiedH2cInstance();
  try {
    await withH2Proxy(h2cService(inst.port, "v2", "grpc"), {}, async (port) => {
      const one = h2Connect(port);
      const two = h2Connect(port);
      try {
        await within(
          Promise.all([one, two].map((c) => new Promise((r) => c.once("connect", r)))),
          "clients connect",
        );
        const ask = (c: http2.ClientHttp2Session) =>
          h2Request(c, { ":method": "GET", ":path": "/", ":authority": "web.test" });
        const many = await Promise.all(Array.from({ length: 20 }, () => ask(one)));
        const other = await ask(two);
        const portOf = (c: http2.ClientHttp2Session) => (c.socket as net.Socket).localPort;
        for (const r of many) assert.equal(r.body.toString(), `127.0.0.1:${portOf(one)}`);
        assert.equal(other.body.toString(), `127.0.0.1:${portOf(two)}`);
        assert.deepEqual(inst.sources(), [
          `v2 127.0.0.1:${portOf(one)}`,
          `v2 127.0.0.1:${portOf(two)}`,
        ]);
        assert.deepEqual(inst.accepted.map((c) => c.streams), [20, 1]);
        // The first client goes away: its instance connection closes, the other's stays.
        one.destroy();
        await within(inst.accepted[0]!.closed, "the first client's instance connection closes");
        const again = await ask(two);
        assert.equal(again.body.toString(), `127.0.0.1:${portOf(two)}`);
        assert.equal(inst.accepted.length, 2);
        assert.equal(inst.accepted[1]!.streams, 2);
      } finally {
        one.destroy();
        two.destroy();
      }
    });
  } finally {
    await inst.close();
  }
});

for (const version of [null, "v1"] as const) {
  Deno.test(`h2c route${version === null ? "" : " with berth.proxy-protocol=" + version}: an instance that never sends SETTINGS gets a 502 and keeps no connection open`, async () => {
    const inst = await silentServer();
    const ts = new TestStore();
    const meta: Record<string, string> = { "berth.http.proto": "h2c", "berth.http.retries": "0" };
    if (version !== null) meta["berth.proxy-protocol"] = version;
    ts.register(spec({ id: "rpc-1", service: "rpc", port: inst.port, meta }));
    try {
      await withProxy(ts, { connectTimeoutMs: 200 }, async (port) => {
        const ask = "GET / HTTP/1.1\r\nhost: web.test\r\nconnection: close\r\n\r\n";
        const answers = await Promise.all(
          Array.from(
            { length: 5 },
            () => rawClient(port, ask, { until: (r) => r.includes("\r\n\r\n") }),
          ),
        );
        for (const a of answers) {
          assert.match(a.received, /^HTTP\/1\.1 502 [^]*connect timeout/, a.received);
        }
        assert.ok(inst.total() >= 1);
        // Timed out, so reset: nothing stays open at the instance.
        await until(() => inst.open() === 0, "the instance's connections close");
      });
    } finally {
      await inst.close();
    }
  });
}

Deno.test("h2c route with berth.proxy-protocol: private sessions count against the pool's connections per instance; a request beyond waits, then 503", async () => {
  const inst = await proxiedH2cInstance({ hold: true });
  try {
    const opts = { socketsMax: 2, queueTimeoutMs: 300 };
    await withProxy(h2cService(inst.port, "v1"), opts, async (port) => {
      const GET_ONE = { until: responses(1) };
      const first = [rawClient(port, GET, GET_ONE), rawClient(port, GET, GET_ONE)];
      await until(() => inst.held() === 2, "two requests reach the instance");
      // Both of the instance's 2 connections are busy: a third client's request waits, then 503.
      const third = await rawClient(port, GET, { until: (r) => r.includes("\r\n\r\n") });
      assert.match(third.received, /^HTTP\/1\.1 503 [^]*has all its connections busy/);
      assert.equal(inst.accepted.length, 2);
      inst.answerHeld();
      for (const r of await Promise.all(first)) assert.match(r.received, /^HTTP\/1\.1 200 /);
      // Those clients closed: their connections did too, and a new client is served.
      const fourth = rawClient(port, GET, GET_ONE);
      await until(() => inst.held() === 1, "the fourth request reaches the instance");
      inst.answerHeld();
      assert.match((await fourth).received, /^HTTP\/1\.1 200 /);
      assert.equal(inst.accepted.length, 3);
    });
  } finally {
    await inst.close();
  }
});

Deno.test("h2c route with berth.proxy-protocol: a refused private connect is retried on another instance, which gets the header", async () => {
  const inst = await proxiedH2cInstance();
  const refused = await unusedPort();
  const ts = new TestStore();
  const meta = { "berth.proxy-protocol": "v1", "berth.http.proto": "h2c" };
  ts.register(spec({ id: "rpc-0", service: "rpc", port: refused, meta }));
  ts.register(spec({ id: "rpc-1", service: "rpc", port: inst.port, meta }));
  try {
    await withProxy(ts, {}, async (port) => {
      // Round robin: one of the two clients tries the closed port first.
      for (let i = 0; i < 2; i++) {
        const r = await rawClient(port, GET, { until: responses(1) });
        assert.match(r.received, /^HTTP\/1\.1 200 /);
      }
      assert.equal(inst.accepted.length, 2);
      for (const source of inst.sources()) assert.match(source, /^v1 127\.0\.0\.1:\d+$/);
    });
  } finally {
    await inst.close();
  }
});

Deno.test("h2c route with berth.proxy-protocol: after a GOAWAY on its private session, a client's next request opens one that starts with its header again", async () => {
  const inst = await proxiedH2cInstance({ goaway: true });
  try {
    await withProxy(h2cService(inst.port, "v1"), { proxyProtocolFrom: LOOPBACK }, async (port) => {
      // One client connection, two requests: the second goes on a new instance connection.
      const a = await rawClient(port, v1("198.51.100.7") + GET + GET, { until: responses(2) });
      assert.equal(bodies(a.received, "198.51.100.7:40000"), 2, a.received);
      assert.deepEqual(inst.sources(), ["v1 198.51.100.7:40000", "v1 198.51.100.7:40000"]);
      assert.deepEqual(inst.accepted.map((c) => c.streams), [1, 1]);
    });
  } finally {
    await inst.close();
  }
});
