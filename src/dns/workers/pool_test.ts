import assert from "node:assert/strict";
import { seededRandom } from "../../../raft/sim/prng.ts";
import {
  decode,
  filledStore,
  frame,
  query,
  tcpExchange,
  testServer,
  udpExchange,
  udpSend,
} from "../_testing.ts";
import type { Store } from "../../store/mod.ts";
import type { DnsOptions } from "../server.ts";
import { DnsWorkerPool } from "./pool.ts";
import { openUdpBatchSocket } from "../../lib/ffi_udp.ts";

function testPool(store: Store, over: Partial<DnsOptions> & { workers?: number } = {}) {
  return new DnsWorkerPool({
    store,
    listen: { host: "127.0.0.1", port: 0 },
    domain: "berth.",
    edgeDomain: "edge.example.",
    ttl: 0,
    recursors: [],
    workers: 2,
    ...over,
  });
}

function basic() {
  return filledStore([{ name: "n1", address: "192.168.1.1", meta: { proxy: "true" } }], [
    { id: "web1", service: "web", address: "10.0.0.1" },
    { id: "web2", service: "web", address: "10.0.0.2" },
  ]);
}

const addresses = (b: Uint8Array) => decode(b).answers.map((a) => a.data).sort();

/** Asks until `ok` holds for an answer (the workers follow the store by message). */
/** Waits up to 60 s: a worker started again type-checks under `deno test`, slow on a loaded host. */
const EVENTUALLY_MS = 60_000;

async function eventually(ask: () => Promise<Uint8Array>, ok: (b: Uint8Array) => boolean) {
  let last: Uint8Array | null = null;
  for (const end = Date.now() + EVENTUALLY_MS; Date.now() < end;) {
    try {
      last = await ask();
      if (ok(last)) return last;
    } catch { /* a worker restarting: ask again */ }
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`never got the expected answer (last: ${last && JSON.stringify(decode(last))})`);
}

Deno.test("DnsWorkerPool answers UDP and TCP on one port from replicas that follow the store", async () => {
  const { store, apply } = basic();
  const pool = testPool(store);
  await pool.start();
  try {
    assert.equal(pool.udpPaths.filter((p) => p !== "none").length >= 1, true);
    const { udp, tcp } = pool.address;
    assert.equal(udp.port, tcp.port);
    const r = await udpExchange(udp, query("web.service.berth", "A", { id: 7 }));
    assert.equal(decode(r).id, 7);
    assert.deepEqual(addresses(r), ["10.0.0.1", "10.0.0.2"]);
    // Several connections, spread by the kernel over the workers' listeners.
    for (let i = 0; i < 8; i++) {
      const [t] = await tcpExchange(tcp, frame(query("web.service.berth", "A")), 1);
      assert.deepEqual(addresses(t!), ["10.0.0.1", "10.0.0.2"]);
    }
    apply({
      type: "register",
      instance: { id: "web3", service: "web", node: "n1", address: "10.0.0.3", port: 80 },
    });
    await eventually(
      () => udpExchange(udp, query("web.service.berth", "A")),
      (b) => addresses(b).includes("10.0.0.3"),
    );
    for (let i = 0; i < 8; i++) {
      const [t] = await tcpExchange(tcp, frame(query("web.service.berth", "A")), 1);
      assert.deepEqual(addresses(t!), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    }
  } finally {
    await pool.close();
    store.close();
  }
});

Deno.test("DnsWorkerPool relays other names to the main thread's forwarder", async () => {
  const up = filledStore([{ name: "u1", address: "10.9.0.1" }], [
    { id: "api1", service: "api", address: "10.9.0.10", port: 80 },
  ]);
  const upstream = testServer(up.store, { domain: "up.", edgeDomain: null, ttl: 30 });
  await upstream.start();
  const { store } = basic();
  const pool = testPool(store, { recursors: [upstream.address.udp] });
  await pool.start();
  try {
    const r = decode(await udpExchange(pool.address.udp, query("API.service.up", "A", { id: 9 })));
    assert.equal(r.id, 9);
    assert.ok(r.flag_ra);
    assert.equal(r.questions[0]?.name, "API.service.up");
    assert.deepEqual(r.answers.map((a) => a.data), ["10.9.0.10"]);
    const [t] = await tcpExchange(pool.address.tcp, frame(query("api.service.up", "A")), 1);
    assert.deepEqual(decode(t!).answers.map((a) => a.data), ["10.9.0.10"]);
    // Upstream gone: the cached answer is still served (the worker's cache or the main thread's).
    await upstream.close();
    for (let i = 0; i < 6; i++) {
      const c = decode(
        await udpExchange(pool.address.udp, query("api.service.up", "A", { id: i })),
      );
      assert.equal(c.id, i);
      assert.deepEqual(c.answers.map((a) => a.data), ["10.9.0.10"]);
      assert.ok(c.answers[0]!.ttl! <= 30);
    }
  } finally {
    await pool.close();
    await upstream.close();
    up.store.close();
    store.close();
  }
});

Deno.test("DnsWorkerPool survives malformed packets on every worker (FORMERR or drop, no crash)", async () => {
  const { store } = basic();
  const pool = testPool(store);
  await pool.start();
  try {
    const { udp, tcp } = pool.address;
    const good = query("web.service.berth", "A", { id: 0x1234 });
    const pointerLoop = good.slice(0, 12);
    const loop = new Uint8Array([...pointerLoop, 0xc0, 12, 0, 1, 0, 1]); // points at itself
    const hugeCounts = good.slice();
    hugeCounts.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 6); // an/ns/ar 65535 each
    const bad = [
      new Uint8Array(0),
      good.slice(0, 11),
      good.slice(0, 20),
      loop,
      hugeCounts,
    ];
    const random = seededRandom(7);
    for (let i = 0; i < 50; i++) {
      bad.push(Uint8Array.from({ length: Math.floor(random() * 60) }, () => random() * 256));
    }
    for (const b of bad) await udpSend(udp, b);
    // FORMERR with the id echoed for the readable headers.
    for (const b of [loop, hugeCounts, good.slice(0, 20)]) {
      const r = await udpExchange(udp, b);
      assert.equal((r[0]! << 8) | r[1]!, 0x1234);
      assert.equal(r[3]! & 0x0f, 1, "FORMERR");
    }
    // Over TCP on many connections (the kernel spreads them over every worker's listener).
    for (let c = 0; c < 16; c++) {
      const framed = bad.filter((b) => b.length >= 12).map((b) => frame(b));
      const all = new Uint8Array(framed.reduce((n, f) => n + f.length, 0));
      let off = 0;
      for (const f of framed) all.set(f, (off += f.length) - f.length);
      const answers = await tcpExchange(tcp, new Uint8Array([...all, ...frame(good)]), 1)
        .catch(() => []);
      for (const a of answers) assert.ok(a.length >= 12);
      // 64 KiB announced: the connection is closed, the worker keeps serving.
      const huge = new Uint8Array(2 + 65_535);
      huge[0] = 0xff;
      huge[1] = 0xff;
      await assert.rejects(tcpExchange(tcp, huge, 1));
      const [ok] = await tcpExchange(tcp, frame(good), 1);
      assert.deepEqual(addresses(ok!), ["10.0.0.1", "10.0.0.2"]);
    }
    assert.deepEqual(addresses(await udpExchange(udp, good)), ["10.0.0.1", "10.0.0.2"]);
    assert.equal(pool.restarts, 0, "a worker crashed");
  } finally {
    await pool.close();
    store.close();
  }
});

Deno.test("DnsWorkerPool starts a killed worker again and answers go on", async () => {
  const { store } = basic();
  const pool = testPool(store);
  await pool.start();
  try {
    const { udp, tcp } = pool.address;
    const ask = async () => (await tcpExchange(tcp, frame(query("web.service.berth", "A")), 1))[0]!;
    // Queries flowing while both workers are killed, one after the other.
    let flowing = true;
    const answered: number[] = [];
    const flow = (async () => {
      while (flowing) {
        try {
          await ask();
          answered.push(1);
        } catch { /* a connection to the killed worker's listener */ }
      }
    })();
    await eventually(ask, (b) => addresses(b).length === 2);
    pool.terminateWorker(0);
    await eventually(
      () => udpExchange(udp, query("web.service.berth", "A")),
      (b) => addresses(b).length === 2,
    );
    pool.terminateWorker(1);
    for (
      const end = Date.now() + EVENTUALLY_MS;
      Date.now() < end && !(pool.restarts >= 2 && pool.udpPaths.every((p) => p !== null));
    ) {
      await new Promise((r) => setTimeout(r, 25));
    }
    await eventually(ask, (b) => addresses(b).length === 2);
    flowing = false;
    await flow;
    assert.equal(pool.restarts >= 2, true, `restarts: ${pool.restarts}`);
    assert.ok(answered.length > 0);
    for (let i = 0; i < 10; i++) assert.deepEqual(addresses(await ask()), ["10.0.0.1", "10.0.0.2"]);
  } finally {
    await pool.close();
    store.close();
  }
});

Deno.test("DnsWorkerPool logs a worker's error and starts it again, until closed", async () => {
  const { store } = basic();
  const pool = new DnsWorkerPool({
    store,
    listen: { host: "127.0.0.1", port: 0 },
    domain: "berth.",
    edgeDomain: null,
    ttl: 0,
    recursors: [],
    workers: 2,
    workerUrl: new URL("./_failing_worker.ts", import.meta.url),
  });
  await pool.start();
  try {
    for (const end = Date.now() + EVENTUALLY_MS; Date.now() < end && pool.restarts < 4;) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(pool.restarts >= 4, `restarts: ${pool.restarts}`);
  } finally {
    await pool.close();
    store.close();
  }
  const after = pool.restarts;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(pool.restarts, after, "started again after close()");
});

Deno.test("DnsWorkerPool.start() refuses a --dns address another process's SO_REUSEPORT socket holds", async () => {
  // What another berth agent (or an old one not yet gone) holds: without the probe the workers
  // joined its port group and both answered a share of the clients, nothing logged.
  const opened = openUdpBatchSocket("127.0.0.1", 0, { reusePort: true });
  assert.ok(opened.socket !== null, "this test needs FFI");
  const held = opened.socket;
  const { store } = basic();
  const pool = testPool(store, { listen: { host: "127.0.0.1", port: held.address.port } });
  try {
    await assert.rejects(
      pool.start(),
      /^Error: dns: cannot listen on 127\.0\.0\.1:\d+: UDP: address in use by another process/,
    );
  } finally {
    await pool.close();
    held.close();
    store.close();
  }
});
