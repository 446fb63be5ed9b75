import assert from "node:assert/strict";
import net from "node:net";
import type { Target } from "./balancer.ts";
import { type Lease, type PoolEvents, UpstreamPool } from "./upstream_pool.ts";
import { type H2cSession, H2cSessions } from "./h2c_sessions.ts";
import { waitFor } from "../../test/wait.ts";

function recorder(): PoolEvents & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    ejected: (t) => log.push(`ejected ${t.service} ${t.id}`),
    connectFailed: (t) => log.push(`connectFailed ${t.service} ${t.id}`),
  };
}

const target = (port: number, id = "web-a"): Target => ({
  id,
  service: "web",
  address: "127.0.0.1",
  port,
  weight: 1,
  key: `${id}|127.0.0.1|${port}`,
});

/** A lease that resolves with whether it connected, once its connection closes. */
function closingLease(): { lease: Lease; closed: Promise<boolean> } {
  let connected = false;
  const { promise, resolve } = Promise.withResolvers<boolean>();
  let socket: net.Socket | null = null;
  const lease: Lease = {
    attach: (c) => socket = c.socket,
    onConnect: () => {
      connected = true;
      socket?.destroy();
    },
    onData: () => {},
    onDrain: () => {},
    onClose: () => resolve(connected),
  };
  return { lease, closed: promise };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

Deno.test("UpstreamPool events: ejected once when passive health ejects, not for another worker's ejection", () => {
  const events = recorder();
  const pool = new UpstreamPool({ failuresMax: 2, ejectMs: 100, log: () => {}, events });
  try {
    const t = target(1);
    const up = pool.get(t);
    pool.failed(up, "ECONNREFUSED");
    assert.deepEqual(events.log, []);
    pool.failed(up, "ECONNREFUSED");
    pool.failed(up, "ECONNREFUSED"); // ejected already: the period runs on
    assert.deepEqual(events.log, ["ejected web web-a"]);
    pool.eject(target(2, "web-b").key, 1000);
    pool.get(target(2, "web-b"));
    assert.deepEqual(events.log, ["ejected web web-a"]);
  } finally {
    pool.close();
  }
});

Deno.test("UpstreamPool events: connectFailed for a refused connection, not for one that connected", async () => {
  const events = recorder();
  const pool = new UpstreamPool({ log: () => {}, events });
  const server = net.createServer((c) => c.on("error", () => {}));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const refused = closingLease();
    pool.acquire(pool.get(target(await freePort())), refused.lease);
    assert.equal(await refused.closed, false);
    assert.deepEqual(events.log, ["connectFailed web web-a"]);
    const open = closingLease();
    const port = (server.address() as net.AddressInfo).port;
    pool.acquire(pool.get(target(port, "web-b")), open.lease);
    assert.equal(await open.closed, true);
    assert.deepEqual(events.log, ["connectFailed web web-a"]);
    pool.connectFailed(target(port, "web-c")); // a relay's or h2c session's failed connect
    assert.deepEqual(events.log, ["connectFailed web web-a", "connectFailed web web-c"]);
  } finally {
    pool.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

Deno.test("H2cSessions.onConnectFailed: once per session that could not connect, not per stream", async () => {
  const failed: string[] = [];
  const sessions = new H2cSessions({
    connectTimeoutMs: 5000,
    onConnectFailed: (t) => failed.push(t.id),
  });
  const dead = target(await freePort(), "h2c-a");
  try {
    const got: H2cSession[] = [];
    for (let i = 0; i < 3; i++) sessions.acquire(dead, (s) => got.push(s));
    assert.equal(new Set(got).size, 1, "three streams share one session");
    await waitFor("the session retired", () => sessions.sessionCount(dead.key) === 0);
    assert.deepEqual(failed, ["h2c-a"]);
  } finally {
    sessions.close();
  }
});
