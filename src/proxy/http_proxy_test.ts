import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import {
  type Backend,
  rawBackend,
  rawClient,
  request,
  spec,
  startBackend,
  TestStore,
  withProxy,
} from "./_testing.ts";
import { unusedPort } from "../../test/ports.ts";

async function closeAll(bs: Backend[]): Promise<void> {
  await Promise.all(bs.map((b) => b.close()));
}

Deno.test("HttpProxy forwards round robin with X-Forwarded-* headers", async () => {
  const a = await startBackend("a");
  const b = await startBackend("b");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  ts.register(spec({ id: "web-b", port: b.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const bodies: string[] = [];
      for (let i = 0; i < 4; i++) bodies.push((await request(port, `/p${i}`)).body);
      assert.deepEqual(bodies, ["a /p0", "b /p1", "a /p2", "b /p3"]);
      const r = await request(port, "/x", {
        host: "WEB.test:8080",
        headers: {
          "x-forwarded-for": "10.1.2.3",
          "connection": "keep-alive, x-secret",
          "x-secret": "1",
        },
      });
      assert.equal(r.status, 200);
      const seen = [...a.seen, ...b.seen].find((h) => h["x-forwarded-host"] === "WEB.test:8080")!;
      assert.equal(seen["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
      assert.equal(seen["x-forwarded-proto"], "http");
      assert.equal(seen["x-forwarded-host"], "WEB.test:8080");
      assert.equal(seen.host, "WEB.test:8080");
      assert.equal(seen["x-secret"], undefined, "headers named by Connection are hop-by-hop");
    });
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("HttpProxy passes a berth.http.path prefix through to the instance, not stripped", async () => {
  const a = await startBackend("api");
  const ts = new TestStore();
  ts.register(spec({ id: "api-a", service: "api", port: a.port, httpHosts: [], httpPath: "/api" }));
  try {
    await withProxy(ts, {}, async (port) => {
      assert.equal((await request(port, "/api")).body, "api /api");
      assert.equal((await request(port, "/api/v1/x?q=1")).body, "api /api/v1/x?q=1");
      assert.equal((await request(port, "/apix")).status, 404);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy answers 404 without a route and 503 without a passing instance", async () => {
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: 1, checkResult: { status: "critical", output: "" } }));
  await withProxy(ts, { edgeDomain: "edge.test." }, async (port) => {
    const none = await request(port, "/", { host: "nothing.test" });
    assert.equal(none.status, 404);
    assert.match(none.body, /no route for nothing\.test\//);
    for (const host of ["web.test", "web.edge.test"]) {
      const r = await request(port, "/", { host });
      assert.equal(r.status, 503);
      assert.equal(r.body, "no healthy instance of service web\n");
      assert.match(String(r.headers["content-type"]), /^text\/plain/);
    }
  });
});

Deno.test("HttpProxy answers 502 naming the service when the only instance is down", async () => {
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: await unusedPort() }));
  await withProxy(ts, {}, async (port) => {
    const r = await request(port, "/");
    assert.equal(r.status, 502);
    assert.match(r.body, /bad gateway: service web: instance web-a: ECONNREFUSED/);
  });
});

Deno.test("HttpProxy retries another instance when one refuses connections, then ejects it", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  ts.register(spec({ id: "web-b", port: await unusedPort() }));
  const logs: string[] = [];
  try {
    await withProxy(ts, { log: (l) => logs.push(l), failuresMax: 2 }, async (port) => {
      for (let i = 0; i < 6; i++) {
        const post = i % 2 === 1;
        const r = await request(port, "/", {
          method: post ? "POST" : "GET",
          body: post ? "x" : undefined,
        });
        assert.equal(r.status, 200);
        assert.equal(r.body, "a /");
      }
      assert.equal(logs.filter((l) => /instance web-b .* ejected/.test(l)).length, 1);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy streams request bodies to the instance", async () => {
  const a = await startBackend("a", (req, res) => {
    let n = 0;
    req.on("data", (d: Uint8Array) => n += d.length);
    req.on("end", () => res.end(`got ${n}`));
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, { bodyBytesMax: 100_000 }, async (port) => {
      const r = await request(port, "/upload", { method: "POST", body: "z".repeat(70_000) });
      assert.equal(r.body, "got 70000");
      const big = await request(port, "/upload", { method: "POST", body: "z".repeat(100_001) });
      assert.equal(big.status, 413);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy answers 504 when the instance sends no response in time", async () => {
  const a = await startBackend("a", () => {/* never answers */});
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, { responseTimeoutMs: 50 }, async (port) => {
      const r = await request(port, "/");
      assert.equal(r.status, 504);
      assert.match(r.body, /gateway timeout: service web: instance web-a/);
      const post = await request(port, "/", { method: "POST", body: "payload" });
      assert.equal(post.status, 504);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy reuses pooled upstream connections", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      for (let i = 0; i < 10; i++) assert.equal((await request(port, "/")).status, 200);
      assert.equal(a.connections, 1);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy finishes an in-flight request after its instance is deregistered", async () => {
  let release = () => {};
  const started = Promise.withResolvers<void>();
  const slow = await startBackend("slow", (req, res) => {
    req.resume();
    started.resolve();
    release = () => res.end("slow done");
  });
  const fast = await startBackend("fast");
  const ts = new TestStore();
  ts.register(spec({ id: "web-slow", port: slow.port }));
  try {
    await withProxy(ts, {}, async (port, proxy) => {
      const before = proxy.table;
      const inFlight = request(port, "/");
      await started.promise;
      ts.deregister("web-slow");
      ts.register(spec({ id: "web-fast", port: fast.port }));
      assert.notEqual(proxy.table, before);
      assert.equal((await request(port, "/")).body, "fast /");
      release();
      const r = await inFlight;
      assert.equal(r.status, 200);
      assert.equal(r.body, "slow done");
      assert.equal((await request(port, "/")).body, "fast /");
    });
  } finally {
    await closeAll([slow, fast]);
  }
});

Deno.test("HttpProxy follows check status changes from the change feed", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      assert.equal((await request(port, "/")).status, 200);
      ts.check("web-a", "critical");
      assert.equal((await request(port, "/")).status, 503);
      ts.check("web-a", "passing");
      assert.equal((await request(port, "/")).status, 200);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy tunnels Upgrade requests both ways", async () => {
  const seen = Promise.withResolvers<Record<string, string | string[] | undefined>>();
  // The backend accepts the upgrade and echoes bytes back upper-cased.
  const a = await startBackend("a", undefined, (req, socket, head) => {
    seen.resolve(req.headers);
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    );
    if (head.length > 0) socket.write(head.toString().toUpperCase());
    socket.on("data", (d: Buffer) => socket.write(d.toString().toUpperCase()));
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const text = await new Promise<string>((resolve, reject) => {
        const c = net.connect(port, "127.0.0.1", () => {
          c.write(
            "GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello ",
          );
        });
        let got = "";
        let sent = false;
        c.on("data", (d) => {
          got += d;
          if (!sent && got.includes("\r\n\r\n")) {
            sent = true;
            c.write("world");
          }
          if (got.includes("HELLO") && got.includes("WORLD")) {
            c.destroy();
            resolve(got);
          }
        });
        c.on("error", reject);
      });
      assert.match(text, /^HTTP\/1\.1 101 /);
      const h = await seen.promise;
      assert.equal(h["x-forwarded-host"], "web.test");
      assert.equal(h["x-forwarded-for"], "127.0.0.1");
      assert.equal(h.upgrade, "echo");
    });
  } finally {
    await a.close();
  }
});

/** Sends an Upgrade request and returns everything the proxy sends until it closes. */
function upgradeReply(port: number, host: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const c = net.connect(port, "127.0.0.1", () => {
      c.write(`GET /ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`);
    });
    let got = "";
    c.on("data", (d) => got += d);
    c.on("end", () => {
      c.destroy();
      resolve(got);
    });
    c.on("error", reject);
  });
}

Deno.test("HttpProxy answers an Upgrade request with 404 or 502 when it cannot tunnel", async () => {
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: await unusedPort() }));
  await withProxy(ts, {}, async (port) => {
    assert.match(
      await upgradeReply(port, "nope.test"),
      /^HTTP\/1\.1 404 [^]*no route for nope\.test\/ws/,
    );
    assert.match(
      await upgradeReply(port, "web.test"),
      /^HTTP\/1\.1 502 [^]*bad gateway: service web: instance web-a: ECONNREFUSED/,
    );
  });
});

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

Deno.test("HttpProxy closes connections over connectionsMax", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, { connectionsMax: 1 }, async (port) => {
      const held = net.connect(port, "127.0.0.1");
      await new Promise((resolve) => held.once("connect", resolve));
      // The proxy counts the held connection once it accepts it; a request after it is refused.
      let refused = false;
      for (let i = 0; i < 50 && !refused; i++) {
        refused = await request(port, "/").then(() => false, () => true);
      }
      held.destroy();
      assert.equal(refused, true);
      // With the held connection gone, requests go through again.
      let ok = false;
      for (let i = 0; i < 50 && !ok; i++) {
        ok = await request(port, "/").then((r) => r.status === 200, () => false);
      }
      assert.equal(ok, true);
    });
  } finally {
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

Deno.test("HttpProxy retries on a fresh connection when the instance closed a pooled one", async () => {
  // Answers as keep-alive, then closes the connection a moment later, so the proxy's pooled
  // connection is sometimes dead (or dying) when the next request takes it.
  const b = await rawBackend(() => ({
    wire: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    close: true,
  }));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      for (let i = 0; i < 20; i++) {
        const r = await request(port, `/${i}`);
        assert.equal(r.status, 200);
        assert.equal(r.body, "ok");
      }
      assert.equal(b.connections >= 20, true, "every request needed a new connection");
    });
  } finally {
    await b.close();
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

Deno.test("HttpProxy never replays a non-idempotent request the instance may have received", async () => {
  // Instances that answer GETs keep-alive, and close the connection on reading a POST.
  const reply = (head: string) =>
    head.startsWith("POST")
      ? { wire: "", close: true }
      : { wire: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" };
  const a = await rawBackend(reply);
  const b = await rawBackend(reply);
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  ts.register(spec({ id: "web-b", port: b.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      // Warm both pools so the POST goes out on a reused connection.
      for (let i = 0; i < 50 && (a.connections === 0 || b.connections === 0); i++) {
        assert.equal((await request(port, "/warm")).status, 200);
      }
      const posted = () => [...a.heads, ...b.heads].filter((h) => h.startsWith("POST")).length;
      const r = await request(port, "/charge", { method: "POST", body: "" });
      assert.equal(r.status, 502);
      assert.equal(posted(), 1);
    });
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("HttpProxy forwards a refused upgrade as a plain response and closes, no tunnel", async () => {
  const b = await rawBackend(() => ({
    wire: "HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nno",
  }));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await rawClient(
        port,
        "GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" +
          "GET /internal HTTP/1.1\r\nHost: other.internal\r\n\r\n",
      );
      assert.equal(r.closed, true);
      assert.match(r.received, /^HTTP\/1\.1 400 Bad Request\r\n/);
      assert.match(r.received, /\r\nconnection: close\r\n/);
      assert.doesNotMatch(r.received, /keep-alive/i);
      assert.match(r.received, /\r\n\r\nno$/);
      assert.deepEqual(b.heads.map((h) => h.split("\r\n")[0]), ["GET /ws HTTP/1.1"]);
    });
  } finally {
    await b.close();
  }
});
