/**
 * Test helpers of the DNS worker pool.
 *
 * @module
 */
import { filledStore } from "../_testing.ts";
import { DnsWorkerPool } from "./pool.ts";

/** A started pool of two workers over a store with service `web`; `close` stops it and the store. */
export async function startedPool() {
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
  return {
    pool,
    close: async () => {
      await pool.close();
      store.close();
    },
  };
}
