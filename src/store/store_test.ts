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

Deno.test("Store.apply() node down marks its services changed; docker updates the verdict", () => {
  const s = Store.open(":memory:");
  const changes: Change[] = [];
  s.subscribe((c) => changes.push(c));
  s.apply(1, { type: "node.register", name: "n1", address: "127.0.0.1", meta: {} });
  s.apply(2, { type: "register", instance: spec() });
  s.apply(3, { type: "node.status", name: "n1", status: "down" });
  assert.equal(s.node("n1")?.status, "down");
  assert.deepEqual([...changes[2]!.services], ["web"]);
  s.apply(4, { type: "docker", id: "n1:web-1:80", state: "stopping", detail: "" });
  assert.deepEqual(s.instance("n1:web-1:80")?.docker, { state: "stopping", detail: "" });
  s.apply(5, { type: "deregister", id: "n1:web-1:80" });
  assert.equal(s.instances().length, 0);
  assert.equal(s.serviceIndex("web"), 5);
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

Deno.test("Store.apply() conf records membership; member ids only grow", () => {
  const s = Store.open(":memory:");
  s.apply(1, {
    type: "conf",
    voters: [1],
    learners: [],
    upsert: { id: 1, name: "a", address: "127.0.0.1:8300" },
  });
  s.apply(2, {
    type: "conf",
    voters: [1],
    learners: [2],
    upsert: { id: 2, name: "b", address: "127.0.0.2:8300" },
  });
  assert.deepEqual(s.confState(), { voters: [1], learners: [2] });
  assert.deepEqual(s.members().map((m) => [m.id, m.name, m.role]), [[1, "a", "voter"], [
    2,
    "b",
    "learner",
  ]]);
  s.apply(3, { type: "conf", voters: [1], learners: [], remove: 2 });
  assert.deepEqual(s.members().map((m) => m.name), ["a"]);
  assert.equal(s.memberIdMax(), 2);
  const bad = s.apply(4, { type: "conf", voters: [0], learners: [] });
  assert.match(bad.error ?? "", /voters\[0\]/);
});

Deno.test("Store.apply() check sets the check result only, and only where there is a check", () => {
  const s = Store.open(":memory:");
  const check = { http: "/h", intervalMs: 1000, timeoutMs: 100 };
  s.apply(1, { type: "register", instance: spec({ id: "d", check }) });
  s.apply(2, { type: "register", instance: spec({ id: "api", containerId: null, docker: null }) });
  s.apply(3, { type: "register", instance: spec({ id: "plain" }) });
  const ok = { type: "check", status: "critical", output: "HTTP GET /h: 500" } as const;
  assert.deepEqual(s.apply(4, { ...ok, id: "d" }), { ok: true });
  assert.deepEqual(s.instance("d")?.checkResult, {
    status: "critical",
    output: "HTTP GET /h: 500",
  });
  assert.deepEqual(s.instance("d")?.docker, { state: "running", detail: "" });
  assert.equal(s.instance("d")?.modifyIndex, 4);
  assert.deepEqual(s.apply(5, { ...ok, id: "d" }), { ok: true });
  assert.equal(s.instance("d")?.modifyIndex, 4, "an unchanged result bumps no index");
  assert.deepEqual(s.apply(6, { ...ok, id: "api" }), { ok: true }, "an API registrant reports");
  assert.deepEqual(s.apply(7, { ...ok, id: "plain" }), {
    ok: false,
    error: "instance plain is a Docker instance without a check",
  });
  assert.equal(s.instance("plain")?.checkResult, null);
  assert.deepEqual(s.apply(8, { ...ok, id: "nope" }), { ok: false, error: "no instance nope" });
});

Deno.test("Store.apply() docker sets the Docker verdict only, and only on Docker instances", () => {
  const s = Store.open(":memory:");
  const check = { http: "/h", intervalMs: 1000, timeoutMs: 100 };
  s.apply(1, { type: "register", instance: spec({ id: "d", check }) });
  s.apply(2, { type: "check", id: "d", status: "passing", output: "200" });
  s.apply(3, { type: "register", instance: spec({ id: "api", containerId: null, docker: null }) });
  const changes: Change[] = [];
  s.subscribe((c) => changes.push(c));
  const paused = { type: "docker", state: "unhealthy", detail: "exit 1" } as const;
  assert.deepEqual(s.apply(4, { ...paused, id: "d" }), { ok: true });
  assert.deepEqual(s.instance("d")?.docker, { state: "unhealthy", detail: "exit 1" });
  assert.deepEqual(s.instance("d")?.checkResult, { status: "passing", output: "200" });
  assert.deepEqual([...changes[0]!.services], ["web"]);
  assert.deepEqual(s.apply(5, { ...paused, id: "d" }), { ok: true });
  assert.equal(changes[1]!.tables.size, 0, "an unchanged verdict changes nothing");
  assert.deepEqual(s.apply(6, { ...paused, id: "api" }), {
    ok: false,
    error: "instance api has no container",
  });
  assert.equal(s.apply(7, { type: "docker", id: "d", state: "asleep", detail: "" }).ok, false);
});

Deno.test("Store.apply() register keeps the check result while container and check stay", async (t) => {
  const s = Store.open(":memory:");
  const check = { http: "/h", intervalMs: 1000, timeoutMs: 100 };
  let index = 0;
  const apply = (c: unknown) => assert.deepEqual(s.apply(++index, c), { ok: true });
  const result = { status: "passing", output: "200" } as const;
  const reset = () => {
    apply({ type: "register", instance: spec({ check }) });
    apply({ type: "check", id: "n1:web-1:80", status: "passing", output: "200" });
  };
  const stored = () => s.instance("n1:web-1:80")?.checkResult;
  await t.step("same container and check, other fields changed: kept", () => {
    reset();
    apply({ type: "register", instance: spec({ check, tags: ["v2"], port: 1 }) });
    assert.deepEqual(stored(), result);
    assert.deepEqual(s.instance("n1:web-1:80")?.tags, ["v2"]);
  });
  await t.step("same check with fields in another order: kept", () => {
    reset();
    const reordered = { timeoutMs: 100, intervalMs: 1000, http: "/h" };
    apply({ type: "register", instance: spec({ check: reordered }) });
    assert.deepEqual(stored(), result);
  });
  await t.step("a new container starts over", () => {
    reset();
    apply({ type: "register", instance: spec({ check, containerId: "other" }) });
    assert.equal(stored(), null);
  });
  await t.step("a changed check starts over", () => {
    reset();
    apply({ type: "register", instance: spec({ check: { ...check, http: "/other" } }) });
    assert.equal(stored(), null);
  });
  await t.step("an API registration without a check takes the registrant's result", () => {
    const api = { id: "api", containerId: null, docker: null };
    apply({ type: "register", instance: spec({ ...api, checkResult: result }) });
    apply({ type: "register", instance: spec({ ...api, checkResult: null }) });
    assert.equal(s.instance("api")?.checkResult, null);
  });
});

Deno.test("Store.apply() register refuses health sources that do not fit the instance", async (t) => {
  const s = Store.open(":memory:");
  const cases: [string, Partial<InstanceSpec>, RegExp][] = [
    [
      "a Docker verdict without a container",
      { containerId: null },
      /instance\.docker: an instance without containerId has no Docker verdict/,
    ],
    [
      "a container without a Docker verdict",
      { docker: null },
      /instance\.docker: a Docker instance \(containerId set\) needs its Docker verdict/,
    ],
    [
      "a check result on a Docker instance without a check",
      { checkResult: { status: "passing", output: "" } },
      /instance\.checkResult: a Docker instance without a check has no check result/,
    ],
    [
      "an unknown Docker state",
      { docker: { state: "asleep" as "running", detail: "" } },
      /instance\.docker\.state: expected running\|healthy\|/,
    ],
    [
      "an unknown check status",
      {
        check: { tcp: true, intervalMs: 1000, timeoutMs: 100 },
        checkResult: { status: "fine" as "passing", output: "" },
      },
      /instance\.checkResult\.status: expected passing\|warning\|critical/,
    ],
  ];
  let index = 0;
  for (const [name, over, error] of cases) {
    await t.step(name, () => {
      const r = s.apply(++index, { type: "register", instance: spec(over) });
      assert.equal(r.ok, false);
      assert.match(r.error ?? "", error);
      assert.equal(s.instances().length, 0);
    });
  }
});
