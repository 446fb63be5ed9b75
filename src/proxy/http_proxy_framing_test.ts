// HttpProxy on the wire: how heads, bodies and connections are framed and relayed.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import {
  rawBackend,
  rawClient,
  request,
  spec,
  startBackend,
  TestStore,
  withProxy,
} from "./_testing.ts";

Deno.test("HttpProxy cuts off a response body that stalls", async () => {
  const a = await startBackend("a", (req, res) => {
    req.resume();
    res.writeHead(200, { "content-length": "100" });
    res.write("part");
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await withProxy(ts, { streamIdleTimeoutMs: 50 }, async (port) => {
      const hang = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve("still hanging"), 5_000);
      });
      const outcome = await Promise.race([
        request(port, "/").then((r) => `complete ${r.body}`, (e) => `cut off: ${e.message}`),
        hang,
      ]);
      assert.match(outcome, /^cut off/);
    });
  } finally {
    clearTimeout(timer);
    await a.close();
  }
});

Deno.test("HttpProxy passes end-to-end headers both ways and strips hop-by-hop ones", async () => {
  const a = await startBackend("a", (req, res) => {
    req.resume();
    res.writeHead(200, [
      "Set-Cookie",
      "a=1",
      "Set-Cookie",
      "b=2",
      "Connection",
      "x-private",
      "X-Private",
      "hidden",
      "Keep-Alive",
      "timeout=99",
      "X-Kept",
      "yes",
    ]);
    res.end("ok");
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await request(port, "/h", {
        headers: {
          "x-forwarded-proto": "https",
          "x-forwarded-host": "spoofed.test",
          "te": "trailers",
          "proxy-authorization": "secret",
          "x-long-header-name-passes-through": "1",
        },
      });
      assert.equal(r.status, 200);
      assert.deepEqual(r.headers["set-cookie"], ["a=1", "b=2"]);
      assert.equal(r.headers["x-kept"], "yes");
      assert.equal(r.headers["x-private"], undefined, "named by the response's Connection");
      assert.notEqual(r.headers["keep-alive"], "timeout=99", "hop-by-hop");
      const seen = a.seen[0]!;
      assert.equal(seen["x-forwarded-proto"], "http");
      assert.equal(seen["x-forwarded-host"], "web.test");
      assert.equal(seen["x-forwarded-for"], "127.0.0.1");
      assert.equal(seen.te, undefined);
      assert.equal(seen["proxy-authorization"], undefined);
      assert.equal(seen["x-long-header-name-passes-through"], "1");
      assert.equal(seen.host, "web.test");
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy keeps a response that streams slowly but steadily", async () => {
  const chunks = 8;
  const a = await startBackend("a", (req, res) => {
    req.resume();
    res.writeHead(200, { "content-length": String(chunks) });
    let sent = 0;
    const timer = setInterval(() => {
      res.write("x");
      if (++sent === chunks) {
        clearInterval(timer);
        res.end();
      }
    }, 100);
    res.once("close", () => clearInterval(timer));
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    // 8 chunks 100 ms apart outlast one 500 ms idle period: each chunk must move the deadline.
    await withProxy(ts, { streamIdleTimeoutMs: 500 }, async (port) => {
      const r = await request(port, "/");
      assert.equal(r.status, 200);
      assert.equal(r.body, "x".repeat(chunks));
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy relays chunked bodies both ways and answers HEAD without a body", async () => {
  const a = await startBackend("a", (req, res) => {
    const parts: string[] = [];
    req.setEncoding("utf8");
    req.on("data", (d: string) => parts.push(d));
    req.on("end", () => {
      res.write(`te=${req.headers["transfer-encoding"]} `);
      res.write(`got ${parts.join("")}`);
      res.end();
    });
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const body = await new Promise<string>((resolve, reject) => {
        const req = http.request({
          host: "127.0.0.1",
          port,
          method: "POST",
          agent: false,
          headers: { host: "web.test", "transfer-encoding": "chunked" },
        }, (res) => {
          assert.equal(res.headers["transfer-encoding"], "chunked");
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => text += d);
          res.on("end", () => resolve(text));
        });
        req.on("error", reject);
        req.write("part one, ");
        setTimeout(() => req.end("part two"), 20);
      });
      assert.equal(body, "te=chunked got part one, part two");
      const head = await request(port, "/", { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.body, "");
      assert.equal((await request(port, "/after-head")).body, "te=undefined got ");
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy answers 502 when the instance sends an invalid response", async () => {
  const b = await rawBackend(() => ({ wire: "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n" }));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await request(port, "/");
      assert.equal(r.status, 502);
      assert.match(r.body, /bad gateway: service web: instance web-a sent an invalid response/);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy relays a response whose lines end with a bare LF (busybox CGI)", async () => {
  const b = await rawBackend(() => ({
    wire: "HTTP/1.0 200 OK\nContent-Type: text/plain\n\nhello from cgi\n",
    close: true,
  }));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port, proxy) => {
      for (let i = 0; i < 3; i++) {
        const r = await request(port, "/cgi-bin/x");
        assert.equal(r.status, 200, r.body);
        assert.equal(r.body, "hello from cgi\n");
      }
      // Not ejected: the instance is still a target.
      assert.equal(proxy.table.services.get("web")?.targets.length, 1);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy answers 502 with the parse error, not ECONNRESET, for a head cut off by close", async () => {
  const b = await rawBackend(() => ({ wire: "HTTP/1.1 200 OK\r\nX-Half: y", close: true }));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await request(port, "/");
      assert.equal(r.status, 502);
      assert.match(r.body, /instance web-a sent an invalid response \(connection closed inside/);
      assert.doesNotMatch(r.body, /ECONNRESET/);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy writes the request head the instance expects", async () => {
  const b = await rawBackend(() => ({ wire: "HTTP/1.1 204 No Content\r\n\r\n" }));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await request(port, "/p?q=1", { headers: { "x-b": "é" } });
      assert.equal(r.status, 204);
      const head = b.heads[0]!;
      assert.match(head, /^GET \/p\?q=1 HTTP\/1\.1\r\n/);
      assert.match(head, /\r\nhost: web\.test\r\n/i);
      assert.match(head, /\r\nx-forwarded-for: 127\.0\.0\.1\r\n/);
      assert.doesNotMatch(head, /\r\nconnection:/i);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy keeps the framing and Host whatever Connection names", async () => {
  const b = await rawBackend(() => ({ wire: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" }));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const smuggled = "GET /admin HTTP/1.1\r\nHost: web.test\r\n\r\n";
      const r = await rawClient(
        port,
        "POST /public HTTP/1.1\r\nHost: web.test\r\nConnection: content-length, host\r\n" +
          `Content-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
        { until: (got) => got.endsWith("ok") },
      );
      assert.match(r.received, /^HTTP\/1\.1 200 /);
      const head = b.heads[0]!;
      assert.match(head, /^POST \/public HTTP\/1\.1\r\n/);
      assert.match(head, new RegExp(`\\r\\ncontent-length: ${smuggled.length}(\\r\\n|$)`, "i"));
      assert.match(head, /\r\nhost: web\.test(\r\n|$)/i);
      const te = await rawClient(
        port,
        "POST /te HTTP/1.1\r\nHost: web.test\r\nConnection: transfer-encoding\r\n" +
          "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        { until: (got) => got.endsWith("ok") },
      );
      assert.match(te.received, /^HTTP\/1\.1 200 /);
      const teHead = b.heads.find((h) => h.startsWith("POST /te "))!;
      assert.match(teHead, /\r\ntransfer-encoding: chunked(\r\n|$)/i);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy answers a client that half-closes after its requests, then closes", async () => {
  const b = await rawBackend(() => ({ wire: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" }));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const one = await rawClient(
        port,
        "POST /order HTTP/1.1\r\nHost: web.test\r\nContent-Length: 2\r\n\r\nhi",
        { end: true },
      );
      assert.equal(one.closed, true);
      assert.match(one.received, /^HTTP\/1\.1 200 [^]*\r\n\r\nok$/);
      const two = await rawClient(
        port,
        "GET /a HTTP/1.1\r\nHost: web.test\r\n\r\nGET /b HTTP/1.0\r\nHost: web.test\r\n\r\n",
        { end: true },
      );
      assert.equal(two.closed, true);
      assert.equal(two.received.match(/HTTP\/1\.1 200 /g)?.length, 2);
      const idle = await rawClient(port, "", { end: true });
      assert.deepEqual(idle, { received: "", closed: true });
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy drops the instance's connection when a chunked body goes over bodyBytesMax", async () => {
  // An instance that reads the body and waits for the rest of it, never answering.
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((resolve) => upstreamClosed = resolve);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.resume();
    s.once("close", upstreamClosed);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: (server.address() as net.AddressInfo).port }));
  try {
    await withProxy(ts, { bodyBytesMax: 1000 }, async (port) => {
      const chunk = `400\r\n${"x".repeat(1024)}\r\n`;
      const s = net.connect(port, "127.0.0.1");
      s.on("error", () => {});
      let received = "";
      s.on("data", (d: Buffer) => received += d.toString("latin1"));
      s.write("POST /up HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n");
      await new Promise<void>((resolve) => server.once("connection", () => resolve()));
      s.write(chunk + chunk);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const gone = await Promise.race([
        closed.then(() => true),
        new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 5_000)),
      ]);
      clearTimeout(timer);
      s.destroy();
      assert.equal(gone, true, "the instance's connection was closed");
      assert.match(received, /^HTTP\/1\.1 413 /);
    });
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
