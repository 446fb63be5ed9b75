import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { CidrList, parseCidr } from "../lib/cidr.ts";
import { unusedPort } from "../../test/ports.ts";
import { waitFor } from "../../test/wait.ts";
import { buildProxyHeader } from "./proxy_protocol.ts";
import {
  type ConnEnds,
  copyConnEnds,
  LOG_INTERVAL_MS,
  ProxyHeaderGate,
  setConnEnds,
} from "./proxy_protocol_in.ts";
import { rawClient, servedCert, spec, startBackend, TestStore, withProxy } from "./_testing.ts";

const cidrs = (...c: string[]) => new CidrList(c.map((x) => parseCidr(x)!));
const LOOPBACK = cidrs("127.0.0.0/8");
const v1 = (src: string, sport = 40000) => `PROXY TCP4 ${src} 127.0.0.1 ${sport} 80\r\n`;

/** Runs `body` with a store whose service `web` (web.test) answers each request's X-Forwarded-For. */
async function withXffBackend(body: (ts: TestStore) => Promise<void>): Promise<void> {
  const b = await startBackend(
    "web",
    (req, res) => res.end(String(req.headers["x-forwarded-for"])),
  );
  const ts = new TestStore();
  ts.register(spec({ id: "w", service: "web", port: b.port }));
  try {
    await body(ts);
  } finally {
    await b.close();
  }
}

/** A server whose connections go through `gate`: resolves each with what `then` saw, or "closed". */
async function gated(gate: ProxyHeaderGate) {
  const seen: { ends: string; rest: string }[] = [];
  const closed: number[] = [];
  const server = net.createServer((s) => {
    s.once("close", () => closed.push(1));
    gate.accept(s, "http", (rest) => {
      seen.push({
        ends: `${s.remoteAddress}:${s.remotePort} → ${s.localAddress}:${s.localPort}`,
        rest: rest.toString(),
      });
      s.end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    seen,
    closed,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

Deno.test("ProxyHeaderGate.accept() sets the declared ends and hands on the bytes after the header", async () => {
  const gate = new ProxyHeaderGate({ from: LOOPBACK, log: () => {} });
  const g = await gated(gate);
  try {
    const r = await rawClient(g.port, v1("203.0.113.9", 51000) + "GET / HTTP/1.1\r\n");
    assert.equal(r.received, "ok");
    const header = buildProxyHeader(2, { address: "2001:db8::7", port: 7 }, {
      address: "::1",
      port: 443,
    });
    const r2 = await rawClient(g.port, Buffer.concat([header, Buffer.from("tail")]));
    assert.equal(r2.received, "ok");
    // LOCAL (the balancer's own check): the socket's real ends stay.
    const local = Buffer.from(
      buildProxyHeader(2, { address: "", port: 0 }, { address: "", port: 0 }),
    );
    await rawClient(g.port, local);
    assert.deepEqual(g.seen.slice(0, 2), [
      { ends: "203.0.113.9:51000 → 127.0.0.1:80", rest: "GET / HTTP/1.1\r\n" },
      { ends: "2001:db8::7:7 → ::1:443", rest: "tail" },
    ]);
    assert.match(g.seen[2]!.ends, /^127\.0\.0\.1:\d+ → 127\.0\.0\.1:\d+$/);
    assert.equal(gate.badHeaders, 0);
  } finally {
    await g.close();
  }
});

Deno.test("ProxyHeaderGate.accept() reads a v1 and a v2 header sent one byte per write", async () => {
  const gate = new ProxyHeaderGate({ from: LOOPBACK, log: () => {} });
  const g = await gated(gate);
  /** Sends `bytes` one per write (each flushed before the next), then waits for the answer. */
  const trickle = (bytes: Uint8Array) =>
    new Promise<string>((resolve, reject) => {
      const c = net.connect({ port: g.port, host: "127.0.0.1", noDelay: true });
      c.on("data", (d) => {
        c.destroy();
        resolve(String(d));
      });
      c.on("error", reject);
      c.once("connect", async () => {
        for (const b of bytes) {
          await new Promise<void>((r) => c.write(Uint8Array.of(b), () => r()));
          await new Promise((r) => setTimeout(r, 1));
        }
      });
    });
  try {
    assert.equal(await trickle(Buffer.from(v1("198.51.100.4", 4444))), "ok");
    const header = buildProxyHeader(2, { address: "2001:db8::9", port: 9 }, {
      address: "::1",
      port: 80,
    });
    assert.equal(await trickle(header), "ok");
    assert.deepEqual(g.seen.map((x) => x.ends), [
      "198.51.100.4:4444 → 127.0.0.1:80",
      "2001:db8::9:9 → ::1:80",
    ]);
    // The header's last byte completes it: nothing after it was taken.
    assert.deepEqual(g.seen.map((x) => x.rest), ["", ""]);
    assert.equal(gate.badHeaders, 0);
  } finally {
    await g.close();
  }
});

Deno.test("ProxyHeaderGate.accept() closes a connection without a good header, a slow one, a truncated one", async () => {
  const lines: string[] = [];
  const gate = new ProxyHeaderGate({ from: LOOPBACK, log: (l) => lines.push(l), timeoutMs: 200 });
  const g = await gated(gate);
  try {
    // Not a PROXY header at all (a client that skipped the balancer).
    assert.deepEqual(await rawClient(g.port, "GET / HTTP/1.1\r\nhost: x\r\n\r\n"), {
      received: "",
      closed: true,
    });
    // Wrong v2 signature, oversized v1, unknown family.
    assert.equal((await rawClient(g.port, "\r\n\r\n\0\r\nQUIX\n!!")).closed, true);
    assert.equal((await rawClient(g.port, "PROXY UNKNOWN " + "x".repeat(200))).closed, true);
    assert.equal((await rawClient(g.port, "PROXY TCP9 1.2.3.4 1.2.3.4 1 1\r\n")).closed, true);
    // A slowloris header: part of one, then nothing; the deadline closes it.
    assert.deepEqual(await rawClient(g.port, "PROXY TCP4 1.2."), { received: "", closed: true });
    // Truncated by the client's close.
    assert.equal((await rawClient(g.port, "PROXY TCP4 1.2.", { end: true })).closed, true);
    assert.deepEqual(g.seen, []);
    assert.equal(gate.badHeaders, 6);
    assert.equal(gate.pending, 0);
    // Logged once (the first), not once per connection.
    assert.equal(lines.length, 1);
    assert.match(
      lines[0]!,
      /^proxy: closed 1 connection\(s\) from --proxy-protocol-from sources without a good PROXY header \(last: http from 127\.0\.0\.1: no PROXY header/,
    );
  } finally {
    await g.close();
  }
});

Deno.test("ProxyHeaderGate logs bad headers at most once per interval, with their count", async () => {
  let now = 0;
  const lines: string[] = [];
  const gate = new ProxyHeaderGate({ from: LOOPBACK, log: (l) => lines.push(l), now: () => now });
  const g = await gated(gate);
  try {
    await rawClient(g.port, "x");
    await rawClient(g.port, "y");
    now += LOG_INTERVAL_MS;
    await rawClient(g.port, "z");
    assert.equal(lines.length, 2);
    assert.match(lines[1]!, /closed 2 connection\(s\)/);
  } finally {
    await g.close();
  }
});

Deno.test("ProxyHeaderGate: a connection closed before any byte is no bad header; over pendingMax is closed", async () => {
  const lines: string[] = [];
  const gate = new ProxyHeaderGate({ from: LOOPBACK, log: (l) => lines.push(l), pendingMax: 1 });
  const g = await gated(gate);
  try {
    assert.equal((await rawClient(g.port, "", { end: true })).closed, true);
    assert.equal(gate.badHeaders, 0);
    const slow = net.connect(g.port, "127.0.0.1");
    slow.on("error", () => {});
    await new Promise((r) => slow.once("connect", r));
    slow.write("PROXY ");
    while (gate.pending < 1) await new Promise((r) => setTimeout(r, 5));
    assert.equal((await rawClient(g.port, v1("1.2.3.4"))).closed, true);
    assert.equal(gate.badHeaders, 1);
    assert.match(lines[0]!, /over 1 connections await a header/);
    gate.close();
    assert.equal(gate.pending, 0);
    slow.destroy();
  } finally {
    await g.close();
  }
});

Deno.test("ProxyHeaderGate.trusts() only the configured sources", () => {
  const gate = new ProxyHeaderGate({ from: cidrs("10.0.0.0/8"), log: () => {} });
  assert.equal(gate.trusts({ remoteAddress: "10.1.2.3" }), true);
  assert.equal(gate.trusts({ remoteAddress: "::ffff:10.1.2.3" }), true);
  assert.equal(gate.trusts({ remoteAddress: "127.0.0.1" }), false);
  assert.equal(gate.trusts({}), false);
});

Deno.test("HttpProxy with proxyProtocolFrom: the PROXY header's address is the client's (X-Forwarded-For)", async () => {
  await withXffBackend(async (ts) => {
    await withProxy(ts, { proxyProtocolFrom: LOOPBACK }, async (port) => {
      const get = "GET / HTTP/1.1\r\nhost: web.test\r\nx-forwarded-for: 10.9.9.9\r\n\r\n";
      const r = await rawClient(port, v1("198.51.100.4") + get, {
        until: (s) => s.endsWith("198.51.100.4"),
      });
      assert.match(r.received, /^HTTP\/1\.1 200 /);
      assert.ok(r.received.endsWith("\r\n\r\n10.9.9.9, 198.51.100.4"), r.received);
      // Header and request in separate writes, keep-alive: the second request too.
      const two = await rawClient(
        port,
        Buffer.concat([
          buildProxyHeader(2, { address: "198.51.100.5", port: 1 }, {
            address: "127.0.0.1",
            port: 80,
          }),
          Buffer.from(get.replace("x-forwarded-for: 10.9.9.9\r\n", "") + get),
        ]),
        { until: (s) => s.split("HTTP/1.1 200").length === 3 && s.endsWith("198.51.100.5") },
      );
      assert.match(
        two.received,
        /\r\n\r\n198\.51\.100\.5HTTP\/1\.1 200 [^]*10\.9\.9\.9, 198\.51\.100\.5$/,
      );
      // A trusted source without a header is closed, unanswered.
      assert.deepEqual(await rawClient(port, get), { received: "", closed: true });
    });
  });
});

Deno.test("HttpProxy does not honour a PROXY header from a source it does not trust", async () => {
  await withXffBackend(async (ts) => {
    await withProxy(ts, { proxyProtocolFrom: cidrs("10.0.0.0/8") }, async (port) => {
      const get = "GET / HTTP/1.1\r\nhost: web.test\r\n\r\n";
      const r = await rawClient(port, v1("198.51.100.4") + get);
      assert.match(r.received, /^HTTP\/1\.1 400 /);
      const plain = await rawClient(port, get, { until: (s) => s.endsWith("127.0.0.1") });
      assert.match(plain.received, /^HTTP\/1\.1 200 [^]*\r\n\r\n127\.0\.0\.1$/);
    });
  });
});

Deno.test("HttpProxy with proxyProtocolFrom reads the PROXY header before TLS on the HTTPS listener", async () => {
  const cert = servedCert(["web.test"]);
  await withXffBackend(async (ts) => {
    await withProxy(ts, {
      listen: null,
      proxyProtocolFrom: LOOPBACK,
      tls: { listen: { host: "127.0.0.1", port: 0 }, certs: () => [cert] },
    }, async (_port, proxy) => {
      const raw = net.connect(proxy.httpsAddress.port, "127.0.0.1");
      await new Promise((r) => raw.once("connect", r));
      raw.write(v1("192.0.2.44"));
      const s = tls.connect({ socket: raw, servername: "web.test", ca: cert.caPem });
      let got = "";
      await new Promise<void>((resolve, reject) => {
        s.on(
          "secureConnect",
          () => s.write("GET / HTTP/1.1\r\nhost: web.test\r\nconnection: close\r\n\r\n"),
        );
        s.on("data", (d) => got += d);
        s.on("end", () => resolve());
        s.on("error", reject);
      });
      s.destroy();
      assert.match(got, /^HTTP\/1\.1 200 [^]*\r\n\r\n192\.0\.2\.44$/);
    });
  });
});

Deno.test("HttpProxy with proxyProtocolFrom strips the PROXY header on a TCP route", async () => {
  const got: string[] = [];
  const echo = net.createServer((s) =>
    s.on("data", (d) => {
      got.push(d.toString());
      s.end("pong");
    })
  );
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  const tcpPort = await unusedPort();
  const ts = new TestStore();
  ts.register(
    spec({
      id: "db",
      service: "db",
      port: (echo.address() as net.AddressInfo).port,
      tcpPort,
      httpHosts: [],
    }),
  );
  try {
    await withProxy(ts, { proxyProtocolFrom: LOOPBACK }, async () => {
      const r = await rawClient(tcpPort, v1("192.0.2.1") + "ping");
      assert.equal(r.received, "pong");
      assert.deepEqual(got, ["ping"]);
      assert.deepEqual(await rawClient(tcpPort, "ping"), { received: "", closed: true });
    });
  } finally {
    await new Promise<void>((r) => echo.close(() => r()));
  }
});

Deno.test("HttpProxy with proxyProtocolFrom: berth.http.allow judges the declared client address", async () => {
  const b = await startBackend("web");
  const ts = new TestStore();
  ts.register(
    spec({
      id: "w",
      service: "web",
      port: b.port,
      meta: { "berth.http.allow": "198.51.100.0/24" },
    }),
  );
  try {
    await withProxy(ts, { proxyProtocolFrom: LOOPBACK }, async (port) => {
      const get = "GET / HTTP/1.1\r\nhost: web.test\r\n\r\n";
      const until = (s: string) => /\r\n\r\n[^]+$/.test(s);
      const inside = await rawClient(port, v1("198.51.100.4") + get, { until });
      assert.match(inside.received, /^HTTP\/1\.1 200 /);
      const outside = await rawClient(port, v1("203.0.113.1") + get, { until });
      assert.match(outside.received, /^HTTP\/1\.1 403 /);
    });
  } finally {
    await b.close();
  }
});

/**
 * One HTTP/2 request over TLS (ALPN h2) to `port`, after a v1 PROXY header declaring `client`;
 * resolves with the response body.
 */
async function h2GetBehindHeader(
  port: number,
  cert: ReturnType<typeof servedCert>,
  client: string,
  headers: Record<string, string> = {},
): Promise<string> {
  const raw = net.connect(port, "127.0.0.1");
  await new Promise((r) => raw.once("connect", r));
  raw.write(v1(client));
  const session = http2.connect("https://web.test", {
    createConnection: () =>
      tls.connect({ socket: raw, servername: "web.test", ca: cert.caPem, ALPNProtocols: ["h2"] }),
  });
  try {
    return await new Promise<string>((resolve, reject) => {
      const s = session.request({ ":path": "/", ":authority": "web.test", ...headers });
      let got = "";
      s.setEncoding("utf8");
      s.on("data", (d: string) => got += d);
      s.on("end", () => resolve(got));
      s.on("error", reject);
      s.end();
    });
  } finally {
    session.close();
    raw.destroy();
  }
}

Deno.test("HttpProxy with proxyProtocolFrom: HTTP/2 requests over TLS carry the declared address", async () => {
  const cert = servedCert(["web.test"]);
  await withXffBackend(async (ts) => {
    await withProxy(ts, {
      listen: null,
      h2: true,
      proxyProtocolFrom: LOOPBACK,
      tls: { listen: { host: "127.0.0.1", port: 0 }, certs: () => [cert] },
    }, async (_port, proxy) => {
      assert.equal(
        await h2GetBehindHeader(proxy.httpsAddress.port, cert, "192.0.2.55"),
        "192.0.2.55",
      );
    });
  });
});

Deno.test("HttpProxy with proxyProtocolFrom and requestIdFrom: an HTTP/2 request over TLS keeps the id of a listed balancer, not of another", async () => {
  const cert = servedCert(["web.test"]);
  const b = await startBackend("web", (req, res) => res.end(String(req.headers["x-request-id"])));
  try {
    // The balancer (127.0.0.1, the connection's peer) listed: its id reaches the instance though
    // the declared client (192.0.2.55) is not listed; a list without it: the id is replaced.
    for (const [from, kept] of [["127.0.0.0/8", true], ["10.9.9.0/24", false]] as const) {
      const ts = new TestStore(); // withProxy closes it
      ts.register(spec({ id: "w", service: "web", port: b.port }));
      await withProxy(ts, {
        listen: null,
        h2: true,
        proxyProtocolFrom: LOOPBACK,
        requestIdFrom: cidrs(from),
        tls: { listen: { host: "127.0.0.1", port: 0 }, certs: () => [cert] },
      }, async (_port, proxy) => {
        const id = await h2GetBehindHeader(proxy.httpsAddress.port, cert, "192.0.2.55", {
          "x-request-id": "gw-abc-123",
        });
        // A new id: the proxy's random prefix and a counter (request_id.ts).
        if (kept) assert.equal(id, "gw-abc-123", from);
        else assert.match(id, /^[0-9a-f]{12}-[0-9a-z]+$/, from);
      });
    }
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy with proxyProtocolFrom: the per-address TLS handshake limit counts declared addresses", async () => {
  const cert = servedCert(["web.test"]);
  /** A TLS request after a header declaring `client`: the body, or "closed". */
  const tlsGet = (port: number, client: string) =>
    new Promise<string>((resolve) => {
      const raw = net.connect(port, "127.0.0.1", () => raw.write(v1(client)));
      const s = tls.connect({ socket: raw, servername: "web.test", ca: cert.caPem });
      let got = "";
      s.on("secureConnect", () =>
        s.write("GET / HTTP/1.1\r\nhost: web.test\r\nconnection: close\r\n\r\n"));
      s.on("data", (d) =>
        got += d);
      s.on("error", () => {});
      s.on("close", () => resolve(got === "" ? "closed" : got.split("\r\n\r\n")[1]!));
    });
  await withXffBackend(async (ts) => {
    await withProxy(ts, {
      listen: null,
      proxyProtocolFrom: LOOPBACK,
      tls: { listen: { host: "127.0.0.1", port: 0 }, certs: () => [cert], handshakesPerIpMax: 1 },
    }, async (_port, proxy) => {
      const port = proxy.httpsAddress.port;
      // A handshake of 192.0.2.1 held open: its header, no ClientHello.
      const held = net.connect(port, "127.0.0.1", () => held.write(v1("192.0.2.1")));
      held.on("error", () => {});
      // Once that handshake is counted, 192.0.2.1 gets no other; 192.0.2.2 still does.
      await waitFor("the held handshake counted", async () => {
        return await tlsGet(port, "192.0.2.1") === "closed";
      });
      assert.equal(await tlsGet(port, "192.0.2.2"), "192.0.2.2");
      held.destroy();
    });
  });
});

Deno.test("setConnEnds() keeps the header's sender as proxiedBy, and copyConnEnds() carries it", () => {
  const socket = { remoteAddress: "127.0.0.1", remotePort: 50000 };
  setConnEnds(socket, { address: "203.0.113.1", port: 40000 }, null);
  const ends = socket as ConnEnds;
  assert.equal(ends.remoteAddress, "203.0.113.1");
  assert.equal(ends.proxiedBy, "127.0.0.1");
  const tlsSocket = {};
  copyConnEnds(tlsSocket, ends);
  assert.equal((tlsSocket as ConnEnds).proxiedBy, "127.0.0.1");
  assert.equal((tlsSocket as ConnEnds).remoteAddress, "203.0.113.1");
});
