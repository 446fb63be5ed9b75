/**
 * DnsWorkerPool.drain(): SIGTERM's graceful shutdown in the worker threads (README "Shutdown
 * and reload").
 */
import assert from "node:assert/strict";
import { createConnection } from "node:net";
import { filledStore, heldRecursor, query, udpExchange } from "../_testing.ts";
import type { HostPort } from "../../lib/host_port.ts";
import type { Store } from "../../store/mod.ts";
import { DnsWorkerPool } from "./pool.ts";
import { TCP_IDLE_TIMEOUT_MS } from "../tcp.ts";

function testPool(store: Store, recursors: HostPort[]): DnsWorkerPool {
  return new DnsWorkerPool({
    store,
    listen: { host: "127.0.0.1", port: 0 },
    domain: "berth.",
    edgeDomain: null,
    ttl: 0,
    recursors,
    workers: 2,
    forward: { timeoutMs: 60_000 },
  });
}

Deno.test("DnsWorkerPool.drain() closes idle TCP connections at once and answers a relayed UDP query", async () => {
  const recursor = await heldRecursor();
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], []);
  const pool = testPool(store, [recursor.address]);
  await pool.start();
  try {
    const idle = createConnection({ host: "127.0.0.1", port: pool.address.tcp.port });
    idle.on("error", () => {});
    await new Promise((resolve) => idle.once("connect", resolve));
    const idleClosed = new Promise<void>((resolve) => idle.once("close", () => resolve()));
    const relayed = udpExchange(pool.address.udp, query("example.com", "A")).catch(() => null);
    await recursor.arrived;
    let drained: number | null = null;
    const draining = pool.drain(60_000).then((n) => drained = n);
    // Closed by the drain, not by the idle timeout (TCP_IDLE_TIMEOUT_MS) nor the drain's end.
    let wait: ReturnType<typeof setTimeout> | undefined;
    const first = await Promise.race([
      idleClosed.then(() => "closed"),
      new Promise((r) => wait = setTimeout(() => r("still open"), TCP_IDLE_TIMEOUT_MS / 2)),
    ]);
    clearTimeout(wait);
    assert.equal(first, "closed");
    assert.equal(drained, null, "the relayed query is still held");
    recursor.release();
    await draining;
    assert.equal(drained, 0);
    // The UDP client gets its answer: the socket stops taking queries, not sending answers.
    assert.notEqual(await relayed, null, "the relayed query's answer was dropped");
  } finally {
    await pool.close();
    await recursor.close();
    store.close();
  }
});

Deno.test("DnsWorkerPool.drain() counts a relayed query cut at the timeout", async () => {
  const recursor = await heldRecursor(); // never released
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], []);
  const pool = testPool(store, [recursor.address]);
  await pool.start();
  try {
    const lost = udpExchange(pool.address.udp, query("example.com", "A")).catch(() => null);
    await recursor.arrived;
    assert.equal(await pool.drain(200), 1);
    assert.equal(await lost, null);
  } finally {
    await pool.close();
    await recursor.close();
    store.close();
  }
});
