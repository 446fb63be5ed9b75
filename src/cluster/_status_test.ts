import assert from "node:assert/strict";
import { closeAll, leaderOf, member, threeMembers, until } from "../../test/clusters.ts";

Deno.test("RaftCluster.status() of a member outside any cluster is standalone with no leader", async () => {
  const m = await member("lonely", "127.0.0.1");
  try {
    const s = m.cluster.status();
    assert.equal(s.role, "standalone");
    assert.equal(s.leader, null);
    assert.equal(s.leaderAddress, null);
    // Never heard from a leader: null (was the time since 1970).
    assert.equal(s.lastContactMs, null);
    assert.deepEqual(m.cluster.members(), []);
  } finally {
    await closeAll([m]);
  }
});

Deno.test("RaftCluster.members() lists every member with role, state and this member's contact", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const list = leader.cluster.members();
    assert.deepEqual(list.map((m) => m.name).sort(), ["a", "b", "c"]);
    for (const m of list) {
      assert.equal(m.role, "voter");
      assert.equal(m.state, m.name === leader.name ? "leader" : "follower");
      assert.equal(m.status, "alive");
      assert.notEqual(m.lastContactMs, null);
    }
    const s = leader.cluster.status();
    assert.equal(s.leader, leader.name);
    assert.equal(s.leaderAddress, leader.cluster.address);
    assert.equal(s.lastContactMs, 0);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.membersFromLeader() on a follower reports the leader's contact with every member", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const follower = ms.find((m) => m !== leader)!;
    const list = await follower.cluster.membersFromLeader();
    assert.deepEqual(list.map((m) => m.name).sort(), ["a", "b", "c"]);
    for (const m of list) {
      assert.equal(m.contactFrom, "leader");
      // The leader hears from everyone; the follower alone never hears from the other follower.
      assert.notEqual(m.lastContactMs, null, m.name);
    }
    assert.ok(follower.cluster.members().every((m) => m.contactFrom === "local"));
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.membersFromLeader() without a leader answers this member's own view, marked local", async () => {
  const ms = await threeMembers();
  const left = ms[2]!;
  try {
    await closeAll(ms.slice(0, 2));
    await until("no leader", () => left.cluster.status().leader === null);
    const list = await left.cluster.membersFromLeader();
    assert.equal(list.length, 3);
    assert.ok(list.every((m) => m.contactFrom === "local"));
  } finally {
    await closeAll([left]);
  }
});
