import assert from "node:assert/strict";
import { Store } from "./mod.ts";

const enc = new TextEncoder();

Deno.test("Store.apply() kv cas succeeds only at the current modify index", () => {
  const s = Store.open(":memory:");
  assert.equal(
    s.apply(1, { type: "kv.put", key: "k", value: enc.encode("a"), flags: 0, cas: 0 }).ok,
    true,
  );
  assert.equal(
    s.apply(2, { type: "kv.put", key: "k", value: enc.encode("b"), flags: 0, cas: 0 }).ok,
    false,
  );
  assert.equal(
    s.apply(3, { type: "kv.put", key: "k", value: enc.encode("c"), flags: 7, cas: 1 }).ok,
    true,
  );
  const e = s.kvGet("k")!;
  assert.deepEqual([new TextDecoder().decode(e.value), e.flags, e.createIndex, e.modifyIndex], [
    "c",
    7,
    1,
    3,
  ]);
  assert.equal(s.apply(4, { type: "kv.delete", key: "k", cas: 1 }).ok, false);
  assert.equal(s.apply(5, { type: "kv.delete", key: "k", cas: 3 }).ok, true);
  assert.equal(s.kvGet("k"), undefined);
  // As Consul: a CAS delete of a key already gone succeeds.
  assert.equal(s.apply(6, { type: "kv.delete", key: "k", cas: 3 }).ok, true);
});

Deno.test("Store.apply() kv.put keeps a key's createIndex and lock, moves its modifyIndex", () => {
  const s = Store.open(":memory:");
  const put = (i: number, v: string) =>
    s.apply(i, { type: "kv.put", key: "k", value: enc.encode(v), flags: i });
  assert.equal(put(1, "a").ok, true);
  assert.deepEqual(s.kvGet("k"), {
    key: "k",
    value: enc.encode("a"),
    flags: 1,
    createIndex: 1,
    modifyIndex: 1,
    lockIndex: 0,
  });
  assert.equal(put(2, "b").ok, true);
  assert.equal(put(3, "c").ok, true);
  assert.deepEqual(s.kvGet("k"), {
    key: "k",
    value: enc.encode("c"),
    flags: 3,
    createIndex: 1,
    modifyIndex: 3,
    lockIndex: 0,
  });
  // Gone and written again: a new key.
  s.apply(4, { type: "kv.delete", key: "k" });
  assert.equal(put(5, "d").ok, true);
  assert.deepEqual([s.kvGet("k")!.createIndex, s.kvGet("k")!.modifyIndex], [5, 5]);
});

Deno.test("Store.apply() kv recursive delete removes only the prefix", () => {
  const s = Store.open(":memory:");
  for (const [i, k] of ["a/1", "a/2", "ab", "b"].entries()) {
    s.apply(i + 1, { type: "kv.put", key: k, value: enc.encode(k), flags: 0 });
  }
  s.apply(5, { type: "kv.delete", key: "a/", recurse: true });
  assert.deepEqual(s.kvList("").map((e) => e.key), ["ab", "b"]);
  assert.equal(s.tableIndex("kv"), 5);
});
