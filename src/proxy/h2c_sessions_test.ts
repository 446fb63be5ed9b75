import assert from "node:assert/strict";
import http2 from "node:http2";
import type net from "node:net";
import { type H2cSession, H2cSessions } from "./h2c_sessions.ts";
import type { Target } from "./balancer.ts";
import { unusedPort } from "../../test/ports.ts";

async function h2cServer() {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    sessions,
    close: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function target(port: number): Target {
  return { id: "a", address: "127.0.0.1", port, weight: 1, key: `a|127.0.0.1|${port}` };
}

Deno.test("H2cSessions.acquire() fills a session up to its stream limit, then opens another, then queues", async () => {
  const server = await h2cServer();
  const pool = new H2cSessions({
    connectTimeoutMs: 1000,
    streamsPerSessionMax: 2,
    sessionsPerTargetMax: 2,
  });
  const t = target(server.port);
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
  const t = target(closed);
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
  const t = target(server.port);
  try {
    const s = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    await new Promise((r) => s.session.once("connect", r));
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
  const t = target(server.port);
  try {
    const s = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    await new Promise((r) => s.session.once("connect", r));
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
  const t = target(server.port);
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
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1 } });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const pool = new H2cSessions({ connectTimeoutMs: 1000, streamsPerSessionMax: 100 });
  const t = target(port);
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
    await new Promise<void>((r) => server.close(() => r()));
  }
});
