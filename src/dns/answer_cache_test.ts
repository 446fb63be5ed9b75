import assert from "node:assert/strict";
import { ANSWER_CACHE_ENTRIES_MAX, AnswerCache } from "./answer_cache.ts";
import { type EncodedReply, encodeReply } from "./reply.ts";
import { Zone } from "./zone.ts";

const options = { domain: "berth.", edgeDomain: null, ttl: 0 };
const zoneAt = (version: number) => new Zone({ instances: [], nodes: [], version }, options);
const reply = (rcode: number): EncodedReply =>
  encodeReply({
    rcode,
    authoritative: true,
    answers: [],
    authority: [],
    additionals: [],
    order: "fixed",
  });

Deno.test("AnswerCache.get() answers only for the zone the entry was stored with", () => {
  const cache = new AnswerCache();
  const z1 = zoneAt(1);
  const r = reply(0);
  cache.set(z1, "1 web.service.berth.", r);
  assert.equal(cache.get(z1, "1 web.service.berth."), r);
  assert.equal(cache.get(z1, "28 web.service.berth."), undefined);
  assert.equal(cache.get(zoneAt(1), "1 web.service.berth."), undefined);
});

Deno.test("AnswerCache.set() for a newer zone drops the older zone's entries", () => {
  const cache = new AnswerCache();
  const z1 = zoneAt(1);
  const z2 = zoneAt(2);
  cache.set(z1, "a", reply(0));
  cache.set(z1, "b", reply(0));
  cache.set(z2, "c", reply(0));
  assert.equal(cache.size, 1);
  assert.equal(cache.get(z2, "a"), undefined);
  assert.notEqual(cache.get(z2, "c"), undefined);
});

Deno.test("AnswerCache.set() stops adding at ANSWER_CACHE_ENTRIES_MAX", () => {
  const cache = new AnswerCache();
  const z = zoneAt(1);
  for (let i = 0; i <= ANSWER_CACHE_ENTRIES_MAX; i++) cache.set(z, `k${i}`, reply(0));
  assert.equal(cache.size, ANSWER_CACHE_ENTRIES_MAX);
  assert.equal(cache.get(z, `k${ANSWER_CACHE_ENTRIES_MAX}`), undefined);
});
