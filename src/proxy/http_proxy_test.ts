import assert from "node:assert/strict";
import net from "node:net";
import {
  type Backend,
  rawBackend,
  request,
  spec,
  startBackend,
  TestStore,
  withProxy,
} from "./_testing.ts";
import { unusedPort } from "../../test/ports.ts";
import { HttpProxy } from "./http_proxy.ts";

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
      const before = proxy.table.services.get("web");
      const inFlight = request(port, "/");
      await started.promise;
      ts.deregister("web-slow");
      ts.register(spec({ id: "web-fast", port: fast.port }));
      assert.notEqual(proxy.table.services.get("web"), before);
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

Deno.test("HttpProxy sends a request again on a new connection to the same instance when a reused one is found closed", async () => {
  // Keep-alive answers, but a second request on a connection closes it unanswered (an idle
  // timeout firing as the request arrives): every reused connection is found closed.
  const b = await rawBackend((_head, n) =>
    n === 0 ? { wire: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" } : { wire: "", close: true }
  );
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  const logs: string[] = [];
  try {
    await withProxy(ts, { log: (l) => logs.push(l), failuresMax: 1 }, async (port) => {
      for (let i = 0; i < 10; i++) {
        const r = await request(port, `/${i}`);
        assert.equal(r.status, 200, `request ${i}: ${r.body}`);
        assert.equal(r.body, "ok");
      }
      assert.equal(b.heads.length, 19, "requests 2 to 10 each went twice: reused, then new");
      assert.equal(b.connections, 10);
      // A POST the instance may have read is not sent again (one try, 502)...
      const post = await request(port, "/charge", { method: "POST", body: "x" });
      assert.equal(post.status, 502);
      assert.match(post.body, /bad gateway: service web: instance web-a: ECONNRESET/);
      assert.equal(b.heads.filter((h) => h.startsWith("POST")).length, 1);
      // ...and neither it nor the stale connections count against the instance.
      assert.equal((await request(port, "/after")).status, 200);
      assert.deepEqual(logs.filter((l) => /ejected/.test(l)), []);
    });
  } finally {
    await b.close();
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

/** Whether a TCP connection to 127.0.0.1:`port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const c = net.connect(port, "127.0.0.1", () => {
      c.destroy();
      resolve(false);
    });
    c.on("error", () => resolve(true));
  });
}

Deno.test("HttpProxy.close() during start() leaves nothing listening", async (t) => {
  for (const when of ["before the routes build", "while the routes build"]) {
    await t.step(when, async () => {
      const ts = new TestStore();
      for (let k = 0; k < 5; k++) ts.register(spec({ id: `web-${k}`, port: 1000 + k }));
      const port = await unusedPort();
      const tcpPort = await unusedPort();
      ts.register(spec({ id: "db", service: "db", port: 1000, tcpPort, httpHosts: [] }));
      const firstPage = Promise.withResolvers<void>();
      const page = ts.store.instancesPage.bind(ts.store);
      ts.store.instancesPage = (after, limit) => (firstPage.resolve(), page(after, limit));
      const proxy = new HttpProxy({
        source: ts.store,
        listen: { host: "127.0.0.1", port },
        edgeDomain: null,
        routeSliceSize: 2, // the build takes several turns of the event loop
        log: () => {},
      });
      try {
        const starting = proxy.start();
        if (when === "while the routes build") await firstPage.promise;
        await proxy.close();
        await starting;
        assert.ok(await refused(port), "the proxy's port");
        assert.ok(await refused(tcpPort), "the TCP route's port");
      } finally {
        await proxy.close();
        ts.store.close();
      }
    });
  }
});
