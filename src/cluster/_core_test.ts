import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { pack, unpack } from "msgpackr";
import type { HardState } from "../../raft/mod.ts";
import { closeAll, member, threeMembers, until } from "../../test/clusters.ts";
import type { LogWrite, LogWriter } from "./log_writer.ts";

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
  assert.ok(hs.commit >= applied);
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

Deno.test("ClusterCore stops the member when a snapshot's compaction write fails (memory is already compacted past the disk)", async () => {
  let failing: Error | undefined;
  const a = await member("a", "127.0.0.1", {
    tls: false,
    bootstrap: true,
    voters: 1,
    snapshotEntries: 20,
    snapshotKeepEntries: 5,
    wrapLogWriter: (inner: LogWriter) => ({
      write: (w: LogWrite) => {
        if (failing === undefined && w.compactTo !== undefined) failing = new Error("disk full");
        // A writer fails every write after its first failure.
        return failing === undefined ? inner.write(w) : Promise.reject(failing);
      },
      close: () => inner.close(),
    }),
  });
  try {
    for (let i = 0; i < 60 && failing === undefined; i++) {
      // Once the write failed, the member stops and refuses proposals.
      await a.cluster.propose({ type: "kv.put", key: `k${i}`, value: new Uint8Array(1), flags: 0 })
        .catch((e) => {
          if (failing === undefined) throw e;
        });
    }
    await until("a compaction write was tried", () => failing !== undefined);
    await until("the member stopped", () => a.fatal.length > 0);
    assert.deepEqual(a.fatal, [failing]);
    assert.equal(a.logs.some((l) => l.includes("snapshot not taken")), false);
  } finally {
    await closeAll([a]);
  }
});

Deno.test("ClusterCore records the intervals between a follower's heartbeats from its leader, none on the leader", async () => {
  const ms = await threeMembers();
  try {
    const leader = ms.find((m) => m.cluster.status().role === "leader")!;
    const follower = ms.find((m) => m.cluster.status().role === "follower")!;
    leader.cluster.heartbeatGaps.reset();
    follower.cluster.heartbeatGaps.reset();
    await until(
      "the follower saw heartbeat gaps",
      () => follower.cluster.heartbeatGaps.read().gaps >= 3,
    );
    const seen = follower.cluster.heartbeatGaps.read();
    assert.ok(seen.worstMs !== null && seen.p50Ms !== null && seen.p50Ms <= seen.worstMs);
    assert.equal(leader.cluster.heartbeatGaps.read().gaps, 0);
  } finally {
    await closeAll(ms);
  }
});
