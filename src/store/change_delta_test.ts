import assert from "node:assert/strict";
import { type Change, type Command, type InstanceSpec, Store } from "./mod.ts";
import { apiInstanceSpec, instanceSpec, registeredCheck as ttl } from "../../test/fixtures.ts";

const enc = new TextEncoder();
const WEB = "n1:web-1:80";
const API = "api-1";
const web = instanceSpec({ id: WEB });
const api = (over: Partial<InstanceSpec> = {}) =>
  apiInstanceSpec({ id: API, service: "api", ...over });
const n1: Command = { type: "node.register", name: "n1", address: "10.0.0.1", meta: {} };

/** A store with `cmds` applied from index 1, recording every change from then on. */
function storeWith(...cmds: Command[]) {
  const s = Store.open(":memory:");
  for (const c of cmds) {
    const r = s.apply(s.appliedIndex() + 1, c);
    assert.ok(r.ok, JSON.stringify(r));
  }
  const changes: Change[] = [];
  s.subscribe((c) => changes.push(c));
  /** Applies `c` at the next index; the change it announced. */
  const apply = (c: Command): Change => {
    s.apply(s.appliedIndex() + 1, c);
    assert.equal(changes.length > 0, true);
    return changes[changes.length - 1]!;
  };
  return { s, changes, apply };
}

/** The deltas of `c`, as plain data to compare with. */
function deltas(c: Change) {
  return { instances: c.instances, nodes: c.nodes, reset: c.reset };
}

Deno.test("Change deltas: node.register gives the node's row before and after; an identical one none", () => {
  const { s, apply } = storeWith();
  let c = apply(n1);
  assert.deepEqual(deltas(c), {
    instances: [],
    nodes: [{ name: "n1", before: null, after: s.node("n1")! }],
    reset: false,
  });
  const before = s.node("n1")!;
  c = apply({ ...n1, meta: { zone: "a" } });
  assert.deepEqual(deltas(c), {
    instances: [],
    nodes: [{ name: "n1", before, after: s.node("n1")! }],
    reset: false,
  });
  assert.deepEqual(s.node("n1")!.meta, { zone: "a" });
  c = apply({ ...n1, meta: { zone: "a" } });
  assert.deepEqual(deltas(c), { instances: [], nodes: [], reset: false });
});

Deno.test("Change deltas: node.status gives the node row; its instances' rows stay, their services are named", () => {
  const { s, apply } = storeWith(n1, { type: "register", instance: web }, {
    type: "register",
    instance: api(),
  });
  const before = s.node("n1")!;
  const c = apply({ type: "node.status", name: "n1", status: "down" });
  assert.equal(s.node("n1")!.status, "down");
  assert.deepEqual(deltas(c), {
    instances: [],
    nodes: [{ name: "n1", before, after: s.node("n1")! }],
    reset: false,
  });
  assert.deepEqual([...c.services].sort(), ["api", "web"]);
  assert.deepEqual(deltas(apply({ type: "node.status", name: "n1", status: "down" })), {
    instances: [],
    nodes: [],
    reset: false,
  });
});

Deno.test("Change deltas: register adds (before null), changes (before the old row), repeats (nothing)", () => {
  const { s, apply } = storeWith(n1);
  let c = apply({ type: "register", instance: web });
  assert.deepEqual(deltas(c), {
    instances: [{ id: WEB, before: null, after: s.instance(WEB)! }],
    nodes: [],
    reset: false,
  });
  const before = s.instance(WEB)!;
  c = apply({ type: "register", instance: { ...web, tags: ["v2"], meta: { b: "1", a: "2" } } });
  assert.deepEqual(deltas(c), {
    instances: [{ id: WEB, before, after: s.instance(WEB)! }],
    nodes: [],
    reset: false,
  });
  assert.deepEqual(s.instance(WEB)!.tags, ["v2"]);
  assert.equal(s.instance(WEB)!.createIndex, 2);
  c = apply({ type: "register", instance: { ...web, tags: ["v2"], meta: { a: "2", b: "1" } } });
  assert.deepEqual(deltas(c), { instances: [], nodes: [], reset: false });
});

Deno.test("Change deltas: deregister gives the removed row (after null); an unknown id nothing", () => {
  const { s, apply } = storeWith(n1, { type: "register", instance: web });
  const before = s.instance(WEB)!;
  let c = apply({ type: "deregister", id: WEB });
  assert.deepEqual(deltas(c), {
    instances: [{ id: WEB, before, after: null }],
    nodes: [],
    reset: false,
  });
  c = apply({ type: "deregister", id: WEB });
  assert.deepEqual(deltas(c), { instances: [], nodes: [], reset: false });
});

Deno.test("Change deltas: check and docker give the instance's rows; a refused or unchanged one nothing", () => {
  const check = { http: "/h", intervalMs: 1000, timeoutMs: 100 };
  const { s, apply } = storeWith(n1, { type: "register", instance: { ...web, check } });
  let before = s.instance(WEB)!;
  let c = apply({ type: "check", id: WEB, status: "critical", output: "500" });
  assert.deepEqual(deltas(c), {
    instances: [{ id: WEB, before, after: s.instance(WEB)! }],
    nodes: [],
    reset: false,
  });
  assert.deepEqual(s.instance(WEB)!.checkResult, { status: "critical", output: "500" });
  c = apply({ type: "check", id: WEB, status: "critical", output: "500" });
  assert.deepEqual(deltas(c), { instances: [], nodes: [], reset: false });
  before = s.instance(WEB)!;
  c = apply({ type: "docker", id: WEB, state: "unhealthy", detail: "exit 1" });
  assert.deepEqual(deltas(c), {
    instances: [{ id: WEB, before, after: s.instance(WEB)! }],
    nodes: [],
    reset: false,
  });
  c = apply({ type: "docker", id: "nope", state: "running", detail: "" });
  assert.deepEqual(deltas(c), { instances: [], nodes: [], reset: false });
});

Deno.test("Change deltas: check.register/update/deregister give the rows of the instance or node holding the check", () => {
  const { s, apply } = storeWith(n1, { type: "register", instance: api({ node: "n1" }) });
  // Bound to the instance.
  let before = s.instance(API)!;
  let c = apply({ type: "check.register", node: "n1", serviceId: API, check: ttl("t") });
  assert.deepEqual(deltas(c), {
    instances: [{ id: API, before, after: s.instance(API)! }],
    nodes: [],
    reset: false,
  });
  before = s.instance(API)!;
  c = apply({ type: "check.update", node: "n1", id: "t", status: "passing", output: "ok" });
  assert.deepEqual(deltas(c), {
    instances: [{ id: API, before, after: s.instance(API)! }],
    nodes: [],
    reset: false,
  });
  assert.equal(s.instance(API)!.checks![0]!.status, "passing");
  // Moved to the node: the instance loses it, the node gains it.
  before = s.instance(API)!;
  const nodeBefore = s.node("n1")!;
  c = apply({ type: "check.register", node: "n1", serviceId: null, check: ttl("t") });
  assert.deepEqual(deltas(c), {
    instances: [{ id: API, before, after: s.instance(API)! }],
    nodes: [{ name: "n1", before: nodeBefore, after: s.node("n1")! }],
    reset: false,
  });
  assert.equal(s.instance(API)!.checks, undefined);
  assert.equal(s.node("n1")!.checks!.length, 1);
  assert.deepEqual([...c.services], ["api"], "a node check is part of its instances' health");
  // Node-level update and deregister.
  let n = s.node("n1")!;
  c = apply({ type: "check.update", node: "n1", id: "t", status: "warning", output: "slow" });
  assert.deepEqual(deltas(c), {
    instances: [],
    nodes: [{ name: "n1", before: n, after: s.node("n1")! }],
    reset: false,
  });
  n = s.node("n1")!;
  c = apply({ type: "check.deregister", node: "n1", id: "t" });
  assert.deepEqual(deltas(c), {
    instances: [],
    nodes: [{ name: "n1", before: n, after: s.node("n1")! }],
    reset: false,
  });
  assert.equal(s.node("n1")!.checks, undefined);
  c = apply({ type: "check.update", node: "n1", id: "t", status: "passing", output: "" });
  assert.deepEqual(deltas(c), { instances: [], nodes: [], reset: false }, "refused: no check t");
});

Deno.test("Change deltas: a batch gives each row once, before the batch and after its last write", () => {
  const { s, apply } = storeWith(n1, { type: "register", instance: web });
  const before = s.instance(WEB)!;
  const c = apply({
    type: "batch",
    commands: [
      { type: "docker", id: WEB, state: "paused", detail: "" },
      { type: "register", instance: api() },
      { type: "docker", id: WEB, state: "stopping", detail: "" },
      { type: "register", instance: { ...api(), id: "tmp" } },
      { type: "deregister", id: "tmp" },
      { type: "node.status", name: "n1", status: "down" },
    ],
  });
  assert.deepEqual(deltas(c), {
    instances: [
      { id: WEB, before, after: s.instance(WEB)! },
      { id: API, before: null, after: s.instance(API)! },
    ],
    nodes: [{
      name: "n1",
      before: { ...s.node("n1")!, status: "alive", modifyIndex: 1 },
      after: s.node("n1")!,
    }],
    reset: false,
  });
  assert.deepEqual(s.instance(WEB)!.docker, { state: "stopping", detail: "" });
});

Deno.test("Change deltas: a failing batch leaves no delta and no row changed", () => {
  const { s, apply } = storeWith(n1, { type: "register", instance: web });
  const rows = { web: s.instance(WEB), n1: s.node("n1") };
  const c = apply({
    type: "batch",
    commands: [
      { type: "docker", id: WEB, state: "paused", detail: "" },
      { type: "register", instance: api() },
      { type: "node.status", name: "n1", status: "down" },
      { type: "check", id: "nope", status: "passing", output: "" },
    ],
  });
  assert.deepEqual(deltas(c), { instances: [], nodes: [], reset: false });
  assert.equal(c.tables.size, 0);
  assert.deepEqual({ web: s.instance(WEB), n1: s.node("n1") }, rows);
  assert.equal(s.instance(API), undefined);
});

Deno.test("Change deltas: entries merge into one row per id; a failed batch among applied entries leaves none", () => {
  const { s, changes } = storeWith(n1, { type: "register", instance: web });
  const before = s.instance(WEB)!;
  const nodeBefore = s.node("n1")!;
  const results = s.applyMany([
    {
      index: 3,
      command: {
        type: "batch",
        commands: [
          { type: "docker", id: WEB, state: "paused", detail: "" },
          { type: "docker", id: WEB, state: "stopping", detail: "" },
          { type: "register", instance: api() },
        ],
      },
    },
    {
      index: 4,
      command: {
        type: "batch",
        commands: [
          { type: "deregister", id: WEB },
          { type: "node.status", name: "n1", status: "down" },
          { type: "check", id: "nope", status: "passing", output: "" },
        ],
      },
    },
  ]);
  assert.deepEqual(results.map((r) => r.ok), [true, false]);
  assert.equal(changes.length, 1);
  assert.deepEqual(deltas(changes[0]!), {
    instances: [
      { id: WEB, before, after: s.instance(WEB)! },
      { id: API, before: null, after: s.instance(API)! },
    ],
    nodes: [],
    reset: false,
  });
  assert.deepEqual(s.instance(WEB)!.docker, { state: "stopping", detail: "" });
  assert.deepEqual(s.node("n1"), nodeBefore);
});

Deno.test("Change deltas: applyMany announces one change: rows before its first entry, after its last", () => {
  const { s, changes } = storeWith(n1);
  s.applyMany([
    { index: 2, command: { type: "register", instance: web } },
    { index: 3, command: { type: "docker", id: WEB, state: "paused", detail: "" } },
    { index: 4, command: { type: "register", instance: api() } },
    { index: 5, command: { type: "deregister", id: API } },
  ]);
  assert.equal(changes.length, 1);
  assert.deepEqual(deltas(changes[0]!), {
    instances: [{ id: WEB, before: null, after: s.instance(WEB)! }],
    nodes: [],
    reset: false,
  });
  assert.equal(s.instance(WEB)!.modifyIndex, 3);
});

Deno.test("Change deltas: KV, txn, session and ACL commands give no rows and no reset", () => {
  const { apply } = storeWith(n1);
  const session = "aaaaaaaa-0000-4000-8000-000000000001";
  const cmds: Command[] = [
    { type: "kv.put", key: "k", value: enc.encode("v"), flags: 0 },
    {
      type: "txn",
      ops: [{ verb: "set", key: "t", value: enc.encode("x"), flags: 0, index: 0, session: "" }],
      nowMs: 0,
    },
    {
      type: "session.create",
      session: {
        id: session,
        name: "",
        node: "n1",
        nodeChecks: ["serfHealth"],
        serviceChecks: [],
        lockDelayMs: 0,
        behavior: "release",
        ttl: "",
        ttlMs: 0,
      },
    },
    { type: "kv.lock", key: "l", value: enc.encode(""), flags: 0, session, nowMs: 0 },
    { type: "session.destroy", id: session, nowMs: 0 },
    { type: "kv.delete", key: "k" },
    {
      type: "acl.policy.set",
      policy: {
        id: "11111111-0000-4000-8000-000000000001",
        name: "readers",
        description: "",
        rules: `key_prefix "" { policy = "read" }`,
        datacenters: [],
      },
    },
    { type: "noop" },
  ];
  for (const cmd of cmds) {
    const c = apply(cmd);
    assert.deepEqual(deltas(c), { instances: [], nodes: [], reset: false }, cmd.type);
    assert.ok(!c.tables.has("instances") && !c.tables.has("nodes"), cmd.type);
  }
});

Deno.test("Change deltas: a check that fails and ends a session gives the check's row, the lock's key", () => {
  const session = "aaaaaaaa-0000-4000-8000-000000000001";
  const { s, apply } = storeWith(
    n1,
    { type: "register", instance: api({ node: "n1" }) },
    {
      type: "check.register",
      node: "n1",
      serviceId: API,
      check: ttl("t", { status: "passing" }),
    },
    {
      type: "session.create",
      session: {
        id: session,
        name: "",
        node: "n1",
        nodeChecks: [],
        serviceChecks: ["t"],
        lockDelayMs: 0,
        behavior: "release",
        ttl: "",
        ttlMs: 0,
      },
    },
    { type: "kv.lock", key: "l", value: enc.encode(""), flags: 0, session, nowMs: 0 },
  );
  const before = s.instance(API)!;
  const c = apply({ type: "check.update", node: "n1", id: "t", status: "critical", output: "" });
  assert.equal(s.sessions.get(session), undefined);
  assert.deepEqual(deltas(c), {
    instances: [{ id: API, before, after: s.instance(API)! }],
    nodes: [],
    reset: false,
  });
  assert.ok(c.keys.has("l"));
});

Deno.test("Change deltas: an invalid command gives no rows and no reset", () => {
  const { apply } = storeWith(n1);
  const c = apply({ type: "register", instance: { ...web, port: -1 } } as Command);
  assert.deepEqual(deltas(c), { instances: [], nodes: [], reset: false });
});

/** The whole stream of a store's "raft" snapshot. */
function raftSnapshot(s: Store): Uint8Array {
  const src = s.snapshotSource("raft");
  const parts: Uint8Array[] = [];
  for (let p = src.next(); p !== null; p = src.next()) parts.push(p);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

Deno.test("Change deltas: restore.commit is a reset (no rows); begin and chunk are not", () => {
  const src = storeWith(n1, { type: "register", instance: api() }).s;
  const snap = src.snapshotSource("user");
  const { s, changes } = storeWith(n1, { type: "register", instance: web });
  let index = s.appliedIndex() + 1;
  s.apply(index++, { type: "restore.begin", id: "r" });
  let seq = 0;
  for (let p = snap.next(); p !== null; p = snap.next()) {
    s.apply(index++, { type: "restore.chunk", id: "r", seq: seq++, data: p });
  }
  const announced = changes.length;
  assert.ok(changes.every((c) => !c.reset && c.instances.length === 0 && c.nodes.length === 0));
  const total = (() => {
    const again = src.snapshotSource("user");
    let n = 0;
    for (let p = again.next(); p !== null; p = again.next()) n += p.byteLength;
    return n;
  })();
  const r = s.apply(index, { type: "restore.commit", id: "r", chunks: seq, bytes: total });
  assert.deepEqual(r, { ok: true });
  assert.equal(changes.length, announced + 1);
  const c = changes[changes.length - 1]!;
  assert.deepEqual(deltas(c), { instances: [], nodes: [], reset: true });
  assert.deepEqual([...c.services].sort(), ["api", "web"]);
  assert.deepEqual(s.instances().map((i) => i.id), [API]);
});

Deno.test("Change deltas: installSnapshotFile is a reset (no rows)", async () => {
  const src = storeWith(n1, { type: "register", instance: api() }).s;
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/snap`, raftSnapshot(src));
    const { s, changes } = storeWith(n1, { type: "register", instance: web });
    s.installSnapshotFile(`${dir}/snap`);
    assert.equal(changes.length, 1);
    assert.deepEqual(deltas(changes[0]!), { instances: [], nodes: [], reset: true });
    assert.deepEqual(s.instances().map((i) => i.id), [API]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Store.instancesPage() gives the instances after an id, in id order, at most `limit`", () => {
  const ids = ["b", "a", "d", "c", "e"];
  const { s } = storeWith(
    ...ids.map((id): Command => ({ type: "register", instance: api({ id }) })),
  );
  assert.deepEqual(s.instancesPage("", 2).map((i) => i.id), ["a", "b"]);
  assert.deepEqual(s.instancesPage("b", 2).map((i) => i.id), ["c", "d"]);
  assert.deepEqual(s.instancesPage("d", 2).map((i) => i.id), ["e"]);
  assert.deepEqual(s.instancesPage("e", 2), []);
  assert.deepEqual(s.instancesPage("", 10), s.instances());
});

Deno.test("Change services: a node's new address names every service on it and moves their index", () => {
  const { s, apply } = storeWith(
    n1,
    { type: "register", instance: web },
    { type: "register", instance: api() },
    { type: "register", instance: api({ id: "elsewhere", service: "db", node: "n2" }) },
  );
  const c = apply({ ...n1, address: "10.0.0.9" });
  assert.deepEqual([...c.services].sort(), ["api", "web"]);
  assert.equal(s.serviceIndex("web"), c.index);
  assert.equal(s.serviceIndex("api"), c.index);
  assert.equal(s.serviceIndex("db"), 4);
  assert.ok(!c.tables.has("instances"), "no instance's health changed");
});
