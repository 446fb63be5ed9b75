import assert from "node:assert/strict";
import { fixture, put } from "./_testing.ts";

Deno.test("PUT /v1/txn applies KV operations and answers {Results, Errors: null}", async () => {
  const f = fixture();
  const r = await f.app.request(
    "/v1/txn",
    put([
      { KV: { Verb: "set", Key: "a", Value: btoa("one"), Flags: 3 } },
      { KV: { Verb: "get", Key: "a" } },
      { KV: { Verb: "check-not-exists", Key: "b" } },
    ]),
  );
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("X-Consul-Index"), String(f.store.appliedIndex()));
  const body = await r.json();
  assert.equal(body.Errors, null);
  const idx = f.store.kvGet("a")!.modifyIndex;
  assert.deepEqual(body.Results, [
    { KV: { LockIndex: 0, Key: "a", Flags: 3, Value: null, CreateIndex: idx, ModifyIndex: idx } },
    {
      KV: {
        LockIndex: 0,
        Key: "a",
        Flags: 3,
        Value: btoa("one"),
        CreateIndex: idx,
        ModifyIndex: idx,
      },
    },
  ]);
  f.close();
});

Deno.test("PUT /v1/txn answers 409 with the failed operations and changes nothing", async () => {
  const f = fixture();
  await f.app.request("/v1/kv/a", put("x"));
  const r = await f.app.request(
    "/v1/txn",
    put([
      { KV: { Verb: "set", Key: "b", Value: btoa("y") } },
      { KV: { Verb: "check-index", Key: "a", Index: 999 } },
    ]),
  );
  assert.equal(r.status, 409);
  const idx = f.store.kvGet("a")!.modifyIndex;
  assert.deepEqual(await r.json(), {
    Results: null,
    Errors: [{ OpIndex: 1, What: `current modify index ${idx} != 999` }],
  });
  assert.equal(f.store.kvGet("b"), undefined);
  f.close();
});

Deno.test("PUT /v1/txn refuses bad bodies with 400, more than 64 operations with 413", async (t) => {
  const f = fixture();
  const cases: [unknown, number, RegExp][] = [
    ["{", 400, /Failed to parse body/],
    [{ KV: {} }, 400, /body must be a JSON list/],
    [[{ Node: { Verb: "set" } }], 400, /only KV operations are supported \(got Node\)/],
    [[{ KV: { Verb: "frob", Key: "a" } }], 400, /Verb "frob": expected set\|cas/],
    [[{ KV: { Verb: "set", Key: "a", Value: "***" } }], 400, /Value must be base64/],
    [[{ KV: { Verb: "cas", Key: "a", Index: -1 } }], 400, /Index must be a non-negative/],
    [[{ KV: { Verb: "lock", Key: "a", Session: "nope" } }], 400, /expected a session id/],
    [
      Array.from({ length: 65 }, () => ({ KV: { Verb: "get", Key: "a" } })),
      413,
      /too many operations \(65 > 64\)/,
    ],
  ];
  for (const [body, status, want] of cases) {
    await t.step(JSON.stringify(body).slice(0, 60), async () => {
      const r = await f.app.request("/v1/txn", put(body));
      assert.equal(r.status, status);
      assert.match(await r.text(), want);
    });
  }
  assert.equal(f.store.kvList("").length, 0);
  f.close();
});

Deno.test("PUT /v1/txn that only reads answers from the replica without a log entry", async () => {
  const f = fixture();
  await f.app.request("/v1/kv/a", put("x"));
  const applied = f.store.appliedIndex();
  const r = await f.app.request(
    "/v1/txn?stale",
    put([{ KV: { Verb: "get", Key: "a" } }, { KV: { Verb: "check-not-exists", Key: "b" } }]),
  );
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("X-Consul-Index"), String(f.store.tableIndex("kv")));
  assert.equal(r.headers.get("X-Consul-KnownLeader"), "true");
  const body = await r.json();
  assert.equal(body.Results[0].KV.Value, btoa("x"));
  assert.equal(f.store.appliedIndex(), applied);
  const failed = await f.app.request("/v1/txn", put([{ KV: { Verb: "get", Key: "nope" } }]));
  assert.equal(failed.status, 409);
  assert.deepEqual((await failed.json()).Errors, [{
    OpIndex: 0,
    What: 'key "nope" doesn\'t exist',
  }]);
  f.close();
});
