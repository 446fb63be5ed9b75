import assert from "node:assert/strict";
// @ts-types="../../test/dns_packet.d.ts"
import * as packet from "dns-packet";
import { decode } from "./_testing.ts";
import { RESPONSE_CACHE_TTL_MAX_S, ResponseCache } from "./response_cache.ts";

function response(name: string, ttls: number[], rcode = 0): Uint8Array {
  return new Uint8Array(packet.encode({
    type: "response",
    id: 1,
    flags: 0x8180 | rcode,
    questions: [{ name, type: "A", class: "IN" }],
    answers: ttls.map((ttl, i) => ({ name, type: "A", ttl, data: `10.0.0.${i + 1}` })),
  }));
}

function question(name: string): Uint8Array {
  const r = response(name, []);
  return r.subarray(12);
}

Deno.test("ResponseCache.get() lowers TTLs by the entry's age and expires at the smallest", () => {
  let now = 1_000_000;
  const c = new ResponseCache({ now: () => now });
  assert.ok(c.put("k", response("example.com", [60, 30])));
  now += 10_000;
  const hit = decode(c.get("k", 77, question("EXAMPLE.com"))!);
  assert.equal(hit.id, 77);
  assert.equal(hit.questions[0]?.name, "EXAMPLE.com");
  assert.deepEqual(hit.answers.map((a) => a.ttl), [50, 20]);
  now += 20_000;
  assert.equal(c.get("k", 1, question("example.com")), null);
  assert.equal(c.size, 0);
});

Deno.test("ResponseCache.put() skips uncacheable responses and caps long TTLs", () => {
  let now = 0;
  const c = new ResponseCache({ now: () => now });
  assert.ok(!c.put("zero", response("a.com", [0])), "TTL 0 cached");
  assert.ok(!c.put("empty", response("a.com", [])), "no records cached");
  assert.ok(!c.put("servfail", response("a.com", [60], 2)), "SERVFAIL cached");
  const tc = response("a.com", [60]);
  tc[2] = tc[2]! | 0x02;
  assert.ok(!c.put("tc", tc), "truncated cached");
  assert.ok(c.put("long", response("a.com", [86_400])));
  now += (RESPONSE_CACHE_TTL_MAX_S + 1) * 1000;
  assert.equal(c.get("long", 1, question("a.com")), null);
});

Deno.test("ResponseCache evicts the least recently used entry at the entry limit", () => {
  const c = new ResponseCache({ entriesMax: 2, now: () => 0 });
  c.put("a", response("a.com", [60]));
  c.put("b", response("b.com", [60]));
  assert.ok(c.get("a", 1, question("a.com")) !== null);
  c.put("c", response("c.com", [60]));
  assert.equal(c.size, 2);
  assert.equal(c.get("b", 1, question("b.com")), null);
  assert.ok(c.get("a", 1, question("a.com")) !== null);
  assert.ok(c.get("c", 1, question("c.com")) !== null);
});

Deno.test("ResponseCache keeps its byte total under bytesMax", () => {
  const one = response("a.com", [60]).length;
  const c = new ResponseCache({ bytesMax: one * 3, now: () => 0 });
  for (const n of ["a", "b", "c", "d", "e"]) c.put(n, response(`${n}.com`, [60]));
  assert.equal(c.size, 3);
});
