import assert from "node:assert/strict";
import { query } from "./_testing.ts";
import { ipBytes, parseQuery, RCODE, TYPE } from "./wire.ts";

Deno.test("ipBytes() parses IPv4, IPv6 with ::, and IPv4-mapped IPv6", () => {
  assert.deepEqual([...ipBytes("10.1.2.3")!], [10, 1, 2, 3]);
  assert.deepEqual([...ipBytes("::1")!], [...new Array(15).fill(0), 1]);
  assert.deepEqual(
    [...ipBytes("2001:db8::8:1")!],
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 1],
  );
  assert.deepEqual([...ipBytes("::ffff:1.2.3.4")!].slice(10), [0xff, 0xff, 1, 2, 3, 4]);
  assert.equal(ipBytes("web.internal"), null);
  assert.equal(ipBytes("1.2.3.256"), null);
});

Deno.test("parseQuery() lower-cases the name and reads type, class and EDNS0", () => {
  const q = parseQuery(query("WeB.Service.Berth", "SRV", { id: 9, udpPayloadSize: 4096 }));
  assert.ok(q !== null && "name" in q);
  assert.equal(q.id, 9);
  assert.equal(q.name, "web.service.berth.");
  assert.equal(q.type, TYPE.SRV);
  assert.equal(q.class, 1);
  assert.deepEqual(q.edns, { udpBytes: 4096, version: 0, dnssecOk: false });
  assert.ok(q.rd);
});

Deno.test("parseQuery() escapes dots and odd bytes inside labels", () => {
  const b = query("ab.berth", "A");
  b[14] = 0x2e; // "a.b" as one label must not read as two
  const q = parseQuery(b);
  assert.ok(q !== null && "name" in q);
  assert.equal(q.name, "a\\046.berth.");
});

Deno.test("parseQuery() rejects two OPT records", () => {
  const one = query("a.berth", "A", { udpPayloadSize: 1232 });
  const two = new Uint8Array(one.length + 11);
  two.set(one);
  two.set(one.subarray(one.length - 11), one.length);
  two[11] = 2;
  const q = parseQuery(two);
  assert.ok(q !== null && !("name" in q));
  assert.equal(q.rcode, RCODE.FORMERR);
});
