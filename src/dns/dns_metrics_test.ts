import assert from "node:assert/strict";
import { parseExposition, valueOf } from "../lib/_prom_parse.ts";
import {
  filledStore,
  frame,
  instance,
  query,
  tcpExchange,
  testServer,
  udpExchange,
} from "./_testing.ts";
import { Answerer } from "./answerer.ts";
import {
  addCounts,
  COUNTS_LENGTH,
  DnsCounts,
  qtypeIndex,
  QTYPES,
  renderDnsMetrics,
  zeroCounts,
} from "./dns_metrics.ts";
import { errorResponse } from "./reply.ts";
import { parseQuery, type Query, RCODE } from "./wire.ts";
import { Zone } from "./zone.ts";

const zone = new Zone({
  instances: [instance({ id: "web1", service: "web", address: "10.0.0.1" })],
  nodes: [],
  version: 1,
}, { domain: "berth.", edgeDomain: null, ttl: 3 });

function text(a: Answerer) {
  return parseExposition(renderDnsMetrics(a.queries.snapshot()));
}

Deno.test("Answerer counts each query by rcode and question type", async () => {
  const upstream = (q: Query) =>
    Promise.resolve(errorResponse(q, RCODE.NXDOMAIN, { recursion: true }));
  const a = new Answerer({ zone: () => zone, forward: upstream });
  a.answer(query("web.service.berth.", "A"), false);
  a.answer(query("web.service.berth.", "A"), false); // from the answer cache
  a.answer(query("web.service.berth.", "SRV"), true);
  a.answer(query("nope.service.berth.", "AAAA"), false);
  a.answer(query("web.service.berth.", "NAPTR"), false);
  await a.answer(query("example.com.", "A"), false); // forwarded: counted when it is answered
  const e = text(a);
  const q = (rcode: string, qtype: string) =>
    valueOf(e, "berth_dns_queries_total", { rcode, qtype });
  assert.equal(q("NOERROR", "A"), 2);
  assert.equal(q("NOERROR", "SRV"), 1);
  assert.equal(q("NXDOMAIN", "AAAA"), 1);
  assert.equal(q("NXDOMAIN", "A"), 1);
  assert.equal(valueOf(e, "berth_dns_queries_total", { qtype: "other" }), 1);
  assert.equal(valueOf(e, "berth_dns_queries_total"), 6);
  assert.equal(valueOf(e, "berth_dns_dropped_total"), 0);
});

Deno.test("Answerer counts REFUSED, BADVERS, FORMERR without a question, and drops", () => {
  const a = new Answerer({ zone: () => zone, forward: null });
  a.answer(query("example.com.", "A"), false); // no recursors: REFUSED
  const v1 = query("web.service.berth.", "A", { udpPayloadSize: 1232 });
  v1[v1.length - 5] = 1; // OPT version 1
  a.answer(v1, false);
  const noQuestion = query("web.service.berth.", "A").slice(0, 12);
  noQuestion[5] = 0; // QDCOUNT 0
  a.answer(noQuestion, false);
  a.answer(new Uint8Array([1, 2, 3]), false); // no header: dropped
  const e = text(a);
  assert.equal(valueOf(e, "berth_dns_queries_total", { rcode: "REFUSED", qtype: "A" }), 1);
  assert.equal(valueOf(e, "berth_dns_queries_total", { rcode: "BADVERS", qtype: "A" }), 1);
  assert.deepEqual(parseQuery(noQuestion), { id: 4242, opcode: 0, rd: true, rcode: RCODE.FORMERR });
  assert.equal(valueOf(e, "berth_dns_queries_total", { rcode: "FORMERR", qtype: "none" }), 1);
  assert.equal(valueOf(e, "berth_dns_dropped_total"), 1);
});

Deno.test("qtypeIndex() names the common types and puts the rest under other", () => {
  assert.equal(QTYPES[qtypeIndex(1)], "A");
  assert.equal(QTYPES[qtypeIndex(28)], "AAAA");
  assert.equal(QTYPES[qtypeIndex(33)], "SRV");
  assert.equal(QTYPES[qtypeIndex(255)], "ANY");
  assert.equal(QTYPES[qtypeIndex(35)], "other");
  assert.equal(QTYPES[qtypeIndex(65280)], "other");
});

Deno.test("addCounts() sums the workers' counts slot by slot", () => {
  const a = new DnsCounts();
  const b = new DnsCounts();
  a.answered(0, 0);
  b.answered(0, 0);
  b.answered(3, 7);
  b.dropped();
  const sum = addCounts(addCounts(zeroCounts(), a.snapshot()), b.snapshot());
  assert.equal(sum.length, COUNTS_LENGTH);
  const e = parseExposition(renderDnsMetrics(sum));
  assert.equal(valueOf(e, "berth_dns_queries_total", { rcode: "NOERROR", qtype: "A" }), 2);
  assert.equal(valueOf(e, "berth_dns_queries_total", { rcode: "NXDOMAIN", qtype: "AAAA" }), 1);
  assert.equal(valueOf(e, "berth_dns_dropped_total"), 1);
  // Only counted label sets are written: bounded by RCODES × QTYPES.
  assert.equal(e.samples.filter((s) => s.name === "berth_dns_queries_total").length, 2);
});

Deno.test("DnsServer.queryCounts() gives the main thread's counts, with no worker missing", async () => {
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], [
    { id: "web1", service: "web", address: "10.0.0.1" },
  ]);
  const s = testServer(store);
  await s.start();
  try {
    await udpExchange(s.address.udp, query("web.service.berth.", "A"));
    await tcpExchange(s.address.tcp, frame(query("web.service.berth.", "A")), 1);
    const { counts, missing } = await s.queryCounts();
    assert.deepEqual(missing, []);
    const e = parseExposition(renderDnsMetrics(counts));
    assert.equal(valueOf(e, "berth_dns_queries_total", { rcode: "NOERROR", qtype: "A" }), 2);
  } finally {
    await s.close();
    store.close();
  }
});
