import assert from "node:assert/strict";
import { query } from "./_testing.ts";
import { parseQuery, RCODE, TYPE } from "./wire.ts";

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
