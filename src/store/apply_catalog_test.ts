import assert from "node:assert/strict";
import { type Change, type InstanceSpec, Store } from "./mod.ts";
import { instanceSpec } from "../../test/fixtures.ts";

function spec(over: Partial<InstanceSpec> = {}): InstanceSpec {
  return instanceSpec({ address: "127.0.0.1", meta: { b: "2", a: "1" }, ...over });
}

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
