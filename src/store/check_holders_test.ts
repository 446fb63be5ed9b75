import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import fc from "fast-check";
import { apiInstanceSpec, registeredCheck as ttl } from "../../test/fixtures.ts";
import {
  applyAll,
  ARB_CHECK_IDS,
  ARB_INSTANCE_IDS,
  ARB_NODES,
  catalogCommands,
  instanceSpec,
} from "./_catalog_arbitrary.ts";
import { checkIdClash, checkOnNode, checksOfNode, planCheckCommand } from "./checks.ts";
import { Store } from "./store.ts";
import type { Instance, NodeInfo } from "./types.ts";

/** Every CheckID the arbitrary's commands can give a node, and some they cannot. */
const IDS = [
  "serfHealth",
  "nope",
  ...ARB_CHECK_IDS,
  "shared",
  ...ARB_INSTANCE_IDS.flatMap((i) => [
    `${i}:ready`,
    `${i}:live`,
    `service:${i}`,
    `service:${i}:docker`,
  ]),
];

/** The CheckIDs berth derives on a node, found by listing its instances (the reference). */
function derivedIds(instances: readonly Instance[]): Set<string> {
  const out = new Set(["serfHealth"]);
  for (const i of instances) {
    if (i.check !== null || i.checkResult !== null) out.add(`service:${i.id}`);
    if (i.docker !== null) out.add(`service:${i.id}:docker`);
  }
  return out;
}

/** Why `spec`'s checks clash on its node, found by listing the node's instances (the reference). */
function clashByListing(
  spec: Pick<Instance, "id" | "node" | "checks">,
  node: NodeInfo | undefined,
  instances: readonly Instance[],
): string | null {
  const others = instances.filter((i) => i.id !== spec.id);
  const taken = new Map<string, string>();
  for (const id of derivedIds(others)) taken.set(id, "berth's own checks");
  for (const c of node?.checks ?? []) taken.set(c.id, `node ${spec.node}`);
  for (const i of others) for (const c of i.checks ?? []) taken.set(c.id, `service ${i.id}`);
  for (const c of spec.checks ?? []) {
    const by = taken.get(c.id);
    if (by !== undefined) return `check id "${c.id}" is taken on node ${spec.node} (by ${by})`;
  }
  return null;
}

Deno.test("check lookups by id answer as listing the node's checks does, after any command sequence", () => {
  fc.assert(
    fc.property(
      catalogCommands({ maxLength: 80 }),
      fc.array(instanceSpec, { maxLength: 5 }),
      (cmds, specs) => {
        const s = Store.open(":memory:");
        try {
          applyAll(s, cmds);
          for (const n of ARB_NODES) {
            const instances = s.instancesOfNode(n);
            const listed = checksOfNode(s, n);
            const derived = derivedIds(instances);
            for (const id of IDS) {
              // Liveness only for a node the store knows (checksOfNode lists a stand-in's).
              const want = id === "serfHealth" && s.node(n) === undefined
                ? undefined
                : listed.find((c) => c.id === id);
              assert.deepEqual(checkOnNode(s, n, id), want, id);
              const holder = instances.find((i) => (i.checks ?? []).some((c) => c.id === id));
              assert.equal(s.checkHolder(n, id)?.id, holder?.id, id);
              const plan = planCheckCommand(
                { type: "check.register", node: n, serviceId: null, check: ttl(id) },
                s.node(n),
                s,
              );
              assert.equal(typeof plan === "string" && /reserved/.test(plan), derived.has(id), id);
            }
          }
          for (const spec of specs) {
            const want = clashByListing(spec, s.node(spec.node), s.instancesOfNode(spec.node));
            assert.equal(checkIdClash(spec, s.node(spec.node), s), want);
          }
        } finally {
          s.close();
        }
      },
    ),
    { numRuns: 120 },
  );
});

Deno.test("Store.open() rebuilds check_holders from the instances (a file an older berth wrote)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/store.db`;
    let s = Store.open(path);
    s.apply(1, {
      type: "register",
      instance: apiInstanceSpec({ id: "a", node: "n1", checks: [ttl("t1"), ttl("t2")] }),
    });
    s.close();
    const db = new DatabaseSync(path);
    db.exec("DELETE FROM check_holders");
    db.close();
    s = Store.open(path);
    assert.equal(s.checkHolder("n1", "t2")?.id, "a");
    assert.equal(checkOnNode(s, "n1", "t1")?.serviceId, "a");
    s.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Store.installSnapshotFile() and restore.commit rebuild check_holders (no snapshot carries it)", async () => {
  const src = Store.open(":memory:");
  src.apply(1, {
    type: "register",
    instance: apiInstanceSpec({ id: "a", node: "n1", checks: [ttl("t1")] }),
  });
  const dir = await Deno.makeTempDir();
  try {
    const raft = src.snapshotSource("raft");
    const parts: Uint8Array[] = [];
    for (let p = raft.next(); p !== null; p = raft.next()) parts.push(p);
    const file = `${dir}/snap`;
    await Deno.writeFile(file, new Uint8Array(parts.flatMap((p) => [...p])));
    const installed = Store.open(":memory:");
    installed.apply(1, {
      type: "register",
      instance: apiInstanceSpec({ id: "b", node: "n1", checks: [ttl("t2")] }),
    });
    installed.installSnapshotFile(file);
    assert.equal(installed.checkHolder("n1", "t1")?.id, "a");
    assert.equal(installed.checkHolder("n1", "t2"), undefined);

    const restored = Store.open(":memory:");
    restored.apply(1, {
      type: "register",
      instance: apiInstanceSpec({ id: "b", node: "n1", checks: [ttl("t2")] }),
    });
    const user = src.snapshotSource("user");
    let index = 2;
    let seq = 0;
    let bytes = 0;
    restored.apply(index++, { type: "restore.begin", id: "r" });
    for (let p = user.next(); p !== null; p = user.next()) {
      bytes += p.byteLength;
      restored.apply(index++, { type: "restore.chunk", id: "r", seq: seq++, data: p });
    }
    const r = restored.apply(index, { type: "restore.commit", id: "r", chunks: seq, bytes });
    assert.deepEqual(r, { ok: true });
    assert.equal(restored.checkHolder("n1", "t1")?.id, "a");
    assert.equal(restored.checkHolder("n1", "t2"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Store.checkHolder() follows an instance that moves to another node with the same checks", () => {
  const s = Store.open(":memory:");
  const a = apiInstanceSpec({ id: "a", node: "n1", checks: [ttl("t1")] });
  s.apply(1, { type: "register", instance: a });
  assert.equal(s.checkHolder("n1", "t1")?.id, "a");
  s.apply(2, { type: "register", instance: { ...a, node: "n2" } });
  assert.equal(s.checkHolder("n1", "t1"), undefined);
  assert.equal(s.checkHolder("n2", "t1")?.id, "a");
  // Another instance may now take t1 on n1.
  const b = apiInstanceSpec({ id: "b", node: "n1", checks: [ttl("t1")] });
  assert.deepEqual(s.apply(3, { type: "register", instance: b }), { ok: true });
  assert.equal(s.checkHolder("n1", "t1")?.id, "b");
  s.apply(4, { type: "deregister", id: "a" });
  assert.equal(s.checkHolder("n2", "t1"), undefined);
  assert.equal(s.checkHolder("n1", "t1")?.id, "b");
  s.close();
});
