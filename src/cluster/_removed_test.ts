import assert from "node:assert/strict";
import { Store } from "../store/mod.ts";
import { closeAll, leaderOf, member, type TestMember, until } from "../../test/clusters.ts";

const REMOVED =
  /^this member \(id \d+\) was removed from cluster \S+; to join again, start with an empty --data-dir and --join$/;

/** a, b (in memory) and c (on disk in `dir`), all voters. */
async function withDiskMember(dir: string): Promise<TestMember[]> {
  const a = await member("a", "127.0.0.1", { bootstrap: true });
  const b = await member("b", "127.0.0.2", { join: [a.cluster.address] });
  const c = await member("c", "127.0.0.3", { join: [a.cluster.address], dataDir: dir });
  const all = [a, b, c];
  await until("three voters", () => all.every((m) => m.store.confState().voters.length === 3));
  return all;
}

Deno.test("A removed member restarted with data that does not know it was removed is told so and stops", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-removed-" });
  const [a, b, c] = await withDiskMember(dir) as [TestMember, TestMember, TestMember];
  let again: TestMember | undefined;
  try {
    await closeAll([c]);
    await leaderOf([a, b]);
    await a.cluster.removePeer("c");
    // Its data still lists it as a voter: it starts, campaigns, and the members answer "removed".
    again = await member("c", "127.0.0.3", { dataDir: dir });
    await until("c stopped", () => again!.fatal.length > 0);
    assert.match(again.fatal[0]!.message, REMOVED);
    assert.ok(again.logs.includes(`cluster: ${again.fatal[0]!.message}`), again.logs.join("\n"));
    assert.equal(a.store.confState().voters.length, 2);
  } finally {
    await closeAll([a, b, ...(again ? [again] : [])]);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("A removed member restarted with data that records its removal refuses to start", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-removed-" });
  const [a, b, c] = await withDiskMember(dir) as [TestMember, TestMember, TestMember];
  try {
    await closeAll([c]);
    await leaderOf([a, b]);
    await a.cluster.removePeer("c");
    // c's store as it would be had c applied its own removal.
    const s = Store.open(`${dir}/store.db`);
    await a.store.writeSnapshotFile(`${dir}/a.snap`, "raft");
    s.installSnapshotFile(`${dir}/a.snap`);
    s.close();
    await assert.rejects(member("c", "127.0.0.3", { dataDir: dir }), (e: Error) => {
      assert.match(e.message, REMOVED);
      return true;
    });
  } finally {
    await closeAll([a, b]);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("A running member removed with remove-peer stops (it is told by the leader)", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true });
  const b = await member("b", "127.0.0.2", { join: [a.cluster.address] });
  const c = await member("c", "127.0.0.3", { join: [a.cluster.address] });
  const all = [a, b, c];
  try {
    await until("three voters", () => all.every((m) => m.store.confState().voters.length === 3));
    await a.cluster.removePeer("c");
    await until("c stopped", () => c.fatal.length > 0);
    assert.match(c.fatal[0]!.message, REMOVED);
    assert.deepEqual(a.fatal, []);
    assert.deepEqual(b.fatal, []);
  } finally {
    await closeAll(all);
  }
});

Deno.test("RaftCluster.leave() does not count as being removed: no fatal stop", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true });
  const b = await member("b", "127.0.0.2", { join: [a.cluster.address] });
  const all = [a, b];
  try {
    await until("two voters", () => all.every((m) => m.store.confState().voters.length === 2));
    await b.cluster.leave();
    await until("b gone", () => !a.store.members().some((m) => m.name === "b"));
    // Told by the leader (or by its own log): noted, not a failure.
    await until(
      "b knows it is out",
      () => b.logs.includes("cluster: this member (id 2) was removed from the cluster"),
    );
    assert.deepEqual(b.fatal, []);
  } finally {
    await closeAll(all);
  }
});
