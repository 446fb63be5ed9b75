import assert from "node:assert/strict";
import { type Change, type InstanceSpec, Store } from "./mod.ts";
import { instanceSpec } from "../../test/fixtures.ts";

function spec(over: Partial<InstanceSpec> = {}): InstanceSpec {
  return instanceSpec({ address: "127.0.0.1", meta: { b: "2", a: "1" }, ...over });
}

const enc = new TextEncoder();

Deno.test("Store.apply() registers an instance and reports the change", () => {
  const s = Store.open(":memory:");
  const changes: Change[] = [];
  s.subscribe((c) => changes.push(c));
  assert.deepEqual(s.apply(1, { type: "register", instance: spec() }), { ok: true });
  assert.equal(s.appliedIndex(), 1);
  const got = s.instance("n1:web-1:80");
  assert.equal(got?.port, 32768);
  assert.equal(got?.createIndex, 1);
  assert.equal(changes.length, 1);
  assert.deepEqual([...changes[0]!.services], ["web"]);
  assert.equal(s.serviceIndex("web"), 1);
  assert.deepEqual(s.services(), new Map([["web", ["v1"]]]));
});

Deno.test("Store.apply() re-registering an identical instance bumps no index", () => {
  const s = Store.open(":memory:");
  s.apply(1, { type: "register", instance: spec() });
  // Same fields, meta keys in another order: still identical.
  s.apply(2, { type: "register", instance: spec({ meta: { a: "1", b: "2" } }) });
  const got = s.instance("n1:web-1:80")!;
  assert.equal(got.modifyIndex, 1);
  assert.equal(s.serviceIndex("web"), 1);
  assert.equal(s.tableIndex("instances"), 1);
  assert.equal(s.appliedIndex(), 2);
  s.apply(3, { type: "register", instance: spec({ port: 1 }) });
  assert.equal(s.instance("n1:web-1:80")!.modifyIndex, 3);
  assert.equal(s.instance("n1:web-1:80")!.createIndex, 1);
});

Deno.test("Store.apply() skips entries at or below the applied index", () => {
  const s = Store.open(":memory:");
  s.apply(1, { type: "kv.put", key: "a", value: enc.encode("1"), flags: 0 });
  s.apply(1, { type: "kv.put", key: "a", value: enc.encode("2"), flags: 0 });
  assert.equal(new TextDecoder().decode(s.kvGet("a")!.value), "1");
  assert.throws(() => s.apply(5, { type: "noop" }), /gap/);
  assert.equal(s.appliedIndex(), 1);
});

Deno.test("Store.apply() rejects a malformed command without changing state", () => {
  const s = Store.open(":memory:");
  const bad: unknown[] = [
    null,
    { type: "nope" },
    { type: "register", instance: { ...spec(), port: 70000 } },
    { type: "register", instance: { ...spec(), tags: "a,b" } },
    { type: "kv.put", key: "", value: enc.encode("x"), flags: 0 },
    { type: "kv.put", key: "k", value: "not bytes", flags: 0 },
    { type: "check", id: "x", status: "green" },
    { type: "batch", commands: [{ type: "batch", commands: [] }] },
  ];
  bad.forEach((cmd, i) => {
    const r = s.apply(i + 1, cmd);
    assert.equal(r.ok, false, JSON.stringify(cmd));
    assert.match(r.error ?? "", /expected/);
  });
  assert.equal(s.appliedIndex(), bad.length);
  assert.equal(s.instances().length, 0);
  assert.equal(s.kvList("").length, 0);
});

Deno.test("Store persists across reopen", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/store.db`;
  const s = Store.open(path);
  s.apply(1, { type: "register", instance: spec() });
  s.apply(2, { type: "kv.put", key: "k", value: enc.encode("v"), flags: 3 });
  s.close();
  const again = Store.open(path);
  assert.equal(again.appliedIndex(), 2);
  assert.equal(again.instance("n1:web-1:80")?.service, "web");
  assert.equal(again.kvGet("k")?.flags, 3);
  again.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("Store.apply() applies a retried request id once and answers the same", () => {
  const s = Store.open(":memory:");
  const put = (cas: number) => ({
    type: "kv.put",
    key: "k",
    value: enc.encode("v"),
    flags: 0,
    cas,
  });
  assert.deepEqual(s.apply(1, put(0), "req-1"), { ok: true });
  // The same proposal retried (it landed twice in the log): not applied again, same result.
  assert.deepEqual(s.apply(2, put(0), "req-1"), { ok: true });
  assert.equal(s.kvGet("k")!.modifyIndex, 1);
  // A different request with the same command is a new write (its CAS fails).
  assert.deepEqual(s.apply(3, put(0), "req-2"), { ok: false });
});
