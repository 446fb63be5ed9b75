import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { Balancer, type Target } from "./balancer.ts";
import type { ServiceRoute } from "./routes.ts";
import { RouteSettings } from "./route_settings.ts";
import { startBackend } from "./_testing.ts";
import { type Upstream, type UpstreamConn, UpstreamPool } from "./upstream_pool.ts";
import { ResponseParser } from "./response_parser.ts";
import { ConnSlots, GROUP_CELLS } from "./conn_slots.ts";
import { sleep, waitFor } from "../../test/wait.ts";

const target: Target = { id: "web-a", address: "127.0.0.1", port: 1, weight: 1, key: "k" };

/** A lease that writes `NAME attached` and `NAME timed out` (its queued wait ended) to `events`. */
function queueLease(events: string[], name: string) {
  return {
    attach: () => events.push(`${name} attached`),
    onConnect: () => {},
    onData: () => {},
    onDrain: () => {},
    onClose: () => {},
    onQueueTimeout: () => events.push(`${name} timed out`),
  };
}

Deno.test("UpstreamPool.failed() ejects after failuresMax in a row, with doubling backoff", () => {
  let now = 1_000;
  const logs: string[] = [];
  const pool = new UpstreamPool({
    failuresMax: 3,
    ejectMs: 100,
    ejectMsMax: 300,
    now: () => now,
    log: (l) => logs.push(l),
  });
  try {
    const up = pool.get(target);
    pool.failed(up, "ECONNREFUSED");
    pool.failed(up, "ECONNREFUSED");
    assert.equal(pool.isEjected(target), false);
    pool.failed(up, "ECONNREFUSED");
    assert.equal(pool.isEjected(target), true);
    assert.match(logs[0]!, /instance web-a \(127\.0\.0\.1:1\) ejected for 100 ms .*ECONNREFUSED/);
    now += 100;
    assert.equal(pool.isEjected(target), false, "the period ended: one trial request");
    pool.failed(up, "ECONNRESET");
    assert.equal(pool.isEjected(target), true, "a failed trial re-ejects at once");
    assert.match(logs[1]!, /ejected for 200 ms/);
    now += 200;
    pool.failed(up, "ECONNRESET");
    assert.match(logs[2]!, /ejected for 300 ms/, "capped at ejectMsMax");
    pool.succeeded(up);
    now += 1;
    assert.equal(pool.isEjected(target), false);
    pool.failed(up, "ECONNRESET");
    assert.equal(pool.isEjected(target), false, "a success resets the count");
  } finally {
    pool.close();
  }
});

Deno.test("UpstreamPool reports its ejections (onEject) and applies another worker's (eject), listed by ejected()", () => {
  let now = 1_000;
  const told: [string, number][] = [];
  const pool = new UpstreamPool({
    failuresMax: 2,
    ejectMs: 100,
    now: () => now,
    log: () => {},
    onEject: (key, ms) => told.push([key, ms]),
  });
  const other: Target = {
    id: "a|b",
    address: "10.0.0.9",
    port: 81,
    weight: 1,
    key: "a|b|10.0.0.9|81",
  };
  try {
    const up = pool.get(target);
    pool.failed(up, "ECONNREFUSED");
    pool.failed(up, "ECONNREFUSED");
    assert.deepEqual(told, [["k", 100]]);
    // Told by another worker, before this one has a pool for the target: skipped all the same.
    pool.eject(other.key, 50);
    assert.equal(pool.isEjected(other), true);
    assert.deepEqual(pool.ejected(), [
      { instance: "a|b", address: "10.0.0.9", port: 81, untilMs: 1_050 },
      { instance: "web-a", address: "127.0.0.1", port: 1, untilMs: 1_100 },
    ]);
    assert.equal(told.length, 1, "a remote ejection is not reported back");
    const up2 = pool.get(other);
    assert.equal(pool.isEjected(other), true, "the pool made later keeps the ejection");
    now += 50;
    assert.equal(pool.isEjected(other), false, "the period ended: one trial request");
    pool.failed(up2, "ECONNRESET");
    assert.equal(pool.isEjected(other), true, "one more failure ejects it again");
    assert.equal(told.length, 2);
  } finally {
    pool.close();
  }
});

Deno.test("UpstreamPool.failed() on an ejected target logs and reports the ejection once per period", () => {
  let now = 1_000;
  const logs: string[] = [];
  const told: [string, number][] = [];
  const pool = new UpstreamPool({
    failuresMax: 3,
    ejectMs: 100,
    now: () => now,
    log: (l) => logs.push(l),
    onEject: (key, ms) => told.push([key, ms]),
  });
  const other: Target = { id: "web-b", address: "127.0.0.1", port: 2, weight: 1, key: "k2" };
  try {
    const up = pool.get(target);
    // Every target of a route ejected: requests fall back to it and keep failing.
    for (let i = 0; i < 50; i++) pool.failed(up, "ECONNREFUSED");
    assert.equal(logs.length, 1);
    assert.deepEqual(told, [["k", 100]]);
    now += 100;
    pool.failed(up, "ECONNREFUSED");
    assert.deepEqual(told, [["k", 100], ["k", 200]], "after the period: re-ejected, longer");
    // Ejected by another worker: this worker's failures meanwhile do not report it back.
    pool.eject(other.key, 100);
    const up2 = pool.get(other);
    for (let i = 0; i < 50; i++) pool.failed(up2, "ECONNREFUSED");
    assert.equal(told.length, 2);
    assert.equal(logs.length, 2);
    assert.equal(pool.isEjected(other), true);
  } finally {
    pool.close();
  }
});

Deno.test("UpstreamPool.retain() drains removed targets, then destroys their pools", async () => {
  const pool = new UpstreamPool({ drainMs: 20 });
  try {
    const up = pool.get(target);
    pool.retain(new Set(["k"]));
    assert.equal(pool.isDraining("k"), false);
    pool.retain(new Set());
    assert.equal(pool.isDraining("k"), true);
    assert.equal(pool.get(target), up, "a draining pool still serves requests under way");
    pool.retain(new Set(["k"]));
    assert.equal(pool.isDraining("k"), false, "coming back cancels the drain");
    pool.retain(new Set());
    await waitFor("the drained pool to close", () => pool.size === 0);
    assert.notEqual(pool.get(target), up, "a new pool after the drain");
  } finally {
    pool.close();
  }
});

Deno.test("UpstreamPool.retainChanged() drains the gone keys, keeps the ones back, leaves others alone", async () => {
  const pool = new UpstreamPool({ drainMs: 20 });
  const other: Target = { ...target, id: "web-b", key: "k2" };
  try {
    const up = pool.get(target);
    pool.get(other);
    pool.retainChanged(["k", "unknown"], []);
    assert.equal(pool.isDraining("k"), true);
    assert.equal(pool.isDraining("k2"), false, "a key the change did not name");
    pool.retainChanged([], ["k"]);
    assert.equal(pool.isDraining("k"), false, "coming back cancels the drain");
    assert.equal(pool.get(target), up);
    pool.retainChanged(["k"], []);
    await waitFor("the drained pool to close", () => pool.size === 1);
    assert.equal(pool.isDraining("k2"), false);
  } finally {
    pool.close();
  }
});

/** One GET over a connection leased from `pool`; resolves once the response is complete. */
function get(
  pool: UpstreamPool,
  up: Upstream,
  opts: { fresh?: boolean } = {},
): Promise<UpstreamConn> {
  return new Promise((resolve, reject) => {
    let conn: UpstreamConn | null = null;
    const parser = new ResponseParser({
      onHead: () => {},
      onBody: () => {},
      onEnd: (reusable) => {
        pool.release(up, conn!, reusable);
        resolve(conn!);
      },
    });
    parser.reset(false);
    pool.acquire(up, {
      attach: (c) => conn = c,
      onConnect: () => conn!.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
      onData: (d) => parser.feed(d),
      onDrain: () => {},
      onClose: (e) => reject(e ?? new Error("closed")),
    }, opts);
  });
}

Deno.test("UpstreamPool.acquire() reuses a released connection; the instance closing it drops it", async () => {
  const backend = await startBackend("a");
  const pool = new UpstreamPool();
  try {
    const up = pool.get({ ...target, port: backend.port, key: "live" });
    const first = await get(pool, up);
    assert.equal(up.idle.length, 1);
    assert.equal(await get(pool, up), first);
    assert.equal(backend.connections, 1);
    await backend.close();
    await waitFor("the closed connection to leave the pool", () => up.conns.size === 0);
    assert.equal(up.idle.length, 0, "an idle connection the instance closed left the pool");
  } finally {
    pool.close();
    await backend.close();
  }
});

Deno.test("UpstreamPool.acquire() skips an idle connection destroyed before its close event", async () => {
  const backend = await startBackend("a");
  const pool = new UpstreamPool();
  try {
    const up = pool.get({ ...target, port: backend.port, key: "live" });
    const first = await get(pool, up);
    first.socket.destroy(); // still listed as idle until its close event
    assert.equal(up.idle.length, 1);
    const second = await get(pool, up);
    assert.notEqual(second, first, "a new connection, not the destroyed one");
    assert.equal(backend.connections, 2);
  } finally {
    pool.close();
    await backend.close();
  }
});

Deno.test("UpstreamPool.acquire() with fresh opens a new connection while one is idle", async () => {
  const backend = await startBackend("a");
  const pool = new UpstreamPool();
  try {
    const up = pool.get({ ...target, port: backend.port, key: "live" });
    const first = await get(pool, up);
    const second = await get(pool, up, { fresh: true });
    assert.notEqual(second, first);
    assert.equal(second.uses, 1, "it carried one request: the one just made");
    assert.equal(backend.connections, 2);
    assert.equal(up.idle.length, 2, "both went back to the pool");
  } finally {
    pool.close();
    await backend.close();
  }
});

Deno.test("UpstreamPool.acquire() queues requests beyond socketsMax until one is released", async () => {
  const backend = await startBackend("a");
  const pool = new UpstreamPool({ socketsMax: 1 });
  try {
    const up = pool.get({ ...target, port: backend.port, key: "live" });
    const all = await Promise.all([get(pool, up), get(pool, up), get(pool, up)]);
    assert.equal(new Set(all).size, 1, "one connection carried all three");
    assert.equal(backend.connections, 1);
  } finally {
    pool.close();
    await backend.close();
  }
});

Deno.test("UpstreamPool.sweepIdle() closes pooled connections idle for idleTimeoutMs", async () => {
  const backend = await startBackend("a");
  let now = 1_000;
  const pool = new UpstreamPool({ idleTimeoutMs: 800, now: () => now });
  try {
    const up = pool.get({ ...target, port: backend.port, key: "live" });
    const settle = () => sleep(20);
    await get(pool, up);
    now += 600;
    pool.sweepIdle();
    await settle();
    assert.equal(up.idle.length, 1, "idle 600 ms of 800: kept");
    await get(pool, up);
    assert.equal(backend.connections, 1, "the pooled connection was reused");
    now += 650;
    pool.sweepIdle();
    await settle();
    assert.equal(up.idle.length, 1, "reuse restarted its idle time");
    now += 150;
    pool.sweepIdle();
    await waitFor("the idle connection to be swept", () => up.idle.length === 0);
  } finally {
    pool.close();
    await backend.close();
  }
});

Deno.test("UpstreamPool keeps every connection of a burst idle by default, for the next burst", async () => {
  const backend = await startBackend("a");
  const pool = new UpstreamPool();
  try {
    const up = pool.get({ ...target, port: backend.port, key: "live" });
    const burst = () => Promise.all(Array.from({ length: 100 }, () => get(pool, up)));
    const first = await burst();
    assert.equal(new Set(first).size, 100, "100 requests at once: 100 connections");
    assert.equal(up.idle.length, 100);
    const second = await burst();
    assert.equal(backend.connections, 100, "the second burst opened none");
    assert.equal(new Set([...first, ...second]).size, 100);
  } finally {
    pool.close();
    await backend.close();
  }
});

Deno.test("UpstreamPool ends the wait of a request queued at socketsMax for queueTimeoutMs", () => {
  let now = 1_000;
  const pool = new UpstreamPool({ socketsMax: 1, queueTimeoutMs: 500, now: () => now });
  const events: string[] = [];
  const lease = (name: string) => queueLease(events, name);
  try {
    const up = pool.get({ ...target, port: 9 });
    pool.acquire(up, lease("first")); // takes the one connection
    pool.acquire(up, lease("second"));
    now += 400;
    pool.acquire(up, lease("third"));
    pool.sweepIdle();
    assert.deepEqual(events, ["first attached"]);
    now += 100; // the second waited 500 ms, the third 100
    pool.sweepIdle();
    assert.deepEqual(events, ["first attached", "second timed out"]);
    assert.equal(up.waiting.length, 1);
    now += 400;
    pool.sweepIdle();
    assert.deepEqual(events, ["first attached", "second timed out", "third timed out"]);
    assert.equal(up.waiting.length, 0);
  } finally {
    pool.close();
  }
});

Deno.test("UpstreamPool.acquire() with queueMs ends a queued request's wait at the service's shorter timeout", () => {
  let now = 1_000;
  const pool = new UpstreamPool({ socketsMax: 1, queueTimeoutMs: 10_000, now: () => now });
  const events: string[] = [];
  const lease = (name: string) => queueLease(events, name);
  try {
    const up = pool.get({ ...target, port: 9 });
    pool.acquire(up, lease("first"));
    pool.acquire(up, lease("second"), { queueMs: 2_000 });
    now += 1_999;
    pool.sweepIdle();
    assert.deepEqual(events, ["first attached"]);
    now += 1;
    pool.sweepIdle();
    assert.deepEqual(events, ["first attached", "second timed out"]);
  } finally {
    pool.close();
  }
});

Deno.test("UpstreamPool.acquire() with a cap above socketsMax allows the cap (the service asked for it)", () => {
  const pool = new UpstreamPool({ socketsMax: 2 });
  const events: string[] = [];
  try {
    const up = pool.get({ ...target, port: 9 });
    for (const name of ["r1", "r2", "r3"]) {
      pool.acquire(up, recordingLease(events, name), { cap: { conns: 3, queue: 0 } });
    }
    assert.deepEqual(events, ["r1 attached", "r2 attached", "r3 attached"]);
  } finally {
    pool.close();
  }
});

Deno.test("UpstreamPool lets one owner hold at most ownerSocketsMax connections; its next request waits for one of them", async () => {
  const backend = await startBackend("a");
  const pool = new UpstreamPool({ ownerSocketsMax: 2, queueTimeoutMs: 1_000 });
  const attached: string[] = [];
  const conns = new Map<string, UpstreamConn>();
  const lease = (name: string) => ({
    attach: (c: UpstreamConn) => {
      attached.push(name);
      conns.set(name, c);
    },
    onConnect: () => {},
    onData: () => {},
    onDrain: () => {},
    onClose: () => {},
    onQueueTimeout: () => attached.push(`${name} timed out`),
  });
  const h2conn = {};
  try {
    const up = pool.get({ ...target, port: backend.port });
    pool.acquire(up, lease("a1"), { owner: h2conn });
    pool.acquire(up, lease("a2"), { owner: h2conn });
    pool.acquire(up, lease("a3"), { owner: h2conn });
    const withdraw = pool.acquire(up, lease("a4"), { owner: h2conn });
    pool.acquire(up, lease("other"), { owner: {} });
    pool.acquire(up, lease("plain"));
    assert.deepEqual(attached, ["a1", "a2", "other", "plain"]);
    withdraw(); // a4 gives up while waiting
    pool.release(up, conns.get("a1")!, true);
    assert.deepEqual(attached, ["a1", "a2", "other", "plain", "a3"]);
    conns.get("a2")!.socket.destroy(); // a lease ended by a close frees the owner's slot too
    pool.acquire(up, lease("a5"), { owner: h2conn });
    assert.deepEqual(attached.slice(5), []);
    await waitFor("a5 to get a connection", () => attached.includes("a5"));
    assert.ok(!attached.includes("a4"), "a withdrawn request never gets one");
  } finally {
    pool.close();
    await backend.close();
  }
});

Deno.test("UpstreamPool ends the wait of a request over its owner's cap after queueTimeoutMs", () => {
  let now = 0;
  const pool = new UpstreamPool({ ownerSocketsMax: 1, queueTimeoutMs: 500, now: () => now });
  const events: string[] = [];
  const lease = (name: string) => queueLease(events, name);
  const owner = {};
  try {
    const up = pool.get({ ...target, port: 9 });
    pool.acquire(up, lease("first"), { owner });
    pool.acquire(up, lease("second"), { owner });
    now += 500;
    pool.sweepIdle();
    assert.deepEqual(events, ["first attached", "second timed out"]);
  } finally {
    pool.close();
  }
});

Deno.test("UpstreamPool gives a lease pieces it may keep: later reads do not change them", async () => {
  // Connections read into one shared buffer: each piece handed on must be a copy.
  const sent: string[] = [];
  const server = net.createServer((s) => {
    s.on("error", () => {});
    let n = 0;
    const next = () => {
      if (n === 20) return void s.end();
      const piece = String(n++).padStart(3, "0").repeat(100 + n * 50);
      sent.push(piece);
      s.write(piece);
      setTimeout(next, 5); // separate reads on the other side
    };
    next();
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as net.AddressInfo).port;
  const pool = new UpstreamPool();
  try {
    const up = pool.get({ ...target, port, key: "pieces" });
    const kept: Uint8Array[] = [];
    await new Promise<void>((resolve) => {
      pool.acquire(up, {
        attach: () => {},
        onConnect: () => {},
        onData: (d) => kept.push(d),
        onDrain: () => {},
        onClose: () => resolve(),
      });
    });
    assert.ok(kept.length > 1, "several reads");
    assert.equal(new TextDecoder().decode(Buffer.concat(kept)), sent.join(""));
  } finally {
    pool.close();
    await new Promise((ok) => server.close(ok));
  }
});

Deno.test("UpstreamPool.peek() names the next pick, passing over ejected targets, and changes nothing", () => {
  let now = 1_000;
  const pool = new UpstreamPool({ failuresMax: 1, ejectMs: 100, now: () => now, log: () => {} });
  const ts: Target[] = ["a", "b", "c"].map((id) => ({
    id,
    address: "127.0.0.1",
    port: 1,
    weight: 1,
    key: `${id}|127.0.0.1|1`,
  }));
  const route = {
    balancer: new Balancer("hash", ts),
    settings: RouteSettings.EMPTY,
  } as unknown as ServiceRoute;
  try {
    const first = pool.peek(route, "10.0.0.7")!;
    assert.equal(pool.peek(route, "10.0.0.7"), first);
    assert.equal(pool.pick(route, [], "10.0.0.7"), first);
    pool.failed(pool.get(first), "ECONNREFUSED"); // ejected
    const second = pool.peek(route, "10.0.0.7")!;
    assert.notEqual(second, first);
    assert.equal(pool.pick(route, [], "10.0.0.7"), second);
    // Every target ejected: the pick falls back to the ejected ones, and so does the peek.
    for (const t of ts) pool.eject(t.key, 100);
    assert.equal(pool.peek(route, "10.0.0.7"), first);
    assert.equal(pool.pick(route, [], "10.0.0.7"), first);
    now += 200;
    assert.equal(pool.peek(route, "10.0.0.7"), first);
  } finally {
    pool.close();
  }
});

/** A lease that records what the pool tells it. */
function recordingLease(events: string[], name: string) {
  let conn: UpstreamConn | null = null;
  return {
    get conn() {
      return conn;
    },
    attach: (c: UpstreamConn) => {
      conn = c;
      events.push(`${name} attached`);
    },
    onConnect: () => {},
    onData: () => {},
    onDrain: () => {},
    onClose: () => events.push(`${name} closed`),
    onQueueTimeout: () => events.push(`${name} queue timeout`),
    onQueueFull: (cap: { conns: number; queue: number }) =>
      events.push(`${name} queue full ${cap.conns}/${cap.queue}`),
  };
}

/**
 * Runs `fn` with `pool`'s upstream of a target on a backend that holds every request; closes the
 * pool and the backend after.
 */
async function withPool(pool: UpstreamPool, fn: (up: Upstream) => unknown): Promise<void> {
  const backend = await startBackend("a", () => {});
  try {
    await fn(pool.get({ ...target, port: backend.port, key: "held" }));
  } finally {
    pool.close();
    await backend.close();
  }
}

Deno.test("UpstreamPool.acquire() with a cap: the cap in flight, a bounded queue, the rest turned away", async () => {
  const pool = new UpstreamPool();
  const cap = { conns: 2, queue: 1 };
  const events: string[] = [];
  await withPool(pool, async (up) => {
    const leases = ["r1", "r2", "r3", "r4"].map((n) => recordingLease(events, n));
    for (const l of leases) pool.acquire(up, l, { cap });
    assert.deepEqual(events, ["r1 attached", "r2 attached", "r4 queue full 2/1"]);
    assert.equal(up.waiting.length, 1, "r3 waits");
    // r1's connection comes back reusable: r3 takes it; the queue has room again.
    await waitFor("r1 connected", () => !leases[0]!.conn!.socket.connecting);
    pool.release(up, leases[0]!.conn!, true);
    assert.deepEqual(events.slice(3), ["r3 attached"]);
    assert.equal(up.conns.size, 2);
    const r5 = recordingLease(events, "r5");
    pool.acquire(up, r5, { cap });
    assert.equal(up.waiting.length, 1, "r5 waits");
    // Without a cap the pool's own socketsMax applies: a new connection at once.
    pool.acquire(up, recordingLease(events, "r6"));
    assert.deepEqual(events.slice(4), ["r6 attached"]);
  });
});

/** Two pools counting in one shared table, as two proxy workers do. */
function twoPools(now?: () => number): [UpstreamPool, UpstreamPool] {
  const table = ConnSlots.create(2);
  return [
    new UpstreamPool({ slots: new ConnSlots(table, 0), capShares: 2, now }),
    new UpstreamPool({ slots: new ConnSlots(table, 1), capShares: 2, now }),
  ];
}

/**
 * Runs `fn` with two workers' pools (`twoPools`, clock `now`) and their upstreams of one target
 * on a backend that holds every request; closes the pools and the backend after.
 */
async function withTwoWorkers(
  fn: (w: { p0: UpstreamPool; p1: UpstreamPool; u0: Upstream; u1: Upstream }) => unknown,
  now?: () => number,
): Promise<void> {
  const backend = await startBackend("a", () => {});
  const [p0, p1] = twoPools(now);
  try {
    const t = { ...target, port: backend.port, key: "shared" };
    await fn({ p0, p1, u0: p0.get(t), u1: p1.get(t) });
  } finally {
    p0.close();
    p1.close();
    await backend.close();
  }
}

/** Connections leased or connecting over `ups` (what the instance sees in flight). */
const inFlight = (...ups: Upstream[]) => ups.reduce((n, u) => n + u.conns.size - u.idle.length, 0);

Deno.test("UpstreamPool.acquire() with a cap counts every worker's pool at once: a slot freed in one serves the other's queue, by turns", async () => {
  const cap = { conns: 1, queue: 4 };
  const events: string[] = [];
  await withTwoWorkers(async ({ p0, p1, u0, u1 }) => {
    const lease = (name: string, pool: UpstreamPool, u: Upstream) => {
      const l = recordingLease(events, name);
      pool.acquire(u, l, { cap });
      return l;
    };
    const r1 = lease("r1", p0, u0);
    const r2 = lease("r2", p1, u1);
    const r3 = lease("r3", p0, u0);
    const r4 = lease("r4", p1, u1);
    const r5 = lease("r5", p0, u0);
    lease("r6", p1, u1);
    assert.deepEqual(events, ["r1 attached", "r6 queue full 1/4"], "1 in flight, 4 wait");
    const order = [r1, r2, r3, r4, r5];
    for (let i = 0; i < order.length - 1; i++) {
      const [held, next] = [order[i]!, order[i + 1]!];
      const name = `r${[r1, r2, r3, r4, r5].indexOf(next) + 1}`;
      await waitFor(`${name}'s holder connected`, () => !held.conn!.socket.connecting);
      const [pool, u] = u0.conns.has(held.conn!) ? [p0, u0] : [p1, u1];
      pool.release(u, held.conn!, true);
      await waitFor(`${name} attached`, () => events.includes(`${name} attached`));
      assert.equal(inFlight(u0, u1), 1, "never 2 in flight");
    }
    assert.deepEqual(
      events.filter((e) => e.endsWith("attached")),
      ["r1 attached", "r2 attached", "r3 attached", "r4 attached", "r5 attached"],
      "the workers take turns, the first to wait first",
    );
  });
});

Deno.test("UpstreamPool.acquire() with a cap queues a new request while another worker's pool has one waiting (no queue jumping)", async () => {
  const cap = { conns: 1, queue: 5 };
  const events: string[] = [];
  await withTwoWorkers(async ({ p0, p1, u0, u1 }) => {
    const r1 = recordingLease(events, "r1");
    p0.acquire(u0, r1, { cap });
    p1.acquire(u1, recordingLease(events, "r2"), { cap });
    await waitFor("r1 connected", () => !r1.conn!.socket.connecting);
    // r1 ends; before p1 hears of it, a new request comes to p0, with the slot free.
    p0.release(u0, r1.conn!, true);
    const r3 = recordingLease(events, "r3");
    p0.acquire(u0, r3, { cap });
    assert.equal(u0.waiting.length, 1, "r3 waits behind r2");
    await waitFor("r2 attached", () => events.includes("r2 attached"));
    assert.deepEqual(events, ["r1 attached", "r2 attached"]);
  });
});

Deno.test("UpstreamPool.sweepIdle() ends a shared queue's expired wait and frees its place for every worker", async () => {
  let now = 1_000;
  const cap = { conns: 1, queue: 1 };
  const events: string[] = [];
  await withTwoWorkers(({ p0, p1, u0, u1 }) => {
    p0.acquire(u0, recordingLease(events, "r1"), { cap });
    p1.acquire(u1, recordingLease(events, "r2"), { cap });
    p0.acquire(u0, recordingLease(events, "r3"), { cap });
    assert.deepEqual(events, ["r1 attached", "r3 queue full 1/1"]);
    now += 10_000;
    p1.sweepIdle();
    assert.deepEqual(events.slice(2), ["r2 queue timeout"]);
    p0.acquire(u0, recordingLease(events, "r4"), { cap });
    assert.equal(u0.waiting.length, 1, "r4 has r2's place");
  }, () => now);
});

Deno.test("UpstreamPool.close() gives its slots back to the other workers' pools, waking their queue", async () => {
  const cap = { conns: 1, queue: 1 };
  const events: string[] = [];
  await withTwoWorkers(async ({ p0, p1, u0, u1 }) => {
    p0.acquire(u0, recordingLease(events, "r1"), { cap });
    p1.acquire(u1, recordingLease(events, "r2"), { cap });
    p1.acquire(u1, recordingLease(events, "r3"), { cap });
    assert.deepEqual(events, ["r1 attached", "r3 queue full 1/1"]);
    p0.close();
    await waitFor("r2 attached", () => events.includes("r2 attached"));
  });
});

/**
 * What Attempt and HttpProxy do after a stale failure (a reused connection the instance
 * closed): the lease's onClose acquires a fresh connection to the same target at once. Leases
 * `first` on `pool`, resets its connection, and resolves once the retry was answered.
 */
async function staleRetry(
  pool: UpstreamPool,
  up: Upstream,
  cap: { conns: number; queue: number },
  events: string[],
  also: () => void = () => {},
): Promise<void> {
  let conn: UpstreamConn | null = null;
  pool.acquire(up, {
    attach: (c) => {
      conn = c;
      events.push("first attached");
    },
    onConnect: () => {},
    onData: () => {},
    onDrain: () => {},
    onClose: () => {
      events.push("first closed");
      pool.acquire(up, recordingLease(events, "retry"), { cap, fresh: true });
    },
  }, { cap });
  also();
  await waitFor("first connected", () => conn !== null && !conn.socket.connecting);
  conn!.socket.destroy(); // the instance reset the reused connection under the request
  await waitFor("the retry answered", () => events.length >= 3);
}

Deno.test("UpstreamPool.acquire() with fresh from inside onClose takes the closed connection's slot (cap 1, queue 0: no 503)", async () => {
  const pool = new UpstreamPool();
  const cap = { conns: 1, queue: 0 };
  const events: string[] = [];
  await withPool(pool, async (up) => {
    await staleRetry(pool, up, cap, events);
    assert.deepEqual(events, ["first attached", "first closed", "retry attached"]);
    assert.equal(up.held, 1, "one slot counted: the retry's");
    assert.equal(up.conns.size, 1);
    // The cap holds: a new request finds it taken.
    pool.acquire(up, recordingLease(events, "r2"), { cap });
    assert.deepEqual(events.slice(3), ["r2 queue full 1/0"]);
  });
});

Deno.test("UpstreamPool.acquire() with fresh from inside onClose goes before the requests already waiting", async () => {
  const pool = new UpstreamPool();
  const cap = { conns: 1, queue: 5 };
  const events: string[] = [];
  await withPool(pool, async (up) => {
    await staleRetry(pool, up, cap, events, () => {
      pool.acquire(up, recordingLease(events, "other"), { cap }); // waits behind first
    });
    assert.deepEqual(events, ["first attached", "first closed", "retry attached"]);
    assert.equal(up.waiting.length, 1, "other still waits");
  });
});

Deno.test("UpstreamPool.acquire() with fresh from inside onClose keeps the slot from another worker's waiting request", async () => {
  const cap = { conns: 1, queue: 5 };
  const events: string[] = [];
  await withTwoWorkers(async ({ p0, p1, u0, u1 }) => {
    await staleRetry(p0, u0, cap, events, () => {
      p1.acquire(u1, recordingLease(events, "other"), { cap });
    });
    await sleep(20); // a wake-up the close sent would have let p1 in by now
    assert.deepEqual(events, ["first attached", "first closed", "retry attached"]);
    assert.equal(inFlight(u0, u1), 1);
    assert.equal(u1.waiting.length, 1, "p1's request still waits");
  });
});

Deno.test("UpstreamPool.acquire() with a cap counts no slot for an idle connection destroyed before its close event", async () => {
  const slots = new ConnSlots(ConnSlots.create(1), 0);
  const pool = new UpstreamPool({ slots });
  const cap = { conns: 2, queue: 0 };
  const events: string[] = [];
  await withPool(pool, async (up) => {
    const r0 = recordingLease(events, "r0");
    pool.acquire(up, r0, { cap });
    await waitFor("r0 connected", () => !r0.conn!.socket.connecting);
    pool.release(up, r0.conn!, true);
    r0.conn!.socket.destroy(); // idle, and listed until its close event
    pool.acquire(up, recordingLease(events, "r1"), { cap }); // passes it over: a new one
    pool.sweepIdle(); // counts what the pool has in the cell
    assert.equal(slots.busy(up.cell), 1, "r1 only");
    pool.acquire(up, recordingLease(events, "r2"), { cap });
    assert.deepEqual(events, ["r0 attached", "r1 attached", "r2 attached"]);
  });
});

Deno.test("UpstreamPool.release() with a lowered cap gives the slot back instead of handing the connection to a waiting request", async () => {
  const pool = new UpstreamPool();
  const events: string[] = [];
  await withPool(pool, async (up) => {
    const [r1, r2] = ["r1", "r2"].map((n) => recordingLease(events, n));
    pool.acquire(up, r1!, { cap: { conns: 2, queue: 5 } });
    pool.acquire(up, r2!, { cap: { conns: 2, queue: 5 } });
    // The service's max-conns goes down to 1: the next request queues under it.
    pool.acquire(up, recordingLease(events, "r3"), { cap: { conns: 1, queue: 5 } });
    await waitFor("r1 connected", () => !r1!.conn!.socket.connecting);
    pool.release(up, r1!.conn!, true);
    assert.deepEqual(events, ["r1 attached", "r2 attached"], "2 in flight is above the cap");
    assert.equal(inFlight(up), 1);
    await waitFor("r2 connected", () => !r2!.conn!.socket.connecting);
    pool.release(up, r2!.conn!, true);
    assert.deepEqual(events.slice(2), ["r3 attached"], "now 1 is under it");
    assert.equal(inFlight(up), 1);
  });
});

Deno.test("UpstreamPool.acquire() with a cap and no room in the shared table caps per worker, logging it once per instance", async () => {
  const backend = await startBackend("a", () => {});
  const table = ConnSlots.create(2, 1); // one group of GROUP_CELLS cells
  const other = new ConnSlots(table, 1);
  const cells = Array.from({ length: GROUP_CELLS }, (_, i) => other.claim(`other-${i}`));
  const logs: string[] = [];
  const pool = new UpstreamPool({
    slots: new ConnSlots(table, 0),
    capShares: 2,
    log: (l) => logs.push(l),
  });
  const events: string[] = [];
  const cap = { conns: 2, queue: 0 };
  try {
    const [a, b] = ["web-a", "web-b"].map((id) =>
      pool.get({ ...target, id, port: backend.port, key: `left-out-${id}` })
    );
    for (const n of ["r1", "r2"]) pool.acquire(a!, recordingLease(events, n), { cap });
    assert.deepEqual(events, ["r1 attached", "r2 queue full 2/0"], "ceil(2/2) in this worker");
    pool.acquire(b!, recordingLease(events, "r3"), { cap });
    assert.equal(logs.length, 2, "a line for each instance, not for each request");
    assert.match(logs[0]!, /no shared slot for instance web-a .*counted per proxy worker/);
    assert.match(logs[1]!, /no shared slot for instance web-b /);
    // A cell comes free: not claimed by the next request (no group lock per request), but
    // after the next idle sweep.
    other.unclaim(cells[0]!);
    pool.acquire(b!, recordingLease(events, "r4"), { cap });
    assert.equal(b!.cell, -1, "not tried again before the sweep");
    assert.deepEqual(events.slice(2), ["r3 attached", "r4 queue full 2/0"]);
    pool.sweepIdle();
    pool.acquire(a!, recordingLease(events, "r5"), { cap });
    assert.equal(a!.cell, cells[0], "after the sweep it gets the free cell");
    assert.deepEqual(events.slice(4), ["r5 attached"], "and the whole cap: 2 in flight");
    assert.equal(logs.length, 3);
    assert.match(logs[2]!, /instance web-a .*has a shared slot now/);
  } finally {
    pool.close();
    await backend.close();
  }
});

Deno.test("UpstreamPool.pick() with berth.http.max-conns prefers a target under its cap, except for hash keys", async () => {
  const backend = await startBackend("a", () => {});
  const pool = new UpstreamPool();
  const ts: Target[] = ["a", "b"].map((id) => ({
    id,
    address: "127.0.0.1",
    port: backend.port,
    weight: 1,
    key: `${id}|127.0.0.1|${backend.port}`,
  }));
  const route = (policy: "round_robin" | "hash" | "sticky_cookie") =>
    ({
      balancer: new Balancer(policy, ts),
      settings: RouteSettings.fromMeta({ "berth.http.max-conns": "1" }),
    }) as unknown as ServiceRoute;
  try {
    const rr = route("round_robin");
    const a = pool.get(ts[0]!);
    pool.acquire(a, recordingLease([], "busy"), { cap: { conns: 1, queue: 10 } });
    // Round robin would say a, b, a, b: a is at its cap, so b every time.
    for (let i = 0; i < 4; i++) assert.equal(pool.pick(rr, [])!.id, "b");
    assert.equal(pool.peek(rr)!.id, "b");
    // A sticky cookie's first pick (no key) too.
    const sticky = route("sticky_cookie");
    for (let i = 0; i < 4; i++) assert.equal(pool.pick(sticky, [])!.id, "b");
    // A hash key keeps its instance (it queues there).
    const hashed = route("hash");
    const key = ["k0", "k1", "k2", "k3", "k4", "k5"].find((k) =>
      hashed.balancer.peek(undefined, k)!.id === "a"
    )!;
    assert.equal(pool.pick(hashed, [], key)!.id, "a");
  } finally {
    pool.close();
    await backend.close();
  }
});
