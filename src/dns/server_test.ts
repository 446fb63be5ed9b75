import assert from "node:assert/strict";
import {
  decode,
  filledStore,
  frame,
  manyInstances,
  query,
  tcpExchange,
  testServer,
  udpExchange,
  udpSend,
} from "./_testing.ts";
import type { DnsServer } from "./server.ts";
import { seededRandom } from "../../raft/sim/prng.ts";
import { apiInstanceSpec } from "../../test/fixtures.ts";
import { REBUILD_SLICE } from "./zone_view.ts";

/** Answers through the in-process path (no sockets); fails if the answer is forwarded. */
function ask(s: DnsServer, bytes: Uint8Array, tcp = false): Uint8Array | null {
  const r = s.answer(bytes, tcp);
  assert.ok(!(r instanceof Promise), "answer was forwarded");
  return r;
}

const basic = () =>
  filledStore(
    [
      { name: "n1", address: "192.168.1.1", meta: { proxy: "true" } },
      { name: "n2", address: "192.168.1.2", meta: { proxy: "true" } },
    ],
    [
      { id: "web1", service: "web", address: "10.0.0.1", port: 8001, tags: ["v1"] },
      { id: "web2", service: "web", address: "10.0.0.2", port: 8002, node: "n2" },
      ...manyInstances(100),
    ],
  );

Deno.test("DnsServer.answer() answers A authoritatively, echoing id and the question's case", () => {
  const { store } = basic();
  const s = testServer(store);
  const r = decode(ask(s, query("WeB.Service.BERTH", "A", { id: 777 }))!);
  assert.equal(r.id, 777);
  assert.equal(r.rcode, "NOERROR");
  assert.ok(r.flag_aa);
  assert.ok(r.flag_rd);
  assert.ok(!r.flag_ra);
  assert.ok(!r.flag_tc);
  assert.equal(r.questions[0]?.name, "WeB.Service.BERTH");
  assert.deepEqual(r.answers.map((a) => a.data).sort(), ["10.0.0.1", "10.0.0.2"]);
  assert.ok(r.answers.every((a) => a.name === "WeB.Service.BERTH" && a.ttl === 0));
  store.close();
});

Deno.test("DnsServer.answer() SRV carries targets and their addresses in additionals", () => {
  const { store } = basic();
  const s = testServer(store);
  const r = decode(ask(s, query("_web._tcp.service.berth", "SRV"))!);
  assert.deepEqual(r.answers.map((a) => a.data.port).sort(), [8001, 8002]);
  assert.deepEqual(
    r.additionals.map((a) => [a.name, a.data]).sort(),
    [["0a000001.addr.berth", "10.0.0.1"], ["0a000002.addr.berth", "10.0.0.2"]],
  );
  store.close();
});

Deno.test("DnsServer.answer() shuffles service answers and rotates edge answers", () => {
  const { store } = basic();
  const s = testServer(store);
  const firsts = new Set<string>();
  for (let i = 0; i < 20; i++) {
    firsts.add(decode(ask(s, query("big.service.berth", "A"), true)!).answers[0]?.data);
  }
  assert.ok(firsts.size > 1, "service answers always came in one order");
  const edge = [0, 1, 2].map((i) =>
    decode(ask(s, query("x.edge.example", "A", { id: i }))!).answers.map((a) => a.data)
  );
  assert.deepEqual(edge, [
    ["192.168.1.1", "192.168.1.2"],
    ["192.168.1.2", "192.168.1.1"],
    ["192.168.1.1", "192.168.1.2"],
  ]);
  store.close();
});

Deno.test("DnsServer.answer() NXDOMAIN and NODATA carry the SOA", () => {
  const { store } = basic();
  const s = testServer(store);
  const nx = decode(ask(s, query("missing.service.berth", "A"))!);
  assert.equal(nx.rcode, "NXDOMAIN");
  assert.ok(nx.flag_aa);
  assert.equal(nx.answers.length, 0);
  assert.equal(nx.authorities[0]?.type, "SOA");
  assert.equal(nx.authorities[0]?.name, "berth");
  const nodata = decode(ask(s, query("web.service.berth", "AAAA"))!);
  assert.equal(nodata.rcode, "NOERROR");
  assert.equal(nodata.answers.length, 0);
  assert.equal(nodata.authorities[0]?.type, "SOA");
  store.close();
});

Deno.test("DnsServer.answer() sets TC on oversize UDP answers without EDNS0", () => {
  const { store } = basic();
  const s = testServer(store);
  const bytes = ask(s, query("big.service.berth", "A"))!;
  assert.ok(bytes.length <= 512, `${bytes.length} bytes over plain UDP`);
  const r = decode(bytes);
  assert.ok(r.flag_tc);
  assert.ok(r.answers.length < 100);
  store.close();
});

Deno.test("DnsServer.answer() honours the EDNS0 size and echoes an OPT", () => {
  const { store } = basic();
  const s = testServer(store);
  const small = ask(s, query("big.service.berth", "A", { udpPayloadSize: 1000 }))!;
  assert.ok(small.length <= 1000);
  const r = decode(small);
  assert.ok(r.flag_tc);
  assert.ok(r.answers.length > 30, "EDNS size ignored: answered as if 512");
  assert.equal(r.additionals.filter((a) => a.type === "OPT").length, 1);
  const srv = decode(ask(s, query("big.service.berth", "SRV", { udpPayloadSize: 4096 }))!);
  assert.ok(srv.flag_tc, "100 SRV records fit the capped EDNS size");
  const fits = decode(ask(s, query("web.service.berth", "A", { udpPayloadSize: 4096 }))!);
  assert.ok(!fits.flag_tc);
  assert.equal(fits.additionals[0]?.type, "OPT");
  store.close();
});

Deno.test("DnsServer.answer() gives everything over TCP", () => {
  const { store } = basic();
  const s = testServer(store);
  const r = decode(ask(s, query("big.service.berth", "SRV"), true)!);
  assert.ok(!r.flag_tc);
  assert.equal(r.answers.length, 100);
  assert.equal(r.additionals.length, 100);
  store.close();
});

Deno.test("DnsServer.answer() REFUSES names outside the domain without recursors", () => {
  const { store } = basic();
  const s = testServer(store);
  const r = decode(ask(s, query("example.com", "A", { id: 9 }))!);
  assert.equal(r.id, 9);
  assert.equal(r.rcode, "REFUSED");
  assert.ok(!r.flag_aa);
  store.close();
});

Deno.test("DnsServer.answer() FORMERRs or drops malformed packets, never throws", () => {
  const { store } = basic();
  const s = testServer(store);
  const good = query("web.service.berth", "A", { id: 0x1234 });
  // Shorter than a header: dropped.
  assert.equal(ask(s, good.slice(0, 11)), null);
  assert.equal(ask(s, new Uint8Array(0)), null);
  // A response (QR set) is never answered (no reflection loops).
  const qr = good.slice();
  qr[2] = qr[2]! | 0x80;
  assert.equal(ask(s, qr), null);
  const rcodeOf = (b: Uint8Array) => {
    const r = ask(s, b);
    assert.ok(r !== null, "dropped a packet with a readable header");
    assert.equal((r[0]! << 8) | r[1]!, 0x1234, "id not echoed");
    assert.ok(r[2]! & 0x80, "QR not set");
    return r[3]! & 0x0f;
  };
  // qdcount 0 and 2.
  const qd0 = good.slice(0, 12);
  assert.equal(rcodeOf(qd0), 1);
  const qd2 = good.slice();
  qd2[5] = 2;
  assert.equal(rcodeOf(qd2), 1);
  // A label length running past the end, a label over 63 bytes, a pointer in the question.
  const overrun = good.slice();
  overrun[12] = 60;
  assert.equal(rcodeOf(overrun), 1);
  const long = good.slice();
  long[12] = 64;
  assert.equal(rcodeOf(long), 1);
  const pointer = good.slice();
  pointer[12] = 0xc0;
  assert.equal(rcodeOf(pointer), 1);
  // Header only claims a question: truncated question.
  assert.equal(rcodeOf(good.slice(0, 20)), 1);
  // Opcode STATUS (2): NOTIMP.
  const status = good.slice();
  status[2] = (status[2]! & 0x87) | (2 << 3);
  assert.equal(rcodeOf(status), 4);
  // EDNS version 1: BADVERS (extended rcode 16 = OPT high bits 1, header 0).
  const v1 = query("web.service.berth", "A", { id: 0x1234, udpPayloadSize: 1232 });
  v1[v1.length - 5] = 1; // OPT version: the second byte of the TTL field
  const badvers = decode(ask(s, v1)!);
  assert.equal(badvers.additionals[0]?.extendedRcode, 1);
  // Random bytes: never a throw; any reply echoes the id.
  const random = seededRandom(42);
  for (let i = 0; i < 2000; i++) {
    const junk = Uint8Array.from({ length: Math.floor(random() * 80) }, () => random() * 256);
    if (i % 2 === 0 && junk.length >= 12) junk.set(good.subarray(2, 12), 2); // plausible header
    const r = s.answer(junk, i % 3 === 0);
    if (r instanceof Promise) continue;
    if (r !== null) assert.deepEqual([r[0], r[1]], [junk[0], junk[1]]);
  }
  assert.equal(decode(ask(s, good)!).answers.length, 2, "stopped answering after junk");
  store.close();
});

Deno.test("DnsServer rebuilds the zone from the store's change feed", async () => {
  const { store, apply } = basic();
  const s = testServer(store);
  await s.start();
  try {
    apply({ type: "check", id: "web1", status: "critical", output: "down" });
    await Promise.resolve();
    let r = decode(ask(s, query("web.service.berth", "A"))!);
    assert.deepEqual(r.answers.map((a) => a.data), ["10.0.0.2"]);
    apply({ type: "node.status", name: "n2", status: "down" });
    await Promise.resolve();
    r = decode(ask(s, query("web.service.berth", "A"))!);
    assert.equal(r.rcode, "NXDOMAIN");
    r = decode(ask(s, query("edge.example", "A"))!);
    assert.deepEqual(r.answers.map((a) => a.data), ["192.168.1.1"]);
    apply({ type: "check", id: "web1", status: "passing", output: "" });
    await Promise.resolve();
    r = decode(ask(s, query("web.service.berth", "A"))!);
    assert.deepEqual(r.answers.map((a) => a.data), ["10.0.0.1"]);
  } finally {
    await s.close();
    store.close();
  }
});

Deno.test("DnsServer.start() serves UDP and TCP on one loopback port", async () => {
  const { store } = basic();
  const s = testServer(store);
  await s.start();
  try {
    assert.ok(s.address.udp.port > 0);
    assert.equal(s.address.tcp.port, s.address.udp.port);
    const u = decode(await udpExchange(s.address.udp, query("n1.node.berth", "A")));
    assert.deepEqual(u.answers.map((a) => a.data), ["192.168.1.1"]);
    // Two queries in one write, then a third answered on the same connection.
    const [a, b] = await tcpExchange(
      s.address.tcp,
      frame(
        query("web.service.berth", "A", { id: 1 }),
        query("big.service.berth", "SRV", { id: 2 }),
      ),
      2,
    );
    const byId = new Map([a!, b!].map((m) => decode(m)).map((m) => [m.id, m]));
    assert.equal(byId.get(1)?.answers.length, 2);
    assert.equal(byId.get(2)?.answers.length, 100);
    assert.ok(!byId.get(2)?.flag_tc);
  } finally {
    await s.close();
    store.close();
  }
});

Deno.test("DnsServer closes TCP connections with a bad length prefix and keeps serving", async () => {
  const { store } = basic();
  const s = testServer(store);
  await s.start();
  try {
    await assert.rejects(
      tcpExchange(s.address.tcp, Uint8Array.of(0xff, 0xff, 1, 2, 3), 1),
      /closed after 0/,
    );
    await assert.rejects(tcpExchange(s.address.tcp, Uint8Array.of(0, 3, 1, 2, 3), 1), /closed/);
    // Junk over UDP: dropped, and the next query is answered.
    await udpSend(s.address.udp, Uint8Array.of(1, 2, 3));
    const r = decode(await udpExchange(s.address.udp, query("web.service.berth", "A")));
    assert.equal(r.answers.length, 2);
    const [t] = await tcpExchange(s.address.tcp, frame(query("web.service.berth", "A")), 1);
    assert.equal(decode(t!).answers.length, 2);
  } finally {
    await s.close();
    store.close();
  }
});

Deno.test("DnsServer.answer() encodes PTR and TXT answers a resolver can read", () => {
  const { store } = filledStore(
    [{ name: "n1", address: "192.168.1.1", meta: { rack: "r1", "rfc1035-x": "hello world" } }],
    [{ id: "web1", service: "web", address: "10.0.0.1", port: 8001, tags: ["v1", "blue"] }],
  );
  const s = testServer(store, { datacenter: "eu-1" });
  const ptr = decode(ask(s, query("1.1.168.192.In-Addr.Arpa", "PTR"))!);
  assert.equal(ptr.rcode, "NOERROR");
  assert.ok(ptr.flag_aa);
  assert.deepEqual(ptr.answers.map((a) => [a.name, a.type, a.data]), [
    ["1.1.168.192.In-Addr.Arpa", "PTR", "n1.node.eu-1.berth"],
  ]);
  const svc = decode(ask(s, query("1.0.0.10.in-addr.arpa", "PTR"))!);
  assert.deepEqual(svc.answers.map((a) => a.data), ["web.service.eu-1.berth"]);
  const a = decode(ask(s, query("n1.node.eu-1.berth", "A"))!);
  assert.deepEqual(a.answers.map((r) => r.data), ["192.168.1.1"]);
  assert.deepEqual(
    a.additionals.map((r) => [r.name, r.type, r.data.map(String)]),
    [["n1.node.eu-1.berth", "TXT", ["rack=r1"]], ["n1.node.eu-1.berth", "TXT", ["hello world"]]],
  );
  const txt = decode(ask(s, query("N1.node.berth", "TXT"))!);
  assert.deepEqual(txt.answers.map((r) => [r.name, r.data.map(String)]), [
    ["N1.node.berth", ["rack=r1"]],
    ["N1.node.berth", ["hello world"]],
  ]);
  const tags = decode(ask(s, query("blue.v1.web.service.eu-1.berth", "A"))!);
  assert.deepEqual(tags.answers.map((r) => r.data), ["10.0.0.1"]);
  store.close();
});

Deno.test("DnsServer.answer() gives the right rcode for bad and foreign names, never throws", () => {
  const { store } = basic();
  const s = testServer(store, { serviceTtl: new Map([["web", 60]]) });
  const rcode = (name: string, type: string) => decode(ask(s, query(name, type))!).rcode;
  // Unknown addresses and malformed reverse names are not berth's: REFUSED without recursors.
  for (
    const name of [
      "8.8.8.8.in-addr.arpa",
      "999.1.168.192.in-addr.arpa",
      "1.168.192.in-addr.arpa",
      "z.z.ip6.arpa",
      "in-addr.arpa",
    ]
  ) {
    assert.equal(rcode(name, "PTR"), "REFUSED", name);
  }
  assert.equal(rcode("web.service.dc2.berth", "A"), "NXDOMAIN");
  assert.equal(rcode("n1.node.dc9.berth", "TXT"), "NXDOMAIN");
  assert.equal(rcode("a.b.c.d.e.f.web.service.dc1.berth", "A"), "NXDOMAIN");
  assert.equal(rcode("_web._tcp._x.service.berth", "SRV"), "NXDOMAIN");
  assert.equal(rcode("dc1.berth", "TXT"), "NOERROR");
  assert.equal(rcode("web.service.dc1.berth", "PTR"), "NOERROR");
  const web = decode(ask(s, query("web.service.dc1.berth", "A"))!);
  assert.deepEqual(web.answers.map((r) => r.ttl), [60, 60]);
  store.close();
});

Deno.test("DnsServer answers PTR and TXT from the newest zone (cached answers dropped on change)", async () => {
  const { store, apply } = basic();
  const s = testServer(store);
  await s.start();
  try {
    const ptr = () => decode(ask(s, query("3.0.0.10.in-addr.arpa", "PTR"))!);
    const txt = () => decode(ask(s, query("n1.node.berth", "TXT"))!);
    assert.equal(ptr().rcode, "REFUSED");
    assert.deepEqual(txt().answers.map((r) => r.data.map(String)), [["proxy=true"]]);
    apply({
      type: "register",
      instance: { id: "api3", service: "api", node: "n1", address: "10.0.0.3", port: 1 },
    });
    apply({
      type: "node.register",
      name: "n1",
      address: "192.168.1.1",
      meta: { proxy: "true", zone: "a" },
    });
    await Promise.resolve();
    assert.deepEqual(ptr().answers.map((r) => r.data), ["api.service.dc1.berth"]);
    assert.deepEqual(txt().answers.map((r) => r.data.map(String)), [["proxy=true"], ["zone=a"]]);
    apply({ type: "deregister", id: "api3" });
    await Promise.resolve();
    assert.equal(ptr().rcode, "REFUSED");
  } finally {
    await s.close();
    store.close();
  }
});

Deno.test("DnsServer answers unrelated names from its cache through a registration storm", async () => {
  const { store, apply } = basic();
  const s = testServer(store);
  await s.start();
  try {
    // Every form of web's names, and others that do not depend on web.
    const web = [
      query("web.service.berth", "A"),
      query("V1.Web.Service.DC1.Berth", "SRV"),
      query("_web._tcp.service.berth", "SRV"),
    ];
    const others = [
      query("big.service.berth", "A"),
      query("big.service.berth", "SRV"),
      query("n1.node.berth", "A"),
      query("edge.example", "A"),
      query("0a000001.addr.berth", "A"),
    ];
    for (const q of [...web, ...others]) ask(s, q);
    for (let i = 0; i < 200; i++) {
      apply({
        type: "register",
        instance: { id: `storm${i}`, service: "web", node: "n1", address: `10.3.0.${i}`, port: 80 },
      });
      const before = s.answerCounts;
      for (const q of others) ask(s, q);
      assert.deepEqual(s.answerCounts, { ...before, cached: before.cached + others.length });
      for (const q of web) ask(s, q);
      assert.equal(s.answerCounts.built, before.built + web.length, "web answers not rebuilt");
    }
    const r = decode(ask(s, query("web.service.berth", "A"), true)!);
    assert.equal(r.answers.length, 202);
    // A node change drops the answers that depend on the nodes: edge, name servers.
    apply({ type: "node.status", name: "n2", status: "down" });
    const before = s.answerCounts;
    assert.deepEqual(decode(ask(s, query("edge.example", "A"))!).answers.map((a) => a.data), [
      "192.168.1.1",
    ]);
    assert.equal(s.answerCounts.built, before.built + 1);
  } finally {
    await s.close();
    store.close();
  }
});

Deno.test("DnsServer.close() while start() builds a zone in slices leaves nothing listening", async () => {
  const { store, apply } = filledStore([{ name: "n1", address: "192.168.1.1" }], []);
  apply({
    type: "batch",
    commands: manyInstances(REBUILD_SLICE + 1).map((i) => ({
      type: "register",
      instance: { ...apiInstanceSpec(i), node: "n1" },
    })),
  });
  const s = testServer(store);
  const started = s.start();
  await s.close();
  await started;
  assert.throws(() => s.address, /before start/);
  store.close();
});
