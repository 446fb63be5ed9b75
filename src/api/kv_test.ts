import assert from "node:assert/strict";
import { VALUE_BYTES_MAX } from "../store/mod.ts";
import { fixture, put } from "./_testing.ts";
import { foldKeys } from "./kv.ts";

const dec = new TextDecoder();

Deno.test("PUT then GET /v1/kv/:key round-trips the value as base64 with Consul's fields", async () => {
  const f = fixture();
  const w = await f.app.request("/v1/kv/app/config?flags=42", put("hello"));
  assert.equal(w.status, 200);
  assert.equal(await w.json(), true);
  const r = await f.app.request("/v1/kv/app/config");
  assert.equal(r.status, 200);
  const entries = await r.json();
  assert.deepEqual(entries, [{
    LockIndex: 0,
    Key: "app/config",
    Flags: 42,
    Value: btoa("hello"),
    CreateIndex: 1,
    ModifyIndex: 1,
  }]);
  assert.equal(r.headers.get("X-Consul-Index"), "1");
  f.close();
});

Deno.test("GET /v1/kv/:key?raw answers the bytes; an empty value is Value null", async () => {
  const f = fixture();
  const bytes = new Uint8Array([0, 255, 10, 1]);
  await f.app.request("/v1/kv/bin", put(bytes));
  const raw = await f.app.request("/v1/kv/bin?raw");
  assert.deepEqual(new Uint8Array(await raw.arrayBuffer()), bytes);
  await f.app.request("/v1/kv/empty", put(""));
  const [e] = await (await f.app.request("/v1/kv/empty")).json();
  assert.equal(e.Value, null);
  f.close();
});

Deno.test("GET /v1/kv/:key of a missing key is 404 with an index header", async () => {
  const f = fixture();
  const r = await f.app.request("/v1/kv/missing");
  assert.equal(r.status, 404);
  assert.equal(r.headers.get("X-Consul-Index"), "1");
  assert.equal((await f.app.request("/v1/kv/missing?recurse")).status, 404);
  assert.equal((await f.app.request("/v1/kv/missing?keys")).status, 404);
  const root = await f.app.request("/v1/kv/?keys");
  assert.equal(root.status, 200);
  assert.deepEqual(await root.json(), []);
  f.close();
});

Deno.test("GET /v1/kv/:prefix?recurse and ?keys&separator list under a prefix", async () => {
  const f = fixture();
  for (const k of ["a/1", "a/2", "a/b/3", "a/b/4", "b/5"]) {
    await f.app.request(`/v1/kv/${k}`, put(k));
  }
  const all = await (await f.app.request("/v1/kv/a/?recurse")).json();
  assert.deepEqual(all.map((e: { Key: string }) => e.Key), ["a/1", "a/2", "a/b/3", "a/b/4"]);
  assert.equal(dec.decode(Uint8Array.from(atob(all[2].Value), (c) => c.charCodeAt(0))), "a/b/3");
  const keys = await (await f.app.request("/v1/kv/a/?keys")).json();
  assert.deepEqual(keys, ["a/1", "a/2", "a/b/3", "a/b/4"]);
  const folded = await (await f.app.request("/v1/kv/a/?keys&separator=/")).json();
  assert.deepEqual(folded, ["a/1", "a/2", "a/b/"]);
  const top = await (await f.app.request("/v1/kv/?keys&separator=/")).json();
  assert.deepEqual(top, ["a/", "b/"]);
  f.close();
});

Deno.test("foldKeys() cuts after the first separator past the prefix", () => {
  assert.deepEqual(foldKeys(["x/a/b", "x/a/c", "x/d"], "x/", "/"), ["x/a/", "x/d"]);
  assert.deepEqual(foldKeys(["x/a/b"], "x/", ""), ["x/a/b"]);
});

Deno.test("PUT /v1/kv/:key?cas= writes only when the index matches; 0 means create-only", async () => {
  const f = fixture();
  assert.equal(await (await f.app.request("/v1/kv/k?cas=0", put("1"))).json(), true);
  assert.equal(await (await f.app.request("/v1/kv/k?cas=0", put("2"))).json(), false);
  const [e] = await (await f.app.request("/v1/kv/k")).json();
  assert.equal(await (await f.app.request("/v1/kv/k?cas=999", put("3"))).json(), false);
  assert.equal(await (await f.app.request(`/v1/kv/k?cas=${e.ModifyIndex}`, put("4"))).json(), true);
  assert.equal(dec.decode(f.store.kvGet("k")!.value), "4");
  f.close();
});

Deno.test("DELETE /v1/kv/:key honours ?cas and ?recurse", async () => {
  const f = fixture();
  for (const k of ["p/1", "p/2", "q"]) await f.app.request(`/v1/kv/${k}`, put("v"));
  const q = f.store.kvGet("q")!;
  const no = await f.app.request(`/v1/kv/q?cas=${q.modifyIndex + 100}`, { method: "DELETE" });
  assert.equal(await no.json(), false);
  assert.notEqual(f.store.kvGet("q"), undefined);
  const yes = await f.app.request(`/v1/kv/q?cas=${q.modifyIndex}`, { method: "DELETE" });
  assert.equal(await yes.json(), true);
  assert.equal(f.store.kvGet("q"), undefined);
  const rec = await f.app.request("/v1/kv/p/?recurse", { method: "DELETE" });
  assert.equal(await rec.json(), true);
  assert.deepEqual(f.store.kvKeys(""), []);
  f.close();
});

Deno.test("GET /v1/kv keys are percent-decoded", async () => {
  const f = fixture();
  await f.app.request("/v1/kv/a%20b/c%2Fd", put("x"));
  assert.deepEqual(f.store.kvKeys(""), ["a b/c/d"]);
  const r = await f.app.request("/v1/kv/a%20b/c/d");
  assert.equal(r.status, 200);
  f.close();
});

Deno.test("PUT /v1/kv/:key over VALUE_BYTES_MAX is 413 and stores nothing", async () => {
  const f = fixture();
  const r = await f.app.request("/v1/kv/big", put(new Uint8Array(VALUE_BYTES_MAX + 1)));
  assert.equal(r.status, 413);
  assert.match(await r.text(), /over the 524288-byte limit/);
  assert.equal(f.store.kvGet("big"), undefined);
  const ok = await f.app.request("/v1/kv/big", put(new Uint8Array(VALUE_BYTES_MAX)));
  assert.equal(ok.status, 200);
  f.close();
});
