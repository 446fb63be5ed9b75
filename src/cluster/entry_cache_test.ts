import assert from "node:assert/strict";
import type { Entry } from "../../raft/mod.ts";
import { ENTRY_CACHE_ENTRY_BYTES_MAX, EntryCache } from "./entry_cache.ts";

const ent = (index: number, bytes = 1): Entry => ({
  index,
  term: 1,
  type: "normal",
  data: new Uint8Array(bytes).fill(index),
});

Deno.test("EntryCache.put() evicts the oldest entries past its entry and byte bounds", () => {
  const c = new EntryCache(3, 1000);
  c.put([ent(1), ent(2), ent(3), ent(4)]);
  assert.equal(c.get(1), undefined);
  assert.deepEqual([2, 3, 4].map((i) => c.get(i)?.[0]), [2, 3, 4]);
  c.put([ent(5, 600), ent(6, 600)]);
  assert.deepEqual([4, 5, 6].map((i) => c.get(i) !== undefined), [false, false, true]);
});

Deno.test("EntryCache.put() replaces a conflicting suffix and copies the data it keeps", () => {
  const c = new EntryCache();
  const e2 = ent(2);
  c.put([ent(1), e2, ent(3)]);
  e2.data.fill(0);
  assert.equal(c.get(2)?.[0], 2);
  c.put([{ ...ent(2), data: new Uint8Array([9]) }]);
  assert.equal(c.get(2)?.[0], 9);
  assert.equal(c.get(3), undefined);
  assert.equal(c.size, 2);
});

Deno.test("EntryCache leaves large entries out and drops compacted ones", () => {
  const c = new EntryCache();
  c.put([ent(1), ent(2, ENTRY_CACHE_ENTRY_BYTES_MAX + 1), ent(3)]);
  assert.equal(c.get(2), undefined);
  c.dropTo(1);
  assert.deepEqual([1, 3].map((i) => c.get(i) !== undefined), [false, true]);
  c.clear();
  assert.equal(c.size, 0);
});
