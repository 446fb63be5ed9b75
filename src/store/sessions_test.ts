import assert from "node:assert/strict";
import { type Command, type SessionSpec, Store } from "./mod.ts";
import { apiInstanceSpec, instanceSpec, registeredCheck } from "../../test/fixtures.ts";

const enc = new TextEncoder();
const A = "aaaaaaaa-0000-4000-8000-000000000001";
const B = "bbbbbbbb-0000-4000-8000-000000000002";

function session(over: Partial<SessionSpec> = {}): SessionSpec {
  return {
    id: A,
    name: "",
    node: "n1",
    nodeChecks: ["serfHealth"],
    serviceChecks: [],
    lockDelayMs: 15_000,
    behavior: "release",
    ttl: "",
    ttlMs: 0,
    ...over,
  };
}

/** A store with node n1 and the commands applied in order (from index 2); their results. */
function storeWith(...cmds: Command[]) {
  const s = Store.open(":memory:");
  s.apply(1, { type: "node.register", name: "n1", address: "10.0.0.1", meta: {} });
  const results = cmds.map((c) => s.apply(s.appliedIndex() + 1, c));
  return { s, results, apply: (c: Command) => s.apply(s.appliedIndex() + 1, c) };
}

const lock = (session: string, nowMs = 0, key = "lk"): Command => ({
  type: "kv.lock",
  key,
  value: enc.encode(session.slice(0, 1)),
  flags: 0,
  session,
  nowMs,
});
const unlock = (session: string, key = "lk"): Command => ({
  type: "kv.unlock",
  key,
  value: enc.encode(""),
  flags: 0,
  session,
});
const create = (over: Partial<SessionSpec> = {}): Command => ({
  type: "session.create",
  session: session(over),
});

Deno.test("Store sessions: create stores the session with its indexes and bumps the sessions table", () => {
  const { s, results } = storeWith(create({ name: "db", ttl: "15.0s", ttlMs: 15_000 }));
  assert.deepEqual(results, [{ ok: true }]);
  const got = s.sessions.get(A)!;
  assert.equal(got.name, "db");
  assert.equal(got.ttl, "15.0s");
  assert.equal(got.createIndex, 2);
  assert.equal(got.modifyIndex, 2);
  assert.equal(s.tableIndex("sessions"), 2);
  assert.deepEqual(s.sessions.ofNode("n1").map((x) => x.id), [A]);
  assert.deepEqual(s.sessions.ofNode("n2"), []);
});

Deno.test("Store sessions: create refuses an unknown node, a missing check and a critical one", () => {
  const { results, s } = storeWith(
    create({ node: "nope" }),
    create({ nodeChecks: ["disk"] }),
    { type: "node.status", name: "n1", status: "down" },
    create(),
  );
  assert.match(results[0]!.error!, /node "nope" is not known/);
  assert.match(results[1]!.error!, /Missing check 'disk'/);
  assert.match(results[3]!.error!, /Check 'serfHealth' is in critical state/);
  assert.equal(s.sessions.list().length, 0);
});

Deno.test("Store sessions: a service:<id> check is the instance's own check result", () => {
  const inst = instanceSpec({
    node: "n1",
    containerId: null,
    docker: null,
    checkResult: { status: "critical", output: "down" },
  });
  const { results } = storeWith(
    { type: "register", instance: inst },
    create({ serviceChecks: [`service:${inst.id}`] }),
    { type: "check", id: inst.id, status: "passing", output: "" },
    create({ id: B, serviceChecks: [`service:${inst.id}`] }),
  );
  assert.match(results[1]!.error!, /critical state/);
  assert.deepEqual(results[3], { ok: true });
});

Deno.test("Store sessions: kv.lock takes a free key, LockIndex counts holders, a second session is refused", () => {
  const { s, results, apply } = storeWith(create(), create({ id: B }), lock(A));
  assert.deepEqual(results[2], { ok: true });
  assert.equal(s.sessions.holder("lk"), A);
  assert.equal(s.kvGet("lk")!.lockIndex, 1);
  assert.deepEqual(apply(lock(B)), { ok: false });
  assert.equal(s.sessions.holder("lk"), A);
  // The holder again: value updated, LockIndex kept.
  assert.deepEqual(apply(lock(A)), { ok: true });
  assert.equal(s.kvGet("lk")!.lockIndex, 1);
  assert.deepEqual(apply(unlock(B)), { ok: false });
  assert.deepEqual(apply(unlock(A)), { ok: true });
  assert.equal(s.sessions.holder("lk"), null);
  assert.equal(s.kvGet("lk")!.lockIndex, 1);
  assert.deepEqual(apply(lock(B)), { ok: true });
  assert.equal(s.kvGet("lk")!.lockIndex, 2);
  assert.equal(s.sessions.holder("lk"), B);
});

Deno.test("Store sessions: kv.lock with an unknown session is an error; with a stale cas false", () => {
  const { s, results, apply } = storeWith(create(), lock(B));
  assert.match(results[1]!.error!, /invalid session/);
  assert.deepEqual(apply({ ...lock(A), cas: 7 } as Command), { ok: false });
  assert.deepEqual(apply({ ...lock(A), cas: 0 } as Command), { ok: true });
  assert.equal(s.sessions.holder("lk"), A);
});

Deno.test("Store sessions: destroy releases (Behavior release) and starts the lock-delay", () => {
  const { s, apply } = storeWith(create({ lockDelayMs: 10_000 }), create({ id: B }), lock(A));
  const before = s.kvGet("lk")!;
  assert.deepEqual(apply({ type: "session.destroy", id: A, nowMs: 1_000 }), { ok: true });
  assert.equal(s.sessions.get(A), undefined);
  const after = s.kvGet("lk")!;
  assert.equal(s.sessions.holder("lk"), null);
  assert.deepEqual(after.value, before.value);
  assert.equal(after.lockIndex, 1);
  assert.ok(after.modifyIndex > before.modifyIndex);
  assert.equal(s.sessions.lockDelayUntil("lk"), 11_000);
  assert.deepEqual(apply(lock(B, 10_999)), { ok: false });
  assert.deepEqual(apply(lock(B, 11_000)), { ok: true });
  assert.equal(s.kvGet("lk")!.lockIndex, 2);
});

Deno.test("Store sessions: destroy deletes the held keys (Behavior delete), not the others", () => {
  const { s, apply } = storeWith(create({ behavior: "delete" }), lock(A, 0, "a"), lock(A, 0, "b"));
  apply({ type: "kv.put", key: "c", value: enc.encode("x"), flags: 0 });
  apply({ type: "session.destroy", id: A, nowMs: 0 });
  assert.equal(s.kvGet("a"), undefined);
  assert.equal(s.kvGet("b"), undefined);
  assert.ok(s.kvGet("c") !== undefined);
  assert.deepEqual(s.sessions.heldKeys(A), []);
});

Deno.test("Store sessions: deleting a locked key frees its lock", () => {
  const { s, apply } = storeWith(create(), lock(A, 0, "x/a"), lock(A, 0, "y"));
  apply({ type: "kv.delete", key: "x/", recurse: true });
  apply({ type: "kv.delete", key: "y" });
  assert.deepEqual(s.sessions.heldKeys(A), []);
});

Deno.test("Store sessions: a session.destroy of an unknown session changes nothing", () => {
  const { s, results } = storeWith({ type: "session.destroy", id: A, nowMs: 0 });
  assert.deepEqual(results, [{ ok: true }]);
  assert.equal(s.tableIndex("sessions"), 0);
});

Deno.test("Store sessions: bad session commands are refused with the field named", () => {
  const { results } = storeWith(
    create({ id: "not-a-uuid" }),
    create({ ttlMs: 5_000, ttl: "5s" }),
    { type: "session.create", session: { ...session(), behavior: "keep" } } as unknown as Command,
    create({ lockDelayMs: 61_000 }),
  );
  assert.match(results[0]!.error!, /session.id: expected a session id/);
  assert.match(results[1]!.error!, /ttlMs: expected an integer in \[10000, 86400000\]/);
  assert.match(results[2]!.error!, /behavior: expected release\|delete/);
  assert.match(results[3]!.error!, /lockDelayMs/);
});

Deno.test("Store sessions: sessions, locks and lock-delays travel in a Raft snapshot", async () => {
  const { s } = storeWith(create(), lock(A), create({ id: B }));
  s.apply(5, { type: "session.destroy", id: B, nowMs: 0 });
  s.apply(6, lock(A, 0, "k2"));
  s.apply(7, { type: "session.destroy", id: A, nowMs: 500 });
  s.apply(8, create());
  s.apply(9, lock(A, 0, "k3"));
  const path = await Deno.makeTempFile();
  try {
    await s.writeSnapshotFile(path, "raft");
    const t = Store.open(":memory:");
    t.installSnapshotFile(path);
    assert.deepEqual(t.sessions.list(), s.sessions.list());
    assert.equal(t.sessions.holder("k3"), A);
    assert.equal(t.sessions.lockDelayUntil("lk"), 15_500);
  } finally {
    await Deno.remove(path);
  }
});

// ---- check-bound invalidation in apply ----

const web = apiInstanceSpec({
  id: "n1:web:80",
  node: "n1",
  checkResult: { status: "passing", output: "" },
});
const dockerWeb = instanceSpec({ id: "n1:db:5432", node: "n1" });

/** Each command that fails or removes a check bound to a session, and that session's checks. */
const triggers: { name: string; checks: Partial<SessionSpec>; fail: Command; heal?: Command }[] = [
  {
    name: "node.status down (serfHealth)",
    checks: { nodeChecks: ["serfHealth"] },
    fail: { type: "node.status", name: "n1", status: "down", nowMs: 1_000 },
    heal: { type: "node.status", name: "n1", status: "alive", nowMs: 1_001 },
  },
  {
    name: "check result (service:<id>)",
    checks: { nodeChecks: [], serviceChecks: [`service:${web.id}`] },
    fail: { type: "check", id: web.id, status: "critical", output: "", nowMs: 1_000 },
    heal: { type: "check", id: web.id, status: "passing", output: "", nowMs: 1_001 },
  },
  {
    name: "docker verdict (service:<id>:docker)",
    checks: { nodeChecks: [], serviceChecks: [`service:${dockerWeb.id}:docker`] },
    fail: { type: "docker", id: dockerWeb.id, state: "unhealthy", detail: "", nowMs: 1_000 },
    heal: { type: "docker", id: dockerWeb.id, state: "running", detail: "", nowMs: 1_001 },
  },
  {
    name: "check.update of a registered check",
    checks: { nodeChecks: ["mem"] },
    fail: {
      type: "check.update",
      node: "n1",
      id: "mem",
      status: "critical",
      output: "",
      nowMs: 1_000,
    },
    heal: {
      type: "check.update",
      node: "n1",
      id: "mem",
      status: "passing",
      output: "",
      nowMs: 1_001,
    },
  },
  {
    name: "check.register replacing a check with a critical one",
    checks: { nodeChecks: ["mem"] },
    fail: {
      type: "check.register",
      node: "n1",
      serviceId: null,
      check: registeredCheck("mem", { ttlMs: 20_000 }),
      nowMs: 1_000,
    },
  },
  {
    name: "check.deregister (the check is gone)",
    checks: { nodeChecks: ["mem"] },
    fail: { type: "check.deregister", node: "n1", id: "mem", nowMs: 1_000 },
  },
  {
    name: "deregister (the instance and its check are gone)",
    checks: { nodeChecks: [], serviceChecks: [`service:${web.id}`] },
    fail: { type: "deregister", id: web.id, nowMs: 1_000 },
  },
];

/** n1 with a passing registered check `mem`, the instances, and session A holding `lk`. */
function boundStore(checks: Partial<SessionSpec>) {
  const t = storeWith(
    { type: "register", instance: web },
    { type: "register", instance: dockerWeb },
    {
      type: "check.register",
      node: "n1",
      serviceId: null,
      check: registeredCheck("mem", { status: "passing" }),
    },
    create({ ...checks, lockDelayMs: 10_000 }),
    create({ id: B, nodeChecks: [] }),
    lock(A),
  );
  assert.ok(t.results.every((r) => r.ok), JSON.stringify(t.results));
  return t;
}

Deno.test("Store sessions: a command that fails or removes a bound check ends the session in the same apply", async (t) => {
  for (const { name, checks, fail } of triggers) {
    await t.step(name, () => {
      const { s, apply } = boundStore(checks);
      assert.deepEqual(apply(fail), { ok: true });
      assert.equal(s.sessions.get(A), undefined, "ended");
      assert.equal(s.sessions.holder("lk"), null, "its lock released");
      assert.equal(s.sessions.lockDelayUntil("lk"), 11_000, "lock-delay from the entry's nowMs");
      assert.ok(s.sessions.get(B) !== undefined, "a session without checks stays");
      assert.deepEqual(apply(lock(B, 10_999)), { ok: false });
      assert.deepEqual(apply(lock(B, 11_000)), { ok: true });
    });
  }
});

Deno.test("Store sessions: a bound check that flaps critical → passing in consecutive entries still ends the session", async (t) => {
  for (const { name, checks, fail, heal } of triggers) {
    if (heal === undefined) continue;
    await t.step(name, () => {
      const { s, apply } = boundStore(checks);
      apply(fail);
      apply(heal);
      assert.equal(s.sessions.get(A), undefined);
      assert.equal(s.sessions.holder("lk"), null);
    });
  }
});

Deno.test("Store sessions: check-bound invalidation is deterministic (the same log gives the same state)", () => {
  const log: Command[] = [
    { type: "register", instance: web },
    create({ nodeChecks: [], serviceChecks: [`service:${web.id}`], lockDelayMs: 10_000 }),
    lock(A),
    { type: "check", id: web.id, status: "critical", output: "", nowMs: 5_000 },
    { type: "check", id: web.id, status: "passing", output: "", nowMs: 5_001 },
  ];
  const one = storeWith(...log).s;
  const two = storeWith(...log).s;
  assert.deepEqual(two.sessions.list(), one.sessions.list());
  assert.deepEqual(two.kvGet("lk"), one.kvGet("lk"));
  assert.equal(one.sessions.lockDelayUntil("lk"), 15_000);
  assert.equal(two.sessions.lockDelayUntil("lk"), 15_000);
});

Deno.test("Store sessions: a restore that removes a bound check ends the session", () => {
  const { s, apply } = boundStore({ nodeChecks: ["mem"] });
  // The restored catalog: n1 without its check `mem`.
  const { s: other } = storeWith();
  const src = other.snapshotSource("user");
  const parts: Uint8Array[] = [];
  for (let p = src.next(); p !== null; p = src.next()) parts.push(p);
  src.close();
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  apply({ type: "restore.begin", id: "r" });
  assert.deepEqual(apply({ type: "restore.chunk", id: "r", seq: 0, data: bytes }), { ok: true });
  assert.deepEqual(
    apply({ type: "restore.commit", id: "r", chunks: 1, bytes: bytes.byteLength }),
    { ok: true },
  );
  assert.equal(s.sessions.get(A), undefined, "bound to a check the restore removed");
  assert.ok(s.sessions.get(B) !== undefined, "a session without checks stays");
});
