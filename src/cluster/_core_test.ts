import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { pack, unpack } from "msgpackr";
import type { HardState } from "../../raft/mod.ts";
import { closeAll, member, threeMembers, until } from "../../test/clusters.ts";

Deno.test("ClusterCore logs each new leader once, by name, also right after a bootstrap", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true, voters: 1 });
  try {
    await until("a leads", () => a.cluster.status().role === "leader");
    await until("the leader logged", () => a.logs.some((l) => l.startsWith("cluster: leader is")));
    const lines = a.logs.filter((l) => l.startsWith("cluster: leader is"));
    assert.deepEqual(lines, ["cluster: leader is a (id 1)"]);
  } finally {
    await closeAll([a]);
  }
});

Deno.test("ClusterCore: a joiner names the leader it learns of before it has the member table", async () => {
  const ms = await threeMembers();
  try {
    for (const m of ms) {
      const lines = m.logs.filter((l) => l.startsWith("cluster: leader is"));
      assert.ok(lines.length > 0, m.logs.join("\n"));
      for (const l of lines) assert.match(l, /^cluster: leader is [abc] \(id \d+\)$/);
    }
  } finally {
    await closeAll(ms);
  }
});

Deno.test("ClusterCore.startNode() restarts when the store applied past raft.db's persisted commit (an unsynced commit lost to a power loss)", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-core-" });
  let a = await member("a", "127.0.0.1", { tls: false, bootstrap: true, voters: 1, dataDir: dir });
  for (let i = 0; i < 5; i++) {
    await a.cluster.propose({ type: "kv.put", key: `k${i}`, value: new Uint8Array(1), flags: 0 });
  }
  const applied = a.store.appliedIndex();
  await closeAll([a]);
  // What the disk can hold after losing the last commit-only hard state (written unsynced)
  // while store.db, checkpointed and fsynced on its own, kept what was applied.
  const db = new DatabaseSync(`${dir}/raft.db`);
  const read = db.prepare("SELECT value FROM state WHERE key='hardState'");
  const hs = unpack((read.get() as { value: Uint8Array }).value) as HardState;
  assert.equal(hs.commit, applied);
  db.prepare("UPDATE state SET value=? WHERE key='hardState'")
    .run(pack({ ...hs, commit: applied - 2 }));
  db.close();
  a = await member("a", "127.0.0.1", { tls: false, voters: 1, dataDir: dir });
  try {
    await until("a leads again", () => a.cluster.status().role === "leader");
    assert.equal(a.store.kvGet("k4") !== undefined, true);
    const p = await a.cluster.propose({
      type: "kv.put",
      key: "after",
      value: new Uint8Array(1),
      flags: 0,
    });
    assert.ok(p.index > applied);
  } finally {
    await closeAll([a]);
    Deno.removeSync(dir, { recursive: true });
  }
});
