// HttpProxy's request records (request_record.ts): one per request, whatever answered it.
import assert from "node:assert/strict";
import net from "node:net";
import type { RequestObserver, RequestRecord } from "./request_record.ts";
import { rawClient, request, spec, startBackend, TestStore, withProxy } from "./_testing.ts";
import { h2Connect, h2Request, withH2Proxy } from "./_h2_testing.ts";
import { unusedPort } from "../../test/ports.ts";
import { waitFor } from "../../test/wait.ts";

/** An observer keeping what it is told; `next(n)` resolves once n records arrived. */
function observer() {
  const begun: (string | null)[] = [];
  const records: RequestRecord[] = [];
  let waiting: { n: number; resolve: () => void } | null = null;
  const o: RequestObserver = {
    begin: (service) => begun.push(service),
    end: (r) => {
      records.push({ ...r, rawHeaders: [...r.rawHeaders] });
      if (waiting !== null && records.length >= waiting.n) waiting.resolve();
    },
  };
  const count = (n: number) =>
    records.length >= n ? Promise.resolve() : new Promise<void>((resolve) => {
      waiting = { n, resolve };
    });
  return { o, begun, records, count };
}

Deno.test("HttpProxy records a forwarded request: status, bytes, service, route, instance, id", async () => {
  const a = await startBackend("a", (req, res) => {
    req.resume();
    req.on("end", () => res.end("0123456789"));
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  const { o, begun, records, count } = observer();
  try {
    await withProxy(ts, { observers: [o], member: "node-1" }, async (port) => {
      const r = await request(port, "/p?q=1", {
        method: "POST",
        body: "hello",
        headers: { "user-agent": "t/1" },
      });
      await count(1);
      const rec = records[0]!;
      assert.deepEqual(begun, ["web"]);
      assert.equal(rec.member, "node-1");
      assert.equal(rec.client, "127.0.0.1");
      assert.equal(rec.method, "POST");
      assert.equal(rec.host, "web.test");
      assert.equal(rec.path, "/p?q=1");
      assert.equal(rec.proto, "HTTP/1.1");
      assert.equal(rec.status, 200);
      assert.equal(rec.bytesIn, 5);
      assert.equal(rec.bytesOut, 10);
      assert.equal(rec.service, "web");
      assert.equal(rec.route, "web.test/");
      assert.equal(rec.instance, "web-a");
      assert.equal(rec.attempts, 1);
      assert.equal(rec.requestId, r.headers["x-request-id"]);
      assert.equal(rec.tlsVersion, null);
      assert.equal(rec.sni, null);
      assert.ok(rec.durationMs >= 0 && rec.time > 0);
      assert.ok(rec.rawHeaders.includes("t/1"));
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy records its own answers: 404 (no service), 503, 413, 502 after retries", async () => {
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: await unusedPort() }));
  ts.register(spec({ id: "web-b", port: await unusedPort() }));
  ts.register(spec({ id: "down-a", port: 1, service: "down", httpHosts: ["down.test"] }));
  ts.check("down-a", "critical");
  const { o, begun, records, count } = observer();
  try {
    await withProxy(ts, { observers: [o], bodyBytesMax: 10 }, async (port) => {
      assert.equal((await request(port, "/", { host: "nope.test" })).status, 404);
      assert.equal((await request(port, "/", { host: "down.test" })).status, 503);
      const big = await rawClient(
        port,
        "POST / HTTP/1.1\r\nHost: web.test\r\nContent-Length: 100\r\n\r\n",
      );
      assert.match(big.received, /^HTTP\/1\.1 413 /);
      assert.equal((await request(port, "/")).status, 502);
      await count(4);
      assert.deepEqual(records.map((r) => [r.status, r.service, r.route]), [
        [404, null, null],
        [503, "down", "down.test/"],
        [413, "web", "web.test/"],
        [502, "web", "web.test/"],
      ]);
      assert.deepEqual(begun, [null, "down", "web", "web"]);
      assert.equal(records[3]!.attempts, 2);
      assert.ok(["web-a", "web-b"].includes(records[3]!.instance ?? ""));
    });
  } finally {
    // withProxy closed the store.
  }
});

Deno.test("HttpProxy records 499 when the client goes away before the response", async () => {
  const arrived = Promise.withResolvers<void>();
  const a = await startBackend("a", () => arrived.resolve()); // never answers
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  const { o, records, count } = observer();
  try {
    await withProxy(ts, { observers: [o] }, async (port) => {
      const c = net.connect(port, "127.0.0.1");
      c.on("error", () => {});
      c.write("GET /slow HTTP/1.1\r\nHost: web.test\r\n\r\n");
      await arrived.promise;
      c.resetAndDestroy(); // a half-close would still be answered
      await count(1);
      assert.equal(records[0]!.status, 499);
      assert.equal(records[0]!.path, "/slow");
      assert.equal(records[0]!.instance, "web-a");
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy records an Upgrade request when its tunnel closes (101) and a refused one", async () => {
  const a = await startBackend("a", undefined, (_req, socket) => {
    socket.end("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  const { o, records, count } = observer();
  const wire = (host: string) =>
    `GET /ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`;
  try {
    await withProxy(ts, { observers: [o] }, async (port) => {
      assert.match((await rawClient(port, wire("web.test"))).received, /^HTTP\/1\.1 101 /);
      await count(1);
      assert.match((await rawClient(port, wire("nope.test"))).received, /^HTTP\/1\.1 404 /);
      await count(2);
      assert.deepEqual(records.map((r) => [r.status, r.service, r.instance, r.attempts]), [
        [101, "web", "web-a", 1],
        [404, null, null, 0],
      ]);
      assert.ok(records[0]!.bytesOut > 0);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy records HTTP/2 requests with their TLS version and server name", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  const { o, records, count } = observer();
  try {
    await withH2Proxy(ts, { observers: [o] }, async (port) => {
      const client = h2Connect(port);
      try {
        const r = await h2Request(client, { ":path": "/h2", ":authority": "web.test" });
        assert.equal(r.status, 200);
        await count(1);
        const rec = records[0]!;
        assert.equal(rec.proto, "HTTP/2");
        assert.equal(rec.status, 200);
        assert.equal(rec.host, "web.test");
        assert.equal(rec.sni, "web.test");
        assert.match(rec.tlsVersion ?? "", /^TLSv1\.[23]$/);
        assert.equal(rec.requestId, r.headers["x-request-id"]);
        assert.equal(rec.bytesOut, r.body.length);
      } finally {
        client.close();
      }
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy goes on when an observer throws: the others still get the record", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  const { o, records, count } = observer();
  const bad: RequestObserver = {
    end: () => {
      throw new Error("observer bug");
    },
  };
  try {
    await withProxy(ts, { observers: [bad, o] }, async (port) => {
      assert.equal((await request(port, "/")).status, 200);
      await count(1);
      assert.equal(records[0]!.status, 200);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy records 408 when an HTTP/2 request body idles out", async () => {
  const a = await startBackend("a", () => {}); // reads nothing, answers nothing
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  const { o, records, count } = observer();
  try {
    await withH2Proxy(ts, { observers: [o], requestTimeoutMs: 200 }, async (port) => {
      const client = h2Connect(port);
      try {
        const req = client.request({
          ":method": "POST",
          ":path": "/upload",
          ":authority": "web.test",
        });
        req.on("error", () => {});
        const status = new Promise<number>((resolve) =>
          req.on("response", (h) => resolve(Number(h[":status"])))
        );
        req.write("a part of the body, and no more");
        assert.equal(await status, 408);
        await count(1);
        assert.equal(records[0]!.status, 408);
        assert.equal(records[0]!.path, "/upload");
      } finally {
        client.close();
      }
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy records HEAD, 204 and 304 answers with 0 body bytes (none were sent)", async () => {
  const a = await startBackend("a", (req, res) => {
    req.resume();
    if (req.url === "/204") res.writeHead(204).end();
    else res.end("0123456789");
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  const { o, records, count } = observer();
  try {
    await withProxy(ts, { observers: [o] }, async (port) => {
      await request(port, "/", { method: "HEAD" });
      await rawClient(port, "HEAD / HTTP/1.1\r\nHost: nope.test\r\nConnection: close\r\n\r\n");
      await request(port, "/204");
      await request(port, "/");
      await count(4);
      assert.deepEqual(records.map((r) => [r.method, r.status, r.bytesOut]), [
        ["HEAD", 200, 0],
        ["HEAD", 404, 0],
        ["GET", 204, 0],
        ["GET", 200, 10],
      ]);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy records the 417 and Host 400 the connection answers after a whole head", async () => {
  const ts = new TestStore();
  const { o, begun, records } = observer();
  await withProxy(ts, { observers: [o] }, async (port) => {
    const e = await rawClient(port, "GET /e HTTP/1.1\r\nHost: web.test\r\nExpect: foo\r\n\r\n");
    assert.match(e.received, /^HTTP\/1\.1 417 /);
    const h = await rawClient(port, "GET /h HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n");
    assert.match(h.received, /^HTTP\/1\.1 400 /);
    await waitFor("both records", () => records.length === 2);
    assert.deepEqual(records.map((r) => [r.path, r.status, r.service, r.bytesOut > 0]), [
      ["/e", 417, null, true],
      ["/h", 400, null, true],
    ]);
    assert.deepEqual(begun, [null, null]);
  });
});

Deno.test("HttpProxy measures a request's duration on the monotonic clock (a wall-clock step back)", async () => {
  const realNow = Date.now;
  const a = await startBackend("a", (req, res) => {
    req.resume();
    Date.now = () => realNow() - 3_600_000; // NTP stepped the clock back an hour
    res.end("ok");
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  const { o, records, count } = observer();
  try {
    await withProxy(ts, { observers: [o] }, async (port) => {
      await request(port, "/");
      await count(1);
      Date.now = realNow;
      const d = records[0]!.durationMs;
      assert.ok(d >= 0 && d < 3_600_000, `duration ${d}`);
    });
  } finally {
    Date.now = realNow;
    await a.close();
  }
});
