// Access log lines and metrics of what the HTTP/1.1 connection answers before it has a whole
// request head (client_conn.ts `onHeadRefused`): 400, 431, 408; and none for quiet closes.
import assert from "node:assert/strict";
import net from "node:net";
import { AccessLog, type LogSink } from "./access_log.ts";
import type { AccessLogFormat } from "./access_log_format.ts";
import { requestLine } from "./client_conn.ts";
import { NONE, ProxyMetrics } from "./proxy_metrics.ts";
import { rawClient, spec, startBackend, TestStore, withProxy } from "./_testing.ts";
import { h2Connect, h2Request, testTls, withH2Proxy } from "./_h2_testing.ts";
import tls from "node:tls";
import type { ProxyOptions } from "./http_proxy.ts";
import { Buffer } from "node:buffer";

/** A proxy with an access log in `format` writing to memory, and metrics. */
async function withLoggedProxy(
  over: Partial<ProxyOptions>,
  format: AccessLogFormat,
  fn: (port: number, lines: () => Promise<string[]>, metrics: ProxyMetrics) => Promise<void>,
  serve = withProxy,
): Promise<void> {
  const writes: string[] = [];
  const sink: LogSink = {
    name: "memory",
    batchBytesMax: 64 * 1024,
    write(bytes) {
      writes.push(new TextDecoder().decode(bytes));
      return Promise.resolve();
    },
    reopen: () => Promise.resolve(),
    close() {},
  };
  const log = new AccessLog(sink, { format, flushDelayMs: 0 });
  const metrics = new ProxyMetrics();
  const lines = async () => {
    await log.flushed();
    return writes.join("").split("\n").filter((l) => l !== "");
  };
  await serve(
    new TestStore(),
    { ...over, observers: [metrics, log] },
    (port) => fn(port, lines, metrics),
  );
}

/** Connects, waits `ms`, and says whether the proxy closed the connection and what it sent. */
function idleClient(port: number, ms: number, wire = ""): Promise<{ received: string }> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let received = "";
    s.on("error", () => {});
    s.on("data", (d: Buffer) => received += d.toString("latin1"));
    s.on("connect", () => {
      if (wire !== "") s.write(wire);
    });
    s.on("close", () => resolve({ received }));
    setTimeout(() => s.destroy(), ms);
  });
}

Deno.test("HttpProxy logs a malformed head's 400 with the request line as far as read, no service", async () => {
  await withLoggedProxy({}, "json", async (port, lines, metrics) => {
    const bad = await rawClient(port, "GET /x?y=1 HTTP/1.1\r\nHost: web.test\r\nNo colon\r\n\r\n");
    assert.match(bad.received, /^HTTP\/1\.1 400 /);
    const junk = await rawClient(port, "\x01\x02 junk\r\n\r\n");
    assert.match(junk.received, /^HTTP\/1\.1 400 /);
    const got = (await lines()).map((l) => JSON.parse(l));
    assert.equal(got.length, 2);
    for (const l of got) {
      assert.equal(l.status, 400);
      assert.equal(l.client, "127.0.0.1");
      assert.equal(l.host, null);
      assert.equal(l.service, null);
      assert.equal(l.route, null);
      assert.equal(l.attempts, 0);
      assert.equal(l.bytes_in, 0);
      assert.equal(l.bytes_out, "bad request\n".length);
      assert.equal(l.proto, "HTTP/1.1");
      assert.ok(l.duration_ms >= 0);
      assert.ok(typeof l.request_id === "string" && l.request_id !== "");
      assert.ok(Math.abs(Date.parse(l.time) - Date.now()) < 60_000);
    }
    assert.deepEqual(got.map((l) => [l.method, l.path]), [["GET", "/x?y=1"], ["", ""]]);
    const none = metrics.snapshot().routes.find((r) => r.service === NONE);
    assert.equal(none?.counts[3], 2, "two 4xx under <none>");
  });
});

Deno.test("HttpProxy logs 431 for a head over headerBytesMax, in the common format too", async () => {
  await withLoggedProxy({ headerBytesMax: 1024 }, "common", async (port, lines) => {
    const big = `GET /big HTTP/1.1\r\nHost: web.test\r\nX-Pad: ${"a".repeat(4000)}\r\n\r\n`;
    const r = await rawClient(port, big);
    assert.match(r.received, /^HTTP\/1\.1 431 /);
    const junk = await rawClient(port, "\x01 junk\r\n\r\n");
    assert.match(junk.received, /^HTTP\/1\.1 400 /);
    const got = await lines();
    assert.equal(got.length, 2);
    const size = "request header fields too large\n".length;
    assert.match(
      got[0]!,
      new RegExp(`^127\\.0\\.0\\.1 - - \\[.+\\] "GET /big HTTP/1\\.1" 431 ${size}$`),
    );
    assert.match(got[1]!, /^127\.0\.0\.1 - - \[.+\] "-" 400 12$/);
  });
});

Deno.test("HttpProxy logs 408 for a head that does not arrive whole in time", async () => {
  await withLoggedProxy({ headersTimeoutMs: 200 }, "json", async (port, lines, metrics) => {
    const r = await idleClient(port, 5_000, "GET /slow HTTP/1.1\r\nHost: web.test\r\n");
    assert.match(r.received, /^HTTP\/1\.1 408 /);
    const got = (await lines()).map((l) => JSON.parse(l));
    assert.deepEqual(got.map((l) => [l.status, l.method, l.path, l.host, l.service]), [
      [408, "GET", "/slow", null, null],
    ]);
    assert.ok(got[0].duration_ms > 0);
    assert.equal(got[0].bytes_out, "request timeout\n".length);
    const none = metrics.snapshot().routes.find((r) => r.service === NONE);
    assert.equal(none?.counts[3], 1);
  });
});

Deno.test("HttpProxy logs no line for connections that close quietly: no bytes, idle keep-alive", async () => {
  await withLoggedProxy(
    { headersTimeoutMs: 200, keepAliveTimeoutMs: 200 },
    "json",
    async (port, lines, metrics) => {
      // Connected, sent nothing until the head timeout.
      await idleClient(port, 5_000);
      // Connected and left.
      await idleClient(port, 50);
      // One whole request (404: no route), then idle past the keep-alive timeout.
      const r = await idleClient(port, 5_000, "GET /one HTTP/1.1\r\nHost: web.test\r\n\r\n");
      assert.match(r.received, /^HTTP\/1\.1 404 /);
      const got = (await lines()).map((l) => JSON.parse(l));
      assert.deepEqual(got.map((l) => [l.status, l.path]), [[404, "/one"]]);
      const none = metrics.snapshot().routes.find((r) => r.service === NONE);
      assert.equal(none?.counts[3], 1);
    },
  );
});

Deno.test("HttpProxy ignores empty lines on an idle keep-alive connection: no 408, no line; it closes quietly", async () => {
  await withLoggedProxy(
    { headersTimeoutMs: 200, keepAliveTimeoutMs: 1000 },
    "json",
    async (port, lines, metrics) => {
      // A whole request (404: no route), then a stray CRLF (some clients send one after a
      // body), then nothing: the connection stays idle until its keep-alive timeout.
      const received = await new Promise<string>((resolve) => {
        const s = net.connect(port, "127.0.0.1");
        let got = "";
        s.on("error", () => {});
        s.on("data", (d: Buffer) => {
          const first = got === "";
          got += d.toString("latin1");
          if (first) s.write("\r\n");
        });
        s.on("connect", () => s.write("GET /one HTTP/1.1\r\nHost: web.test\r\n\r\n"));
        s.on("close", () => resolve(got));
      });
      assert.deepEqual(received.match(/HTTP\/1\.1 \d+/g), ["HTTP/1.1 404"]);
      // Empty lines before a request line on a new connection, then the request: answered.
      const r = await rawClient(port, "\r\n\r\nGET /two HTTP/1.1\r\nHost: web.test\r\n\r\n", {
        until: (got) => got.includes("no route"),
      });
      assert.match(r.received, /^HTTP\/1\.1 404 /);
      const got = (await lines()).map((l) => JSON.parse(l));
      assert.deepEqual(got.map((l) => [l.status, l.path]), [[404, "/one"], [404, "/two"]]);
      const none = metrics.snapshot().routes.find((r) => r.service === NONE);
      assert.equal(none?.counts[3], 2);
    },
  );
});

Deno.test("HttpProxy answers 408 to a head pipelined behind a response that does not come whole: bytes came, not idle", async () => {
  const a = await startBackend("a", (req, res) => {
    req.resume();
    setTimeout(() => res.end("slow"), 100); // the next head's start arrives meanwhile
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withLoggedProxy(
      { headersTimeoutMs: 300, keepAliveTimeoutMs: 30_000 },
      "json",
      async (port, lines) => {
        const part = "GET /two HTTP/1.1\r\nHost: w";
        // Behind the proxy's own 404 (the response ends within the read that has both), and
        // behind an instance's response that ends after the read.
        const own = await idleClient(
          port,
          10_000,
          `GET /one HTTP/1.1\r\nHost: no.test\r\n\r\n${part}`,
        );
        const slow = await idleClient(
          port,
          10_000,
          `GET /s HTTP/1.1\r\nHost: web.test\r\n\r\n${part}`,
        );
        assert.deepEqual(own.received.match(/HTTP\/1\.1 \d+/g), ["HTTP/1.1 404", "HTTP/1.1 408"]);
        assert.deepEqual(slow.received.match(/HTTP\/1\.1 \d+/g), ["HTTP/1.1 200", "HTTP/1.1 408"]);
        const got = (await lines()).map((l) => JSON.parse(l));
        assert.deepEqual(got.map((l) => l.status), [404, 408, 200, 408]);
      },
      (_store, opts, fn) => withProxy(ts, opts, fn),
    );
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy logs a pipelined head's 400 after the request before it, with no request line", async () => {
  await withLoggedProxy({}, "json", async (port, lines) => {
    const r = await rawClient(
      port,
      "GET /first HTTP/1.1\r\nHost: web.test\r\n\r\nGET /second HTTP/1.1\r\nBad\r\n\r\n",
    );
    assert.match(r.received, /^HTTP\/1\.1 404 [\s\S]*HTTP\/1\.1 400 /);
    const got = (await lines()).map((l) => JSON.parse(l));
    assert.deepEqual(got.map((l) => [l.status, l.method, l.path]), [
      [404, "GET", "/first"],
      [400, "", ""],
    ]);
  });
});

Deno.test("HttpProxy logs a refused head over TLS with its TLS version and server name", async () => {
  await withLoggedProxy({}, "json", async (port, lines) => {
    const received = await new Promise<string>((resolve) => {
      let got = "";
      const s = tls.connect({
        port,
        host: "127.0.0.1",
        servername: "web.test",
        ca: testTls().caPem,
        ALPNProtocols: ["http/1.1"],
      });
      s.on("error", () => {});
      s.on("secureConnect", () => s.write("GET /t HTTP/1.1\r\nbroken\r\n\r\n"));
      s.on("data", (d: Buffer) => got += d.toString("latin1"));
      s.on("close", () => resolve(got));
    });
    assert.match(received, /^HTTP\/1\.1 400 /);
    const got = (await lines()).map((l) => JSON.parse(l));
    assert.deepEqual(got.map((l) => [l.status, l.method, l.path, l.sni, l.proto]), [
      [400, "GET", "/t", "web.test", "HTTP/1.1"],
    ]);
    assert.match(got[0].tls_version, /^TLSv1\.[23]$/);
  }, withH2Proxy);
});

Deno.test("HttpProxy logs the HTTP/2 requests its frontend refuses (431, 405) with no service", async () => {
  await withLoggedProxy({ headerBytesMax: 1024 }, "json", async (port, lines, metrics) => {
    const client = h2Connect(port);
    try {
      // Sent with the first request: before the client acknowledged the server's SETTINGS,
      // nghttp2 enforces no header list size, the frontend does (h2_frontend_test.ts).
      const [first, big] = await Promise.all([
        h2Request(client, { ":path": "/first", ":authority": "web.test" }),
        h2Request(client, { ":path": "/big", ":authority": "web.test", "x-pad": "a".repeat(2000) }),
      ]);
      assert.equal(first.status, 404);
      assert.equal(big.status, 431);
      const connect = await h2Request(client, {
        ":method": "CONNECT",
        ":authority": "web.test:443",
      });
      assert.equal(connect.status, 405);
    } finally {
      client.close();
    }
    // In status order: the frontend may finish /first after /big.
    const got = (await lines()).map((l) => JSON.parse(l)).sort((a, b) => a.status - b.status);
    assert.deepEqual(got.map((l) => [l.status, l.method, l.path, l.host, l.service, l.proto]), [
      [404, "GET", "/first", "web.test", null, "HTTP/2"],
      [405, "CONNECT", "", "web.test:443", null, "HTTP/2"],
      [431, "GET", "/big", "web.test", null, "HTTP/2"],
    ]);
    assert.equal(got[2].bytes_out, "request header fields too large\n".length);
    const none = metrics.snapshot().routes.find((r) => r.service === NONE);
    assert.equal(none?.counts[3], 3);
  }, withH2Proxy);
});

Deno.test("requestLine takes method and target of a whole HTTP/1.x request line, else null", () => {
  const of = (s: string) => requestLine(Buffer.from(s, "latin1"));
  assert.deepEqual(of("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n"), ["GET", "/a?b=1"]);
  assert.deepEqual(of("OPTIONS * HTTP/1.0\n"), ["OPTIONS", "*"]);
  assert.equal(of("GET /a HTTP/1.1"), null, "no line end yet");
  assert.equal(of("GET /a b HTTP/1.1\r\n"), null);
  assert.equal(of("G\x01T /a HTTP/1.1\r\n"), null);
  assert.equal(of("GET /\xe9 HTTP/1.1\r\n"), null);
  assert.equal(of(`GET /${"a".repeat(9000)} HTTP/1.1\r\n`), null, "longer than read for it");
});
