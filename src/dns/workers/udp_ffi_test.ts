import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { openUdpBatchSocket } from "../../lib/ffi_udp.ts";
import { CLIENT_TIMEOUT_MS, filledStore, query } from "../_testing.ts";
import { DnsWorkerPool } from "./pool.ts";

/**
 * Sends one query from each of `n` sockets (distinct source ports: the kernel spreads them over
 * the SO_REUSEPORT sockets by that hash) and counts the answers that come within the client
 * timeout.
 */
async function answeredOf(port: number, n: number): Promise<number> {
  const socks = await Promise.all([...Array(n)].map(async () => {
    const s = createSocket("udp4");
    await new Promise<void>((ok) => s.bind(0, "127.0.0.1", ok));
    return s;
  }));
  let answered = 0;
  const all = new Promise<void>((done) => {
    for (const s of socks) {
      s.on("message", () => {
        if (++answered === n) done();
      });
    }
  });
  for (const s of socks) s.send(query("web.service.berth", "A"), port, "127.0.0.1");
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([all, new Promise((r) => timer = setTimeout(r, CLIENT_TIMEOUT_MS))]);
  clearTimeout(timer);
  await Promise.all(socks.map((s) => new Promise<void>((ok) => s.close(ok))));
  return answered;
}

Deno.test("DnsWorkerPool answers every UDP query after a worker restart and frees the port on close", async () => {
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], [
    { id: "web1", service: "web", address: "10.0.0.1" },
  ]);
  const pool = new DnsWorkerPool({
    store,
    listen: { host: "127.0.0.1", port: 0 },
    domain: "berth.",
    edgeDomain: null,
    ttl: 0,
    recursors: [],
    workers: 2,
  });
  await pool.start();
  const { port } = pool.address.udp;
  try {
    assert.deepEqual(pool.udpPaths, ["ffi", "ffi"]);
    assert.equal(await answeredOf(port, 64), 64);
    // A worker ended as a crash ends it: its socket, left open, is served by its replacement
    // (before, it stayed in the port's group unread and about a third of the queries were lost).
    pool.terminateWorker(1);
    for (let i = 0; i < 200 && (pool.restarts < 1 || pool.udpPaths.includes(null)); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.deepEqual(pool.udpPaths, ["ffi", "ffi"]);
    assert.equal(await answeredOf(port, 64), 64);
  } finally {
    await pool.close();
    store.close();
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
