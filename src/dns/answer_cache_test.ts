import assert from "node:assert/strict";
import { ANSWER_CACHE_ENTRIES_MAX, AnswerCache, ENTRY_OVERHEAD_BYTES } from "./answer_cache.ts";
import { type EncodedReply, encodeReply } from "./reply.ts";

const reply = (rcode: number): EncodedReply =>
  encodeReply({
    rcode,
    authoritative: true,
    answers: [],
    authority: [],
    additionals: [],
    order: "fixed",
  });

Deno.test("AnswerCache.invalidate() drops the entries built from a key and keeps the others", () => {
  const cache = new AnswerCache();
  const web = reply(0);
  const db = reply(0);
  cache.set("1 web.service.berth.", web, ["service web"]);
  cache.set("33 _web._tcp.service.berth.", web, ["service web"]);
  cache.set("1 db.service.berth.", db, ["service db"]);
  cache.set("28 db.service.berth.", db, ["service db", "zone"]);
  cache.invalidate(["service web"]);
  assert.equal(cache.get("1 web.service.berth."), undefined);
  assert.equal(cache.get("33 _web._tcp.service.berth."), undefined);
  assert.equal(cache.get("1 db.service.berth."), db);
  cache.invalidate(["zone"]);
  assert.equal(cache.get("28 db.service.berth."), undefined);
  assert.equal(cache.get("1 db.service.berth."), db);
  assert.equal(cache.size, 1);
});

Deno.test("AnswerCache.set() again replaces an entry and its dependencies", () => {
  const cache = new AnswerCache();
  cache.set("k", reply(0), ["a"]);
  const second = reply(0);
  cache.set("k", second, ["b"]);
  cache.invalidate(["a"]);
  assert.equal(cache.get("k"), second);
  cache.invalidate(["b"]);
  assert.equal(cache.get("k"), undefined);
});

Deno.test("AnswerCache.clear() drops everything", () => {
  const cache = new AnswerCache();
  cache.set("a", reply(0), ["x"]);
  cache.set("b", reply(0), []);
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.get("b"), undefined);
});

Deno.test("AnswerCache.set() past ANSWER_CACHE_ENTRIES_MAX drops the oldest entry", () => {
  const cache = new AnswerCache();
  for (let i = 0; i <= ANSWER_CACHE_ENTRIES_MAX; i++) cache.set(`k${i}`, reply(0), [`d${i}`]);
  assert.equal(cache.size, ANSWER_CACHE_ENTRIES_MAX);
  assert.equal(cache.get("k0"), undefined);
  assert.notEqual(cache.get(`k${ANSWER_CACHE_ENTRIES_MAX}`), undefined);
  // The dropped entry's dependency index went with it: invalidating it touches nothing else.
  cache.invalidate(["d0"]);
  assert.equal(cache.size, ANSWER_CACHE_ENTRIES_MAX);
});

Deno.test("AnswerCache.set() past bytesMax drops the oldest entries; a larger answer is not kept", () => {
  const answer = (records: number): EncodedReply =>
    encodeReply({
      rcode: 0,
      authoritative: true,
      answers: Array.from({ length: records }, () => ({
        name: "web.service.berth.",
        type: "A" as const,
        ttl: 0,
        data: "10.0.0.1",
      })),
      authority: [],
      additionals: [],
      order: "fixed",
    });
  const one = answer(10);
  const each = one.records.length + one.starts.byteLength + ENTRY_OVERHEAD_BYTES;
  const cache = new AnswerCache({ bytesMax: 3 * each });
  for (const k of ["a", "b", "c"]) cache.set(k, answer(10), [k]);
  assert.equal(cache.bytes, 3 * each);
  cache.set("d", answer(10), ["d"]);
  assert.equal(cache.get("a"), undefined);
  assert.deepEqual(["b", "c", "d"].map((k) => cache.get(k) !== undefined), [true, true, true]);
  cache.set("huge", answer(200), ["huge"]);
  assert.equal(cache.get("huge"), undefined);
  assert.equal(cache.size, 3);
  cache.invalidate(["b", "c", "d"]);
  assert.equal(cache.bytes, 0);
});
