/**
 * H2cSessions against instances that hold connections: one that accepts TCP and never sends
 * its SETTINGS (its sockets must be freed), the cap on private sessions per target, and the
 * proxy's queue timeout for a request that finds every session full.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type http2 from "node:http2";
import { H2C_SESSIONS_PER_TARGET_MAX, type H2cSession, H2cSessions } from "./h2c_sessions.ts";
import { rawClient, spec, TestStore, withProxy } from "./_testing.ts";
import {
  h2cServer,
  h2cTarget,
  privateConn,
  proxiedH2cServer,
  silentServer,
  until,
} from "./_h2_testing.ts";
import { unusedPort } from "../../test/ports.ts";

/** A private connection for `client` from 198.51.100.`n`. */
function priv(client: object, n: number) {
  return privateConn(client, `PROXY TCP4 198.51.100.${n} 127.0.0.1 40000 80\r\n`);
}

Deno.test("H2cSessions: a session whose instance never sends SETTINGS times out and its connection closes", async () => {
  const server = await silentServer();
  const pool = new H2cSessions({ connectTimeoutMs: 100 });
  const t = h2cTarget(server.port);
  try {
    const shared = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    const own = await new Promise<H2cSession>((r) => pool.acquire(t, r, priv({}, 1)));
    await until(() => server.total() === 2, "both connections accepted");
    // TCP connected, but that is not a connection to an HTTP/2 instance yet.
    assert.equal(shared.connected, false);
    await until(() => shared.retired && own.retired, "both sessions time out");
    await until(() => server.open() === 0, "the instance's connections close");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("H2cSessions: a silent instance's private sessions close with their client and with close()", async () => {
  const server = await silentServer();
  const pool = new H2cSessions({ connectTimeoutMs: 60_000 });
  const t = h2cTarget(server.port);
  const clients = [new EventEmitter(), new EventEmitter(), new EventEmitter()];
  try {
    for (const [i, c] of clients.entries()) pool.acquire(t, () => {}, priv(c, i + 1));
    pool.acquire(t, () => {}); // and a shared one
    await until(() => server.open() === 4, "four connections accepted");
    clients[0]!.emit("close");
    await until(() => server.open() === 3, "the departed client's connection closes");
    pool.close();
    await until(() => server.open() === 0, "close() frees the others");
  } finally {
    pool.close();
    await server.close();
  }
});

/** Resolves once the instance's SETTINGS reached `s`. */
function connected(s: H2cSession): Promise<unknown> {
  return new Promise((r) => s.session.once("remoteSettings", r));
}

Deno.test("H2cSessions: private sessions to a target stay under privateSessionsPerTargetMax; an idle one makes room", async () => {
  const server = await proxiedH2cServer();
  const pool = new H2cSessions({ connectTimeoutMs: 1000, privateSessionsPerTargetMax: 2 });
  const t = h2cTarget(server.port);
  const [a, b, c] = [new EventEmitter(), new EventEmitter(), new EventEmitter()];
  try {
    const sa = await new Promise<H2cSession>((r) => pool.acquire(t, r, priv(a, 1)));
    const sb = await new Promise<H2cSession>((r) => pool.acquire(t, r, priv(b, 2)));
    assert.equal(pool.privateSessionCount(t.key), 2);
    await Promise.all([sa, sb].map(connected));
    // At the cap with every session busy: c waits.
    let sc: H2cSession | null = null;
    pool.acquire(t, (s) => sc = s, priv(c, 3));
    assert.equal(sc, null);
    // a's stream ends: its idle session closes for c, who gets one of its own.
    pool.release(t, sa);
    assert.equal(sa.retired, true);
    assert.notEqual(sc, null);
    assert.notEqual(sc, sa);
    assert.notEqual(sc, sb);
    assert.equal(pool.privateSessionCount(t.key), 2);
    await connected(sc!);
    // b idle, a asks again: b's session (the oldest idle) makes room at once.
    pool.release(t, sb);
    assert.equal(sb.retired, false); // nobody waited
    const again = await new Promise<H2cSession>((r) => pool.acquire(t, r, priv(a, 1)));
    assert.equal(sb.retired, true);
    assert.equal(pool.privateSessionCount(t.key), 2);
    assert.notEqual(again, sa);
    await until(() => server.total() === 4, "the instance accepts the 4 connections");
    // Shared sessions are not counted.
    pool.acquire(t, () => {});
    assert.equal(pool.privateSessionCount(t.key), 2);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("H2cSessions: a request waiting at the private cap gets a session when a client closes; a withdrawn one does not", async () => {
  const server = await proxiedH2cServer();
  const pool = new H2cSessions({ connectTimeoutMs: 1000, privateSessionsPerTargetMax: 1 });
  const t = h2cTarget(server.port);
  const [a, b, c] = [new EventEmitter(), new EventEmitter(), new EventEmitter()];
  try {
    await new Promise<H2cSession>((r) => pool.acquire(t, r, priv(a, 1)));
    let sb: H2cSession | null = null;
    let sc: H2cSession | null = null;
    const withdraw = pool.acquire(t, (s) => sb = s, priv(b, 2));
    pool.acquire(t, (s) => sc = s, priv(c, 3));
    withdraw(); // b's request gave up (its client's timeout, or it left)
    a.emit("close");
    assert.equal(sb, null);
    assert.notEqual(sc, null);
    assert.equal(pool.privateSessionCount(t.key), 1);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("H2cSessions: a refused private connect forgets the client's group and stops listening to it", async () => {
  const closed = await unusedPort();
  const pool = new H2cSessions({ connectTimeoutMs: 1000 });
  const t = h2cTarget(closed);
  const a = new EventEmitter();
  try {
    const s = await new Promise<H2cSession>((r) => pool.acquire(t, r, priv(a, 1)));
    await new Promise((r) => s.session.once("close", r));
    pool.release(t, s);
    assert.equal(s.retired, true);
    assert.equal(pool.privateClients, 0);
    assert.equal(a.listenerCount("close"), 0);
  } finally {
    pool.close();
  }
});

Deno.test("HttpProxy: an h2c request that finds every session of its instance full waits the queue timeout, then 503", async () => {
  // One stream per session (the instance's SETTINGS), answered only when told.
  const held: http2.ServerHttp2Stream[] = [];
  const server = await h2cServer((stream) => held.push(stream), { maxConcurrentStreams: 1 });
  const ts = new TestStore();
  const port = server.port;
  ts.register(spec({ id: "rpc-1", service: "rpc", port, meta: { "berth.http.proto": "h2c" } }));
  const GET = "GET / HTTP/1.1\r\nhost: web.test\r\nconnection: close\r\n\r\n";
  const head = { until: (r: string) => r.includes("\r\n\r\n") };
  try {
    await withProxy(ts, { queueTimeoutMs: 300 }, async (proxyPort) => {
      // One request at a time, so that each finds the others' sessions connected and full.
      const busy: Promise<unknown>[] = [];
      for (let i = 1; i <= H2C_SESSIONS_PER_TARGET_MAX; i++) {
        busy.push(rawClient(proxyPort, GET, head));
        await until(() => held.length === i, `request ${i} reaches the instance`);
      }
      const late = await rawClient(proxyPort, GET, head);
      assert.match(late.received, /^HTTP\/1\.1 503 [^]*has all its connections busy/);
      assert.equal(held.length, H2C_SESSIONS_PER_TARGET_MAX);
      for (const s of held) {
        s.respond({ ":status": 200 });
        s.end();
      }
      await Promise.all(busy);
    });
  } finally {
    await server.close();
  }
});
