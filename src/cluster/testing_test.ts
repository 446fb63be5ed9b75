import assert from "node:assert/strict";
import { Store } from "../store/mod.ts";
import { LocalCluster } from "./testing.ts";

Deno.test("LocalCluster.propose() applies in order and resolves with consecutive indexes", async () => {
  const store = Store.open(":memory:");
  const c = new LocalCluster(store, { node: "n1", address: "127.0.0.1" });
  const enc = new TextEncoder();
  const got = await Promise.all(
    Array.from(
      { length: 600 },
      (_, i) => c.propose({ type: "kv.put", key: `k${i}`, value: enc.encode(String(i)), flags: 0 }),
    ),
  );
  assert.deepEqual(got.map((p) => p.index), Array.from({ length: 600 }, (_, i) => i + 1));
  assert.equal(store.appliedIndex(), 600);
  const cas = await c.propose({
    type: "kv.put",
    key: "k0",
    value: enc.encode("x"),
    flags: 0,
    cas: 99,
  });
  assert.equal(cas.result.ok, false);
  await c.close();
  await assert.rejects(c.propose({ type: "noop" }), /closed/);
});
