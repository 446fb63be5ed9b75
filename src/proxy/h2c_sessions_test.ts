import assert from "node:assert/strict";
import net from "node:net";
import { EventEmitter } from "node:events";
import { type H2cSession, H2cSessions } from "./h2c_sessions.ts";
import { h2cServer, h2cTarget, privateConn, proxiedH2cServer } from "./_h2_testing.ts";
import { unusedPort } from "../../test/ports.ts";

Deno.test("H2cSessions.acquire() fills a session up to its stream limit, then opens another, then queues", async () => {
  const server = await h2cServer();
  const pool = new H2cSessions({
    connectTimeoutMs: 1000,
    streamsPerSessionMax: 2,
    sessionsPerTargetMax: 2,
  });
  const t = h2cTarget(server.port);
  try {
    const got: H2cSession[] = [];
    for (let i = 0; i < 4; i++) pool.acquire(t, (s) => got.push(s));
    assert.equal(got.length, 4);
    assert.equal(got[0], got[1]);
    assert.equal(got[2], got[3]);
    assert.notEqual(got[0], got[2]);
    assert.equal(pool.sessionCount(t.key), 2);
    let fifth: H2cSession | null = null;
    let sixth: H2cSession | null = null;
    pool.acquire(t, (s) => fifth = s);
    const withdraw = pool.acquire(t, (s) => sixth = s);
    assert.equal(fifth, null);
    withdraw(); // the sixth gives up while waiting
    pool.release(t, got[1]!);
    assert.equal(fifth, got[0]);
    pool.release(t, got[2]!);
    assert.equal(sixth, null);
    assert.equal(pool.sessionCount(t.key), 2);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("H2cSessions: a failed session leaves the pool and the next request opens a new one", async () => {
  const closed = await unusedPort();
  const pool = new H2cSessions({ connectTimeoutMs: 1000 });
  const t = h2cTarget(closed);
  try {
    const first = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    await new Promise((r) => first.session.once("close", r));
    assert.equal(first.retired, true);
    assert.equal(pool.sessionCount(t.key), 0);
    pool.release(t, first);
    const second = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    assert.notEqual(second, first);
    assert.equal(pool.sessionCount(t.key), 1);
  } finally {
    pool.close();
  }
});

Deno.test("H2cSessions.retain() closes the sessions of targets no longer routed", async () => {
  const server = await h2cServer();
  const pool = new H2cSessions({ connectTimeoutMs: 1000, drainMs: 50 });
  const t = h2cTarget(server.port);
  try {
    const s = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    await new Promise((r) => s.session.once("remoteSettings", r));
    pool.release(t, s);
    pool.retain(new Set([t.key]));
    assert.equal(pool.sessionCount(t.key), 1);
    pool.retain(new Set());
    assert.equal(pool.sessionCount(t.key), 0);
    await new Promise((r) => s.session.once("close", r));
    assert.equal(s.session.closed, true);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("H2cSessions.retainChanged() closes the sessions of the gone keys only", async () => {
  const server = await h2cServer();
  const pool = new H2cSessions({ connectTimeoutMs: 1000, drainMs: 50 });
  const t = h2cTarget(server.port);
  try {
    const s = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    await new Promise((r) => s.session.once("remoteSettings", r));
    pool.release(t, s);
    pool.retainChanged(["other"], [t.key]);
    assert.equal(pool.sessionCount(t.key), 1);
    pool.retainChanged([t.key], []);
    assert.equal(pool.sessionCount(t.key), 0);
    await new Promise((r) => s.session.once("close", r));
    assert.equal(s.session.closed, true);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("H2cSessions.sweepIdle() closes sessions without streams for the idle timeout", async () => {
  const server = await h2cServer();
  let now = 1_000;
  const pool = new H2cSessions({ connectTimeoutMs: 1000, idleTimeoutMs: 400, now: () => now });
  const t = h2cTarget(server.port);
  try {
    const s = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    pool.release(t, s);
    now += 200;
    pool.sweepIdle();
    assert.equal(pool.sessionCount(t.key), 1);
    now += 200;
    pool.sweepIdle();
    assert.equal(pool.sessionCount(t.key), 0);
    assert.equal(s.retired, true);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("H2cSessions keeps to the instance's own SETTINGS_MAX_CONCURRENT_STREAMS once connected", async () => {
  const server = await h2cServer(undefined, { maxConcurrentStreams: 1 });
  const pool = new H2cSessions({ connectTimeoutMs: 1000, streamsPerSessionMax: 100 });
  const t = h2cTarget(server.port);
  try {
    const first = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    await new Promise((r) => first.session.once("remoteSettings", r));
    const second = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    assert.notEqual(second, first); // the first has its one stream
    pool.release(t, first);
    const third = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    assert.equal(third, first);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("H2cSessions.acquire() with a private connection: one client's own sessions, closed when it closes", async () => {
  const server = await proxiedH2cServer();
  const pool = new H2cSessions({ connectTimeoutMs: 1000 });
  const t = h2cTarget(server.port);
  const a = new EventEmitter();
  const b = new EventEmitter();
  const ha = "PROXY TCP4 198.51.100.1 127.0.0.1 40000 80\r\n";
  const hb = "PROXY TCP4 198.51.100.2 127.0.0.1 40000 80\r\n";
  try {
    const a1 = await new Promise<H2cSession>((r) => pool.acquire(t, r, privateConn(a, ha)));
    const a2 = await new Promise<H2cSession>((r) => pool.acquire(t, r, privateConn(a, ha)));
    const b1 = await new Promise<H2cSession>((r) => pool.acquire(t, r, privateConn(b, hb)));
    const shared = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    // All three connected: the instance has read each header.
    await Promise.all(
      [a1, b1, shared].map((s) => new Promise((r) => s.session.once("remoteSettings", r))),
    );
    assert.equal(a1, a2); // the same client connection: its session again
    assert.notEqual(a1, b1); // never another client's
    assert.notEqual(shared, a1); // nor a shared one
    assert.notEqual(shared, b1);
    assert.equal(pool.sessionCount(t.key), 1);
    assert.equal(pool.privateClients, 2);
    assert.equal(a.listenerCount("close"), 1);
    pool.release(t, a1);
    pool.release(t, a2);
    a.emit("close");
    assert.equal(a1.retired, true);
    assert.equal(b1.retired, false);
    assert.equal(pool.privateClients, 1);
    await new Promise((r) => a1.session.once("close", r));
    // A request of the closed client's would open a new session (none happens in the proxy).
    const b2 = await new Promise<H2cSession>((r) => pool.acquire(t, r, privateConn(b, hb)));
    assert.equal(b2, b1);
    // Each connection began with its own header (the shared one's with none it would refuse).
    assert.deepEqual(server.headers.filter((h) => h.startsWith("PROXY")).sort(), [ha, hb]);
  } finally {
    pool.close();
    await server.close();
  }
  assert.equal(b.listenerCount("close"), 0); // close() stops listening
});

Deno.test("H2cSessions.sweepIdle() forgets an idle client's private sessions and stops listening to it", async () => {
  const server = await proxiedH2cServer();
  let now = 1_000;
  const pool = new H2cSessions({ connectTimeoutMs: 1000, idleTimeoutMs: 400, now: () => now });
  const t = h2cTarget(server.port);
  const a = new EventEmitter();
  try {
    const s = await new Promise<H2cSession>((r) =>
      pool.acquire(t, r, privateConn(a, "PROXY UNKNOWN\r\n"))
    );
    pool.release(t, s);
    now += 400;
    pool.sweepIdle();
    assert.equal(s.retired, true);
    assert.equal(pool.privateClients, 0);
    assert.equal(a.listenerCount("close"), 0);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("H2cSessions: a private session's connection starts with its PROXY header", async () => {
  let first = "";
  const server = net.createServer((s) => {
    s.once("data", (d) => {
      first = d.toString("latin1");
      s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const pool = new H2cSessions({ connectTimeoutMs: 1000 });
  const t = h2cTarget((server.address() as net.AddressInfo).port);
  try {
    const header = "PROXY TCP4 198.51.100.9 127.0.0.1 40000 80\r\n";
    const s = await new Promise<H2cSession>((r) => pool.acquire(t, r, privateConn({}, header)));
    await new Promise((r) => s.session.once("close", r));
    assert.ok(first.startsWith(`${header}PRI * HTTP/2.0\r\n`), JSON.stringify(first));
  } finally {
    pool.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

Deno.test("H2cSessions.retain() closes the private sessions of targets no longer routed too", async () => {
  const server = await proxiedH2cServer();
  const pool = new H2cSessions({ connectTimeoutMs: 1000, drainMs: 50 });
  const t = h2cTarget(server.port);
  const a = new EventEmitter();
  try {
    const s = await new Promise<H2cSession>((r) =>
      pool.acquire(t, r, privateConn(a, "PROXY UNKNOWN\r\n"))
    );
    await new Promise((r) => s.session.once("remoteSettings", r));
    pool.release(t, s);
    pool.retainChanged(["other"], [t.key]);
    assert.equal(s.retired, false);
    pool.retainChanged([t.key], []);
    assert.equal(s.retired, true);
    await new Promise((r) => s.session.once("close", r));
    await new Promise((r) => setTimeout(r, 80)); // the drain timer forgets the client's group
    assert.equal(pool.privateClients, 0);
    assert.equal(a.listenerCount("close"), 0);
  } finally {
    pool.close();
    await server.close();
  }
});
