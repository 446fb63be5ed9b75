import assert from "node:assert/strict";
import { instance, node } from "./_testing.ts";
import { hexToIp, ipToHex, NEGATIVE_TTL_S, type Reply, resolve } from "./resolve.ts";
import { RCODE, type Rr, TYPE } from "./wire.ts";
import { Zone } from "./zone.ts";

const nodes = [
  node({ name: "n1", address: "192.168.1.1", meta: { proxy: "true" } }),
  node({ name: "N2", address: "192.168.1.2", meta: { proxy: "true" } }),
  node({ name: "n3", address: "fd00::3", meta: { proxy: "false" } }),
  node({ name: "down1", address: "192.168.1.9", status: "down", meta: { proxy: "true" } }),
];
const instances = [
  instance({ id: "web1", service: "web", address: "10.0.0.1", port: 8001, tags: ["v1", "Blue"] }),
  instance({
    id: "web2",
    service: "web",
    address: "10.0.0.2",
    port: 8002,
    weight: 5,
    tags: ["v2"],
  }),
  instance({ id: "web3", service: "web", address: "fd00::2", port: 8003, node: "n3" }),
  instance({
    id: "web4",
    service: "web",
    address: "10.0.0.4",
    checkResult: { status: "critical", output: "" },
  }),
  instance({
    id: "web5",
    service: "web",
    address: "10.0.0.5",
    checkResult: { status: "warning", output: "" },
  }),
  instance({ id: "web6", service: "web", address: "10.0.0.6", node: "down1" }),
  instance({ id: "db1", service: "DB", address: "10.0.1.1", port: 5432 }),
  instance({ id: "db2", service: "DB", address: "10.0.1.1", port: 5433 }),
  instance({ id: "sick", service: "sick", checkResult: { status: "critical", output: "" } }),
];
const zone = new Zone({ instances, nodes, version: 7 }, {
  domain: "berth.",
  edgeDomain: "edge.example.",
  ttl: 3,
});

function ask(name: string, type: keyof typeof TYPE): Reply {
  const r = resolve(zone, { name, type: TYPE[type] });
  assert.ok(r !== null, `${name} ${type} passed to the forwarder`);
  return r;
}

function data(rrs: Rr[]): unknown[] {
  return rrs.map((r) => r.data).sort((a, b) => JSON.stringify(a) < JSON.stringify(b) ? -1 : 1);
}

function assertNegative(r: Reply, rcode: number, origin: string) {
  assert.equal(r.rcode, rcode);
  assert.equal(r.answers.length, 0);
  assert.equal(r.authority.length, 1);
  const soa = r.authority[0]!;
  assert.equal(soa.type, "SOA");
  assert.equal(soa.name, origin);
  assert.ok(soa.type === "SOA" && soa.data.minimum === NEGATIVE_TTL_S);
}

Deno.test("resolve() NAME.service A answers passing IPv4 instances on live nodes only", () => {
  const r = ask("web.service.berth.", "A");
  assert.equal(r.rcode, RCODE.NOERROR);
  assert.ok(r.authoritative);
  assert.equal(r.order, "shuffle");
  assert.deepEqual(data(r.answers), ["10.0.0.1", "10.0.0.2"]);
  assert.ok(r.answers.every((a) => a.ttl === 3 && a.name === "web.service.berth."));
});

Deno.test("resolve() NAME.service AAAA answers IPv6 instances", () => {
  assert.deepEqual(data(ask("web.service.berth.", "AAAA").answers), ["fd00::2"]);
});

Deno.test("resolve() NAME.service A deduplicates instances sharing an address", () => {
  assert.deepEqual(data(ask("db.service.berth.", "A").answers), ["10.0.1.1"]);
});

Deno.test("resolve() NAME.service SRV gives weight, port and an .addr. target with its address", () => {
  const r = ask("web.service.berth.", "SRV");
  assert.deepEqual(data(r.answers), [
    { priority: 1, weight: 1, port: 8001, target: "0a000001.addr.berth." },
    { priority: 1, weight: 1, port: 8003, target: "fd000000000000000000000000000002.addr.berth." },
    { priority: 1, weight: 5, port: 8002, target: "0a000002.addr.berth." },
  ]);
  assert.deepEqual(
    r.additionals.map((a) => [a.name, a.type, a.data]).sort(),
    [
      ["0a000001.addr.berth.", "A", "10.0.0.1"],
      ["0a000002.addr.berth.", "A", "10.0.0.2"],
      ["fd000000000000000000000000000002.addr.berth.", "AAAA", "fd00::2"],
    ],
  );
});

Deno.test("resolve() SRV of two ports on one address shares one additional record", () => {
  const r = ask("db.service.berth.", "SRV");
  assert.equal(r.answers.length, 2);
  assert.equal(r.additionals.length, 1);
});

Deno.test("resolve() TAG.NAME.service filters by tag, case-insensitively", () => {
  assert.deepEqual(data(ask("v2.web.service.berth.", "A").answers), ["10.0.0.2"]);
  assert.deepEqual(data(ask("blue.web.service.berth.", "A").answers), ["10.0.0.1"]);
  assertNegative(ask("v3.web.service.berth.", "A"), RCODE.NXDOMAIN, "berth.");
});

Deno.test("resolve() _NAME._tcp.service is RFC 2782 SRV of all instances", () => {
  assert.deepEqual(data(ask("_web._tcp.service.berth.", "SRV").answers).length, 3);
});

Deno.test("resolve() _NAME._TAG.service is RFC 2782 SRV filtered by tag", () => {
  const r = ask("_web._v1.service.berth.", "SRV");
  assert.deepEqual(data(r.answers), [
    { priority: 1, weight: 1, port: 8001, target: "0a000001.addr.berth." },
  ]);
});

Deno.test("resolve() service names are case-insensitive", () => {
  // The resolver receives lower-cased names (wire.parseQuery); the zone keys are lower-cased too.
  assert.deepEqual(data(ask("db.service.berth.", "A").answers), ["10.0.1.1"]);
});

Deno.test("resolve() a service with no served instances is NXDOMAIN with SOA", () => {
  assertNegative(ask("sick.service.berth.", "A"), RCODE.NXDOMAIN, "berth.");
  assertNegative(ask("nope.service.berth.", "SRV"), RCODE.NXDOMAIN, "berth.");
});

Deno.test("resolve() a known name without records of the type is NODATA with SOA", () => {
  assertNegative(ask("db.service.berth.", "AAAA"), RCODE.NOERROR, "berth.");
  assertNegative(ask("web.service.berth.", "NS"), RCODE.NOERROR, "berth.");
  assertNegative(ask("service.berth.", "A"), RCODE.NOERROR, "berth.");
  assertNegative(ask("_tcp.service.berth.", "A"), RCODE.NOERROR, "berth.");
});

Deno.test("resolve() NODE.node answers the member's address whatever its status", () => {
  assert.deepEqual(data(ask("n1.node.berth.", "A").answers), ["192.168.1.1"]);
  assert.deepEqual(data(ask("n2.node.berth.", "A").answers), ["192.168.1.2"]);
  assert.deepEqual(data(ask("down1.node.berth.", "A").answers), ["192.168.1.9"]);
  assert.deepEqual(data(ask("n3.node.berth.", "AAAA").answers), ["fd00::3"]);
  assertNegative(ask("n3.node.berth.", "A"), RCODE.NOERROR, "berth.");
  assertNegative(ask("n9.node.berth.", "A"), RCODE.NXDOMAIN, "berth.");
});

Deno.test("resolve() HEX.addr decodes the address; bad hex is NXDOMAIN", () => {
  assert.deepEqual(data(ask("0a000001.addr.berth.", "A").answers), ["10.0.0.1"]);
  assert.deepEqual(
    data(ask("fd000000000000000000000000000002.addr.berth.", "AAAA").answers),
    ["fd00:0:0:0:0:0:0:2"],
  );
  assertNegative(ask("0a00zz01.addr.berth.", "A"), RCODE.NXDOMAIN, "berth.");
});

Deno.test("resolve() edge names answer alive proxy members, TTL 0, rotated", () => {
  for (const name of ["edge.example.", "web.edge.example.", "a.b.edge.example."]) {
    const r = ask(name, "A");
    assert.equal(r.order, "rotate");
    assert.deepEqual(data(r.answers), ["192.168.1.1", "192.168.1.2"]);
    assert.ok(r.answers.every((a) => a.ttl === 0));
  }
  assertNegative(ask("web.edge.example.", "AAAA"), RCODE.NOERROR, "edge.example.");
  assert.equal(ask("edge.example.", "SOA").answers[0]?.type, "SOA");
});

Deno.test("resolve() unknown names in the domain are NXDOMAIN with SOA", () => {
  assertNegative(ask("nothing.berth.", "A"), RCODE.NXDOMAIN, "berth.");
  assertNegative(ask("a.b.c.service.berth.", "A"), RCODE.NXDOMAIN, "berth.");
});

Deno.test("resolve() the apex answers SOA and NS of alive members with glue", () => {
  const soa = ask("berth.", "SOA");
  assert.equal(soa.answers.length, 1);
  const s = soa.answers[0]!;
  assert.ok(s.type === "SOA");
  assert.equal(s.data.serial, 7);
  assert.equal(s.data.minimum, NEGATIVE_TTL_S);
  const ns = ask("berth.", "NS");
  assert.deepEqual(data(ns.answers), ["n1.node.berth.", "n2.node.berth.", "n3.node.berth."]);
  assert.deepEqual(
    ns.additionals.map((a) => a.data).sort(),
    ["192.168.1.1", "192.168.1.2", "fd00::3"],
  );
  assertNegative(ask("berth.", "A"), RCODE.NOERROR, "berth.");
});

Deno.test("resolve() passes names outside the domains and non-IN classes on", () => {
  assert.equal(resolve(zone, { name: "example.com.", type: TYPE.A }), null);
  assert.equal(resolve(zone, { name: "berth.example.com.", type: TYPE.A }), null);
  assert.equal(resolve(zone, { name: "web.service.berth.", type: TYPE.A }, 3), null);
});

Deno.test("resolve() rebuilds see changes: a zone is a snapshot", () => {
  const later = new Zone(
    { instances: instances.filter((i) => i.id !== "web1"), nodes, version: 8 },
    { domain: "berth.", edgeDomain: null, ttl: 0 },
  );
  const r = resolve(later, { name: "web.service.berth.", type: TYPE.A });
  assert.deepEqual(data(r!.answers), ["10.0.0.2"]);
  assert.equal(resolve(later, { name: "web.edge.example.", type: TYPE.A }), null);
});

Deno.test("ipToHex() and hexToIp() round-trip IPv4 and IPv6", () => {
  assert.equal(ipToHex("10.0.0.1"), "0a000001");
  assert.equal(ipToHex("::ffff:1.2.3.4"), "00000000000000000000ffff01020304");
  assert.equal(hexToIp("0a000001"), "10.0.0.1");
  assert.equal(ipToHex(hexToIp(ipToHex("2001:db8::1")!)!), ipToHex("2001:db8::1"));
  assert.equal(ipToHex("db.internal"), null);
  assert.equal(hexToIp("0a0001"), null);
});

// ---- datacenter-qualified names, several tags, PTR, node meta as TXT, per-service TTL ----

const metaNodes = [
  node({
    name: "n1",
    address: "192.168.1.1",
    meta: { proxy: "true", rack: "r1", "rfc1035-desc": "v=spf1 -all", "a=b": "x`y" },
  }),
  node({ name: "n2", address: "192.168.1.2", meta: {} }),
  node({ name: "n3", address: "fd00::3", meta: { long: "x".repeat(300) } }),
  node({ name: "gone", address: "192.168.1.9", status: "down" }),
];
const tagged = [
  instance({ id: "a1", service: "api", address: "10.0.0.1", port: 1, tags: ["v1", "Blue", "eu"] }),
  instance({ id: "a2", service: "api", address: "10.0.0.2", port: 2, tags: ["v1"] }),
  instance({ id: "a3", service: "api", address: "10.0.0.3", port: 3, tags: ["blue"] }),
  instance({ id: "b1", service: "db", address: "10.0.0.2", port: 5432 }),
  instance({ id: "b2", service: "cache", address: "10.0.0.2", port: 6379 }),
  instance({
    id: "c1",
    service: "sick",
    address: "10.0.0.7",
    checkResult: { status: "critical", output: "" },
  }),
  instance({ id: "h1", service: "host", address: "192.168.1.1", port: 9 }),
];
const dcZone = new Zone({ instances: tagged, nodes: metaNodes, version: 9 }, {
  domain: "berth.",
  datacenter: "dc1",
  edgeDomain: null,
  ttl: 3,
  serviceTtl: new Map([["api", 30], ["*", 7]]),
});

function askDc(name: string, type: keyof typeof TYPE): Reply {
  const r = resolve(dcZone, { name, type: TYPE[type] });
  assert.ok(r !== null, `${name} ${type} passed to the forwarder`);
  return r;
}

Deno.test("resolve() NAME.service.DC, TAG.NAME.service.DC and _NAME._tcp.service.DC answer as without DC", () => {
  for (
    const [plain, qualified, type] of [
      ["api.service.berth.", "api.service.dc1.berth.", "A"],
      ["v1.api.service.berth.", "v1.api.service.dc1.berth.", "A"],
      ["api.service.berth.", "api.service.dc1.berth.", "SRV"],
      ["_api._tcp.service.berth.", "_api._tcp.service.dc1.berth.", "SRV"],
      ["_api._v1.service.berth.", "_api._v1.service.dc1.berth.", "SRV"],
    ] as const
  ) {
    const a = askDc(plain, type);
    const b = askDc(qualified, type);
    assert.equal(b.rcode, RCODE.NOERROR, qualified);
    assert.ok(b.answers.length > 0, qualified);
    assert.deepEqual(data(b.answers), data(a.answers), qualified);
  }
  assert.deepEqual(data(askDc("v1.api.service.dc1.berth.", "A").answers), ["10.0.0.1", "10.0.0.2"]);
});

Deno.test("resolve() NODE.node.DC and HEX.addr.DC answer as without DC", () => {
  assert.deepEqual(data(askDc("n1.node.dc1.berth.", "A").answers), ["192.168.1.1"]);
  assert.deepEqual(data(askDc("0a000001.addr.dc1.berth.", "A").answers), ["10.0.0.1"]);
});

Deno.test("resolve() a datacenter other than the configured one is NXDOMAIN", () => {
  for (
    const name of [
      "api.service.dc2.berth.",
      "v1.api.service.dc2.berth.",
      "_api._tcp.service.dc2.berth.",
      "n1.node.dc2.berth.",
      "0a000001.addr.dc2.berth.",
      "api.service.x.dc1.berth.",
    ]
  ) {
    assertNegative(askDc(name, "A"), RCODE.NXDOMAIN, "berth.");
  }
});

Deno.test("resolve() the datacenter and its folders are empty non-terminals: NODATA", () => {
  for (const name of ["dc1.berth.", "service.dc1.berth.", "node.dc1.berth.", "addr.dc1.berth."]) {
    assertNegative(askDc(name, "A"), RCODE.NOERROR, "berth.");
  }
  assertNegative(askDc("dc2.berth.", "A"), RCODE.NXDOMAIN, "berth.");
});

Deno.test("resolve() several tags answer the instances having all of them, in any order", () => {
  assert.deepEqual(data(askDc("blue.v1.api.service.berth.", "A").answers), ["10.0.0.1"]);
  assert.deepEqual(data(askDc("v1.blue.api.service.berth.", "A").answers), ["10.0.0.1"]);
  assert.deepEqual(data(askDc("eu.blue.v1.api.service.dc1.berth.", "A").answers), ["10.0.0.1"]);
  assert.deepEqual(data(askDc("v1.api.service.berth.", "A").answers), ["10.0.0.1", "10.0.0.2"]);
  assert.deepEqual(data(askDc("blue.api.service.berth.", "SRV").answers).length, 2);
  assertNegative(askDc("eu.v1.v2.api.service.berth.", "A"), RCODE.NXDOMAIN, "berth.");
  assertNegative(askDc("blue.v1.db.service.berth.", "A"), RCODE.NXDOMAIN, "berth.");
});

Deno.test("resolve() PTR of a node address names the node, datacenter-qualified", () => {
  const r = askDc("1.1.168.192.in-addr.arpa.", "PTR");
  assert.equal(r.rcode, RCODE.NOERROR);
  assert.ok(r.authoritative);
  assert.deepEqual(r.answers.map((a) => [a.name, a.type, a.data, a.ttl]), [
    ["1.1.168.192.in-addr.arpa.", "PTR", "n1.node.dc1.berth.", 3],
  ]);
  // A down node is still the node at that address (catalog, not health).
  assert.deepEqual(data(askDc("9.1.168.192.in-addr.arpa.", "PTR").answers), [
    "gone.node.dc1.berth.",
  ]);
  const v6 = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
  assert.deepEqual(data(askDc(v6, "PTR").answers), ["n3.node.dc1.berth."]);
});

Deno.test("resolve() PTR of an instance address names its services when no node has it", () => {
  assert.deepEqual(data(askDc("2.0.0.10.in-addr.arpa.", "PTR").answers), [
    "api.service.dc1.berth.",
    "cache.service.dc1.berth.",
    "db.service.dc1.berth.",
  ]);
  // Critical instances are in the catalog too.
  assert.deepEqual(data(askDc("7.0.0.10.in-addr.arpa.", "PTR").answers), [
    "sick.service.dc1.berth.",
  ]);
  // A node's address names the node only (Consul's order), though an instance shares it.
  assert.deepEqual(data(askDc("1.1.168.192.in-addr.arpa.", "ANY").answers), [
    "n1.node.dc1.berth.",
  ]);
});

Deno.test("resolve() passes unknown addresses, other types and malformed reverse names on", () => {
  for (
    const [name, type] of [
      ["8.8.8.8.in-addr.arpa.", TYPE.PTR],
      ["1.1.168.192.in-addr.arpa.", TYPE.A],
      ["1.1.168.192.in-addr.arpa.", TYPE.TXT],
      ["1.168.192.in-addr.arpa.", TYPE.PTR],
      ["1.1.1.168.192.in-addr.arpa.", TYPE.PTR],
      ["256.1.168.192.in-addr.arpa.", TYPE.PTR],
      ["01.1.168.192.in-addr.arpa.", TYPE.PTR],
      ["x.1.168.192.in-addr.arpa.", TYPE.PTR],
      ["in-addr.arpa.", TYPE.PTR],
      ["3.0.d.f.ip6.arpa.", TYPE.PTR],
      ["33.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", TYPE.PTR],
      ["arpa.", TYPE.PTR],
    ] as const
  ) {
    assert.equal(resolve(dcZone, { name, type }), null, name);
  }
});

Deno.test("resolve() NODE.node A carries the node meta as TXT in additionals, sorted by key", () => {
  const r = askDc("n1.node.berth.", "A");
  assert.deepEqual(data(r.answers), ["192.168.1.1"]);
  assert.deepEqual(r.additionals.map((a) => [a.name, a.type, a.data, a.ttl]), [
    ["n1.node.berth.", "TXT", ["a`=b=x``y"], 3],
    ["n1.node.berth.", "TXT", ["proxy=true"], 3],
    ["n1.node.berth.", "TXT", ["rack=r1"], 3],
    ["n1.node.berth.", "TXT", ["v=spf1 -all"], 3],
  ]);
  assert.equal(askDc("n2.node.berth.", "A").additionals.length, 0);
});

Deno.test("resolve() NODE.node TXT answers the meta; ANY answers addresses and meta", () => {
  const txt = askDc("n1.node.dc1.berth.", "TXT");
  assert.equal(txt.rcode, RCODE.NOERROR);
  assert.deepEqual(txt.answers.map((a) => a.data), [
    ["a`=b=x``y"],
    ["proxy=true"],
    ["rack=r1"],
    ["v=spf1 -all"],
  ]);
  assert.equal(txt.additionals.length, 0);
  const any = askDc("n1.node.berth.", "ANY");
  assert.deepEqual(any.answers.map((a) => a.type), ["A", "TXT", "TXT", "TXT", "TXT"]);
  assertNegative(askDc("n2.node.berth.", "TXT"), RCODE.NOERROR, "berth.");
  // A value longer than one character-string is split, not cut.
  const long = askDc("n3.node.berth.", "TXT").answers[0]!;
  assert.ok(long.type === "TXT");
  assert.deepEqual(long.data.map((s) => s.length), [255, 50]);
  assert.equal(long.data.join(""), `long=${"x".repeat(300)}`);
  // No address of the asked type: NODATA, no meta alone.
  assertNegative(askDc("n3.node.berth.", "A"), RCODE.NOERROR, "berth.");
});

Deno.test("resolve() service answers carry the service's TTL, else *'s; others the zone's", () => {
  const api = askDc("api.service.berth.", "SRV");
  assert.ok(api.answers.every((a) => a.ttl === 30));
  assert.ok(api.additionals.every((a) => a.ttl === 30));
  assert.ok(askDc("v1.api.service.dc1.berth.", "A").answers.every((a) => a.ttl === 30));
  assert.ok(askDc("db.service.berth.", "A").answers.every((a) => a.ttl === 7));
  assert.ok(askDc("n1.node.berth.", "A").answers.every((a) => a.ttl === 3));
  assert.ok(askDc("0a000001.addr.berth.", "A").answers.every((a) => a.ttl === 3));
  // Without `*`, other services keep the zone's TTL.
  const only = new Zone({ instances: tagged, nodes: metaNodes, version: 1 }, {
    domain: "berth.",
    edgeDomain: null,
    ttl: 3,
    serviceTtl: new Map([["api", 30]]),
  });
  const db = resolve(only, { name: "db.service.berth.", type: TYPE.A })!;
  assert.deepEqual(db.answers.map((a) => a.ttl), [3]);
});
