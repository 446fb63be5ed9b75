/**
 * DnsWorkerPool.reconfigure(): the DNS settings a SIGHUP reloads reach every worker (README
 * "Shutdown and reload").
 */
import assert from "node:assert/strict";
import { decode, filledStore, frame, query, tcpExchange, testServer } from "../_testing.ts";
import type { HostPort } from "../../lib/host_port.ts";
import { DnsWorkerPool } from "./pool.ts";
import type { Store } from "../../store/mod.ts";

function testPool(store: Store, recursors: HostPort[] = []): DnsWorkerPool {
  return new DnsWorkerPool({
    store,
    listen: { host: "127.0.0.1", port: 0 },
    domain: "berth.",
    edgeDomain: null,
    ttl: 0,
    recursors,
    workers: 2,
  });
}

/** Answers to `name` on `n` TCP connections (the kernel spreads them over the workers). */
async function answers(pool: DnsWorkerPool, name: string, n = 8) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const [bytes] = await tcpExchange(pool.address.tcp, frame(query(name, "A")), 1);
    out.push(decode(bytes!));
  }
  return out;
}

/** Asks until every answer satisfies `ok` (workers follow by message). */
async function eventually(ask: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await ask()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`never: ${what}`);
}

Deno.test("DnsWorkerPool.reconfigure() has every worker answer with the new TTLs", async () => {
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], [
    { id: "web1", service: "web" },
    { id: "db1", service: "db" },
  ]);
  const pool = testPool(store);
  await pool.start();
  try {
    const ttls = async (name: string) => (await answers(pool, name)).map((r) => r.answers[0]?.ttl);
    assert.deepEqual(new Set(await ttls("web.service.berth")), new Set([0]));
    await pool.reconfigure({ ttl: 30, serviceTtl: new Map([["db", 5]]), recursors: [] });
    await eventually(
      async () => (await ttls("web.service.berth")).every((t) => t === 30),
      "web answered with TTL 30 by every worker",
    );
    assert.deepEqual(new Set(await ttls("db.service.berth")), new Set([5]));
  } finally {
    await pool.close();
    store.close();
  }
});

Deno.test("DnsWorkerPool.reconfigure() relays to new recursors (not serving the old ones' kept answers), and refuses once there are none", async () => {
  const up = filledStore([{ name: "u1", address: "10.9.0.1" }], [
    { id: "api1", service: "api", address: "10.9.0.10", port: 80 },
  ]);
  const upstream = testServer(up.store, { domain: "up.", edgeDomain: null, ttl: 30 });
  await upstream.start();
  const other = filledStore([{ name: "u2", address: "10.8.0.1" }], [
    { id: "api2", service: "api", address: "10.8.0.20", port: 80 },
  ]);
  const otherUpstream = testServer(other.store, { domain: "up.", edgeDomain: null, ttl: 30 });
  await otherUpstream.start();
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], []);
  const pool = testPool(store);
  await pool.start();
  try {
    const all = async (ok: (r: ReturnType<typeof decode>) => boolean) =>
      (await answers(pool, "api.service.up")).every(ok);
    assert.equal(await all((r) => r.rcode === "REFUSED"), true);
    await pool.reconfigure({ ttl: 0, serviceTtl: new Map(), recursors: [upstream.address.udp] });
    await eventually(
      () => all((r) => r.answers.map((a) => a.data).join() === "10.9.0.10"),
      "api.service.up relayed by every worker",
    );
    // Answers of the old recursor kept (TTL 30) are not served after the change.
    const recursors = [otherUpstream.address.udp];
    await pool.reconfigure({ ttl: 0, serviceTtl: new Map(), recursors });
    await eventually(
      () => all((r) => r.answers.map((a) => a.data).join() === "10.8.0.20"),
      "the new recursor's answer from every worker",
    );
    await pool.reconfigure({ ttl: 0, serviceTtl: new Map(), recursors: [] });
    await eventually(() => all((r) => r.rcode === "REFUSED"), "REFUSED by every worker");
  } finally {
    await pool.close();
    await upstream.close();
    await otherUpstream.close();
    up.store.close();
    other.store.close();
    store.close();
  }
});
