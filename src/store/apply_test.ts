import assert from "node:assert/strict";
import { type Change, type InstanceSpec, Store } from "./mod.ts";
import { instanceSpec } from "../../test/fixtures.ts";

function spec(over: Partial<InstanceSpec> = {}): InstanceSpec {
  return instanceSpec({ address: "127.0.0.1", meta: { b: "2", a: "1" }, ...over });
}

const enc = new TextEncoder();

Deno.test("Store.applyMany() applies a batch in one transaction and one change", () => {
  const s = Store.open(":memory:");
  const changes: Change[] = [];
  s.subscribe((c) => changes.push(c));
  s.applyMany([
    { index: 1, command: { type: "register", instance: spec() } },
    {
      index: 2,
      command: { type: "register", instance: spec({ id: "n1:web-2:80", service: "api" }) },
    },
  ]);
  assert.equal(changes.length, 1);
  assert.equal(changes[0]!.index, 2);
  assert.deepEqual([...changes[0]!.services].sort(), ["api", "web"]);
});

Deno.test("Store.apply() batch with a failing sub-command changes nothing and names it", () => {
  const s = Store.open(":memory:");
  const changes: Change[] = [];
  s.apply(1, { type: "kv.put", key: "k", value: enc.encode("a"), flags: 0 });
  s.subscribe((c) => changes.push(c));
  const r = s.apply(2, {
    type: "batch",
    commands: [
      { type: "register", instance: spec() },
      { type: "kv.put", key: "k", value: enc.encode("b"), flags: 0 },
      { type: "check", id: "n1:missing:80", status: "critical", output: "x" },
      { type: "register", instance: spec({ id: "n1:web-2:80" }) },
    ],
  });
  assert.deepEqual(r, { ok: false, error: "batch command 2 (check): no instance n1:missing:80" });
  assert.equal(s.instances().length, 0);
  assert.equal(new TextDecoder().decode(s.kvGet("k")!.value), "a");
  assert.equal(s.kvGet("k")!.modifyIndex, 1);
  assert.equal(s.tableIndex("instances"), 0);
  assert.equal(s.serviceIndex("web"), 0);
  // The entry is still applied (rejected identically on every replica), changing nothing.
  assert.equal(s.appliedIndex(), 2);
  assert.deepEqual(changes.map((c) => [...c.tables]), [[]]);
});

Deno.test("Store.apply() batch reports a failed CAS by position", () => {
  const s = Store.open(":memory:");
  const r = s.apply(1, {
    type: "batch",
    commands: [
      { type: "kv.put", key: "a", value: enc.encode("1"), flags: 0 },
      { type: "kv.put", key: "b", value: enc.encode("1"), flags: 0, cas: 7 },
    ],
  });
  assert.equal(r.ok, false);
  assert.match(r.error ?? "", /^batch command 1 \(kv\.put\): /);
  assert.equal(s.kvGet("a"), undefined);
});

Deno.test("Store.apply() batch whose sub-commands all succeed applies them all", () => {
  const s = Store.open(":memory:");
  const changes: Change[] = [];
  s.subscribe((c) => changes.push(c));
  const r = s.apply(1, {
    type: "batch",
    commands: [
      { type: "register", instance: spec() },
      { type: "docker", id: "n1:web-1:80", state: "paused", detail: "" },
    ],
  });
  assert.deepEqual(r, { ok: true });
  assert.deepEqual(s.instance("n1:web-1:80")?.docker, { state: "paused", detail: "" });
  assert.deepEqual([...changes[0]!.services], ["web"]);
});
