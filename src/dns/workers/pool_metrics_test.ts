import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { TCP_QUERY_BYTES_MAX } from "../tcp.ts";
import { waitFor } from "../../../test/wait.ts";
import { frame, query, tcpExchange, udpExchange } from "../_testing.ts";
import { parseExposition, valueOf } from "../../lib/_prom_parse.ts";
import { renderDnsMetrics } from "../dns_metrics.ts";
import type { DnsWorkerPool } from "./pool.ts";
import { startedPool } from "./_testing.ts";
import { WorkerGather } from "../../lib/worker_gather.ts";

const count = async (pool: DnsWorkerPool, labels: Record<string, string> = {}) =>
  valueOf(
    parseExposition(renderDnsMetrics((await pool.queryCounts()).counts)),
    "berth_dns_queries_total",
    labels,
  );

Deno.test("DnsWorkerPool.queryCounts() sums the workers' counts (UDP and TCP), a stopped worker's kept", async () => {
  const { pool, close } = await startedPool();
  try {
    const to = pool.address.udp;
    const m = 30;
    for (let i = 0; i < m; i++) await udpExchange(to, query("web.service.berth.", "A", { id: i }));
    await udpExchange(to, query("nope.service.berth.", "AAAA"));
    await tcpExchange(pool.address.tcp, frame(query("web.service.berth.", "SRV")), 1);
    const { missing } = await pool.queryCounts();
    assert.deepEqual(missing, []);
    assert.equal(await count(pool, { rcode: "NOERROR", qtype: "A" }), m);
    assert.equal(await count(pool, { rcode: "NXDOMAIN", qtype: "AAAA" }), 1);
    assert.equal(await count(pool, { rcode: "NOERROR", qtype: "SRV" }), 1);
    // A worker that stops keeps its counts in the sum.
    pool.terminateWorker(0);
    assert.equal(await count(pool), m + 2);
  } finally {
    await close();
  }
});

Deno.test("DnsWorkerPool.queryCounts(): a worker that crashes between its answer and the gather's end is counted once, never less later", async () => {
  const answer = WorkerGather.prototype.answer;
  const { pool, close } = await startedPool();
  try {
    const m = 30;
    for (let i = 0; i < m; i++) {
      await udpExchange(pool.address.udp, query("web.service.berth.", "A", { id: i }));
    }
    assert.equal(await count(pool), m);
    let killed = -1;
    WorkerGather.prototype.answer = function (id, slot, value) {
      answer.call(this, id, slot, value);
      const counted = Array.isArray(value) && value.some((v) => v > 0);
      if (killed === -1 && counted) {
        killed = (slot as { index: number }).index;
        pool.terminateWorker(killed); // after its answer
      }
    };
    assert.equal(await count(pool), m, "the scrape the worker crashed in");
    WorkerGather.prototype.answer = answer;
    assert.notEqual(killed, -1);
    assert.equal(await count(pool), m, "the next scrape");
  } finally {
    WorkerGather.prototype.answer = answer;
    await close();
  }
});

Deno.test("DnsWorkerPool counts a UDP datagram longer than its buffer as dropped", async () => {
  const { pool, close } = await startedPool();
  const s = createSocket("udp4");
  try {
    const big = new Uint8Array(TCP_QUERY_BYTES_MAX + 100);
    big.set(query("web.service.berth.", "A"));
    await new Promise<void>((ok, fail) =>
      s.send(big, pool.address.udp.port, "127.0.0.1", (e) => e ? fail(e) : ok())
    );
    const metric = async (name: string) =>
      valueOf(parseExposition(renderDnsMetrics((await pool.queryCounts()).counts)), name);
    await waitFor(
      "the long datagram counted",
      async () => await metric("berth_dns_dropped_total") === 1,
    );
    assert.equal(await metric("berth_dns_queries_total"), 0, "not answered");
  } finally {
    s.close();
    await close();
  }
});
