import assert from "node:assert/strict";
import type http from "node:http";
import net from "node:net";
import { request, spec, startBackend, TestStore } from "../_testing.ts";
import { waitFor } from "../../../test/wait.ts";
import { unusedPort } from "../../../test/ports.ts";
import { ProxyWorkers } from "./proxy_workers.ts";
import { get, twoWorkers, withWorkers } from "./_testing.ts";

Deno.test("ProxyWorkers: two workers serve one port from the store's routes, and follow their changes", async () => {
  const a = await startBackend("a");
  const b = await startBackend("b");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withWorkers(ts, async (port, w) => {
      for (let i = 0; i < 10; i++) assert.equal(await get(port, "/x"), "200 a /x");
      ts.deregister("web-a");
      ts.register(spec({ id: "web-b", port: b.port }));
      // Each of several connections (spread over both workers) sees the new route.
      await waitFor("both workers route to b", async () => {
        const got = await Promise.all(Array.from({ length: 10 }, () => get(port, "/y")));
        return got.every((g) => g === "200 b /y");
      });
      const report = await w.report();
      assert.deepEqual(report.http.map((r) => [r.host, r.service, r.targets]), [[
        "web.test",
        "web",
        1,
      ]]);
      assert.equal(report.listen, `127.0.0.1:${port}`);
      assert.equal((await w.reports()).length, 2);
    });
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("ProxyWorkers: a request under way when its route changes completes on the route it started with", async () => {
  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  const a = await startBackend("a", (req, res) => {
    req.resume();
    void held.then(() => res.end(`a ${req.url}`));
  });
  const b = await startBackend("b");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withWorkers(ts, async (port) => {
      const slow = get(port, "/slow");
      await waitFor("a has the request", () => a.seen.length === 1);
      ts.deregister("web-a");
      ts.register(spec({ id: "web-b", port: b.port }));
      await waitFor("the new route serves", async () => (await get(port, "/n")) === "200 b /n");
      release();
      assert.equal(await slow, "200 a /slow");
    });
  } finally {
    release();
    await a.close();
    await b.close();
  }
});

Deno.test("ProxyWorkers: killing a worker closes its clients' connections, the other serves at once, the worker comes back", async () => {
  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  const slowB = await startBackend("a", (req, res) => {
    req.resume();
    if (req.url === "/slow") void held.then(() => res.end("late"));
    else res.end(`a ${req.url}`);
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: slowB.port }));
  try {
    await withWorkers(ts, async (port, w, logs) => {
      // 16 connections: the kernel spreads them over both workers (by source port).
      const slow = Array.from({ length: 16 }, () => get(port, "/slow"));
      await waitFor(
        "every slow request reached the backend",
        () => slowB.seen.filter((h) => h.host === "web.test").length >= 16,
      );
      w.kill(0);
      const ended: string[] = [];
      slow.forEach((p) => void p.then((r) => ended.push(r)));
      await waitFor("the killed worker's clients see their connection end", () => ended.length > 0);
      // The listener never went away: a new connection goes to the other worker.
      assert.equal(await get(port, "/now"), "200 a /now");
      await waitFor("the worker is started again", () => w.running === 2);
      for (const r of ended) assert.match(r, /^error (ECONNRESET|socket hang up)/);
      assert.ok(
        logs.some((l) =>
          /^proxy: worker 0 stopped \(killed\); starting it again in 50 ms$/.test(l)
        ),
        logs.join("\n"),
      );
      const killed = ended.length;
      release();
      const all = await Promise.all(slow);
      assert.equal(all.filter((r) => r.startsWith("error")).length, killed, all.join("\n"));
      assert.equal(all.filter((r) => r === "200 late").length, 16 - killed, all.join("\n"));
      assert.ok(killed < 16, "the other worker's requests completed");
      for (let i = 0; i < 6; i++) assert.equal(await get(port, "/after"), "200 a /after");
    });
  } finally {
    release();
    await slowB.close();
  }
});

Deno.test("ProxyWorkers: malformed requests on every worker are answered or closed, no worker fails", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  const wires = [
    "GARBAGE\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: web.test\r\nContent-Length: -1\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    `GET /${"a".repeat(70_000)} HTTP/1.1\r\n\r\n`,
    "\x00\xff\r\n\r\n\r\n",
  ];
  try {
    await withWorkers(ts, async (port, w, logs) => {
      // Each wire on 8 connections: both workers get each kind.
      const ends = await Promise.all(
        wires.flatMap((wire) =>
          Array.from({ length: 8 }, () =>
            new Promise<string>((resolve) => {
              const s = net.connect(port, "127.0.0.1", () => s.end(wire, "latin1"));
              let got = "";
              s.on("data", (d) => got += d.toString("latin1"));
              s.on("error", () => resolve("reset"));
              s.on("close", () => resolve(got.split("\r\n")[0] ?? ""));
            }))
        ),
      );
      for (const e of ends) assert.match(e, /^(HTTP\/1\.1 4\d\d |reset$|$)/, e);
      assert.ok(ends.some((e) => e.startsWith("HTTP/1.1 400")));
      assert.equal(w.running, 2);
      assert.ok(!logs.some((l) => l.includes("stopped")), logs.join("\n"));
      for (let i = 0; i < 6; i++) assert.equal((await request(port, "/ok")).body, "a /ok");
    });
  } finally {
    await a.close();
  }
});

Deno.test("ProxyWorkers: an ejection in one worker is applied by every worker and reported", async () => {
  const a = await startBackend("a");
  const refused = net.createServer();
  await new Promise<void>((r) => refused.listen(0, "127.0.0.1", r));
  const deadPort = (refused.address() as net.AddressInfo).port;
  await new Promise<void>((r) => refused.close(() => r())); // now refuses connections
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  ts.register(spec({ id: "web-dead", port: deadPort }));
  try {
    await withWorkers(ts, async (port, w, logs) => {
      await waitFor("web-dead ejected", async () => {
        assert.equal(await get(port, "/"), "200 a /"); // retried on web-a
        return logs.some((l) => l.includes("instance web-dead") && l.includes("ejected"));
      });
      const reports = await w.reports();
      assert.equal(reports.length, 2);
      for (const r of reports) {
        assert.deepEqual(r.ejected.map((e) => [e.instance, e.port]), [["web-dead", deadPort]]);
      }
      const merged = await w.report();
      assert.deepEqual(merged.ejected.map((e) => e.instance), ["web-dead"]);
    });
  } finally {
    await a.close();
  }
});

/** Whether a new connection to `port` is refused (a bare connect: no request is sent). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

/** A backend that holds each request until `release()`; `arrived` resolves with the first. */
async function heldBackend() {
  const arrived = Promise.withResolvers<void>();
  const held: http.ServerResponse[] = [];
  const b = await startBackend("held", (req, res) => {
    req.resume();
    held.push(res);
    arrived.resolve();
  });
  return Object.assign(b, {
    arrived: arrived.promise,
    release: () => {
      for (const res of held.splice(0)) res.end("held");
    },
  });
}

Deno.test("ProxyWorkers.drain() lets a request under way in a worker finish", async () => {
  const b = await heldBackend();
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withWorkers(ts, async (port, w) => {
      const answer = get(port, "/x");
      await b.arrived;
      let drained: number | null = null;
      const draining = w.drain(60_000).then((n) => drained = n);
      await waitFor("every worker's listener closed", async () => {
        for (let i = 0; i < 5; i++) if (!await refused(port)) return false;
        return true;
      });
      assert.equal(drained, null, "the drain waits for the request");
      b.release();
      assert.equal(await answer, "200 held");
      await draining;
      assert.equal(drained, 0);
    });
  } finally {
    await b.close();
  }
});

Deno.test("ProxyWorkers.drain() counts a request its timeout cut in a worker", async () => {
  const b = await heldBackend(); // never released
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withWorkers(ts, async (port, w) => {
      const answer = get(port, "/x");
      await b.arrived;
      assert.equal(await w.drain(200), 1);
      assert.match(await answer, /^error /);
    });
  } finally {
    await b.close();
  }
});

/** Two workers on 127.0.0.1:`port`, plain HTTP only, not started. */
function twoWorkersOn(ts: TestStore, port: number): ProxyWorkers {
  return new ProxyWorkers({
    count: 2,
    store: ts.store,
    config: {
      listen: { host: "127.0.0.1", port },
      https: null,
      h2: false,
      edgeDomain: null,
      reserved: [],
    },
    certs: () => [],
    log: () => {},
  });
}

Deno.test("ProxyWorkers.start() rejects with the listen error when the port is taken, leaving no worker", async () => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
  const port = (taken.address() as net.AddressInfo).port;
  const ts = new TestStore();
  const w = twoWorkersOn(ts, port);
  try {
    await assert.rejects(
      w.start(),
      new RegExp(`^Error: proxy: cannot listen on 127\\.0\\.0\\.1:${port}: .*--proxy-http`),
    );
    assert.equal(w.running, 0);
  } finally {
    await w.close();
    ts.store.close();
    await new Promise<void>((r) => taken.close(() => r()));
  }
});

Deno.test("ProxyWorkers: a TCP route listens in every worker and relays; its removal closes it in all", async () => {
  const echo = net.createServer((c) => c.on("data", (d) => c.end(`echo:${d}`)));
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  const echoPort = (echo.address() as net.AddressInfo).port;
  const tcpPort = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({ id: "db-a", service: "db", port: echoPort, tcpPort, httpHosts: [] }));
  const exchange = (msg: string) =>
    new Promise<string>((resolve) => {
      const c = net.connect(tcpPort, "127.0.0.1", () => c.write(msg));
      let got = "";
      c.on("data", (d) => got += d);
      c.on("close", () => resolve(got));
      c.on("error", (e: Error & { code?: string }) => resolve(`error ${e.code}`));
    });
  try {
    await withWorkers(ts, async (_port, w) => {
      await waitFor("both workers listen on the route's port", async () => {
        const reports = await w.reports();
        return reports.length === 2 &&
          reports.every((r) => r.tcp.length === 1 && r.tcp[0]!.state === "listening");
      });
      const got = await Promise.all(Array.from({ length: 12 }, (_, i) => exchange(`m${i}`)));
      assert.deepEqual(got, Array.from({ length: 12 }, (_, i) => `echo:m${i}`));
      ts.deregister("db-a");
      await waitFor("the port closed in every worker", async () => {
        const ends = await Promise.all(Array.from({ length: 6 }, () => exchange("x")));
        return ends.every((e) => e === "error ECONNREFUSED");
      });
      assert.deepEqual((await w.report()).tcp, []);
    });
  } finally {
    await new Promise<void>((r) => echo.close(() => r()));
  }
});

Deno.test("ProxyWorkers: a route conflict is logged by one worker, not by each", async () => {
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: 1 }));
  ts.register(spec({ id: "other-a", service: "other", port: 2 }));
  await withWorkers(ts, (_port, _w, logs) => {
    // Both workers are ready, so each has built its table (its messages come in order).
    const conflicts = logs.filter((l) => /^proxy: route web\.test\/: claimed by services/.test(l));
    assert.equal(conflicts.length, 1, logs.join("\n"));
    return Promise.resolve();
  });
});

Deno.test("ProxyWorkers.start() refuses a port another process's reusePort listener holds (it would be shared silently)", async () => {
  const held = net.createServer();
  await new Promise<void>((r) => held.listen({ port: 0, host: "127.0.0.1", reusePort: true }, r));
  const port = (held.address() as net.AddressInfo).port;
  const ts = new TestStore();
  const w = twoWorkersOn(ts, port);
  try {
    await assert.rejects(
      w.start(),
      new RegExp(
        `^Error: proxy: cannot listen on 127\\.0\\.0\\.1:${port}: TCP: address in use by another process.*--proxy-http`,
      ),
    );
    assert.equal(w.running, 0);
  } finally {
    await w.close();
    ts.store.close();
    await new Promise<void>((r) => held.close(() => r()));
  }
});

Deno.test("ProxyWorkers: every worker keeps a client's X-Request-Id by default (any) and from a listed client, and replaces it with none or an unlisted one", async () => {
  const a = await startBackend("a");
  try {
    // --request-id-from as config.ts gives it: any (null), CIDRs, none (empty).
    const cases = [[null, true], [["127.0.0.0/8"], true], [["10.0.0.0/8"], false], [[], false]];
    for (const [from, kept] of cases as [string[] | null, boolean][]) {
      const ts = new TestStore();
      ts.register(spec({ id: "web-a", port: a.port }));
      const w = twoWorkers(ts.store, { config: { requestIdFrom: from } });
      try {
        await w.start();
        // Connections of their own, spread over both workers.
        const ids = await Promise.all(
          Array.from(
            { length: 8 },
            () =>
              request(w.address!.port, "/", { headers: { "x-request-id": "mine-1" } })
                .then((r) => String(r.headers["x-request-id"])),
          ),
        );
        for (const id of ids) {
          if (kept) assert.equal(id, "mine-1", String(from));
          else assert.match(id, /^[0-9a-f]{12}-[0-9a-z]+$/, String(from));
        }
      } finally {
        await w.close();
        ts.store.close();
      }
    }
  } finally {
    await a.close();
  }
});
