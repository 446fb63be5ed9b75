import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { closeUdpFd, openUdpBatchSocket } from "../../lib/ffi_udp.ts";
import { CLIENT_TIMEOUT_MS, decode, filledStore, query, udpExchange } from "../_testing.ts";
import { ZoneView } from "../zone_view.ts";
import type { FromWorker, InitMessage } from "./protocol.ts";
import { WorkerDns } from "./worker_server.ts";
import { startedPool } from "./_testing.ts";

/**
 * Sends one query from each of `n` sockets (distinct source ports: the kernel spreads them over
 * the SO_REUSEPORT sockets by that hash) and counts the answers that come within the client
 * timeout; an answer without web1's address fails.
 */
async function answeredOf(port: number, n: number, sent?: () => void): Promise<number> {
  const socks = await Promise.all([...Array(n)].map(async () => {
    const s = createSocket("udp4");
    await new Promise<void>((ok) => s.bind(0, "127.0.0.1", ok));
    return s;
  }));
  let answered = 0;
  const all = new Promise<void>((done) => {
    for (const s of socks) {
      s.on("message", (m) => {
        const r = decode(new Uint8Array(m));
        assert.deepEqual([r.rcode, r.answers.map((a) => a.data)], ["NOERROR", ["10.0.0.1"]]);
        if (++answered === n) done();
      });
    }
  });
  for (const s of socks) s.send(query("web.service.berth", "A"), port, "127.0.0.1");
  sent?.();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([all, new Promise((r) => timer = setTimeout(r, CLIENT_TIMEOUT_MS))]);
  clearTimeout(timer);
  await Promise.all(socks.map((s) => new Promise<void>((ok) => s.close(ok))));
  return answered;
}

Deno.test("DnsWorkerPool answers every UDP query after a worker restart and frees the port on close", async () => {
  const { pool, close } = await startedPool();
  const { port } = pool.address.udp;
  try {
    assert.deepEqual(pool.udpPaths, ["ffi", "ffi"]);
    assert.equal(await answeredOf(port, 64), 64);
    // A worker ended as a crash ends it: its socket, left open, is served by its replacement
    // (before, it stayed in the port's group unread and about a third of the queries were lost).
    pool.terminateWorker(1);
    // Sent while worker 1 is down: its share waits in its socket for the replacement, which
    // answers it from the zone (not from the empty one it starts with).
    let sentAt = 0;
    assert.equal(await answeredOf(port, 64, () => sentAt = pool.restarts), 64);
    assert.equal(sentAt, 0, "the replacement started before the queries were sent");
    for (
      const end = Date.now() + 60_000;
      // a restarted worker type-checks under `deno test`
      Date.now() < end && (pool.restarts < 1 || pool.udpPaths.includes(null));
    ) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.deepEqual(pool.udpPaths, ["ffi", "ffi"]);
    assert.equal(await answeredOf(port, 64), 64);
  } finally {
    await close();
  }
  // Every socket closed: the port binds without SO_REUSEPORT (a socket is released once a
  // terminated worker's last poll on it has returned: within IDLE_POLL_MS).
  let error: unknown = null;
  for (let i = 0; i < 120; i++) {
    try {
      openUdpBatchSocket("127.0.0.1", port).socket?.close();
      error = null;
      break;
    } catch (e) {
      error = e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  assert.equal(error, null, `port ${port} still bound after close: ${error}`);
});

Deno.test("WorkerDns.start() binds only once the zone came (queries kept in the socket wait for it)", async () => {
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], [
    { id: "web1", service: "web", address: "10.0.0.1" },
  ]);
  const zone = { domain: "berth.", edgeDomain: null, ttl: 0 };
  const view = new ZoneView({ store, zone });
  await view.start();
  const posted: FromWorker[] = [];
  const init: InitMessage = {
    type: "init",
    index: 1,
    host: "127.0.0.1",
    port: 0,
    udp: "ffi",
    dgramFallback: false,
    zone,
    recursion: false,
    forwardInflightMax: 8,
  };
  const w = new WorkerDns(init, (m) => posted.push(m));
  try {
    const started = w.start();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(posted.length, 0, "listening before the zone came");
    w.onMessage({ type: "zone", delta: view.zone.rows() });
    await started;
    const listening = posted.find((m) => m.type === "listening");
    assert.ok(listening?.type === "listening" && listening.udp === "ffi");
    const r = decode(
      await udpExchange(
        { host: "127.0.0.1", port: listening.port },
        query("web.service.berth", "A"),
      ),
    );
    assert.deepEqual(r.answers.map((a) => a.data), ["10.0.0.1"]);
    w.close();
    if (listening.udpFd !== undefined) closeUdpFd(listening.udpFd);
  } finally {
    w.close();
    view.close();
    store.close();
  }
});
