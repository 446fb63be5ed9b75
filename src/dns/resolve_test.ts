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
