import assert from "node:assert/strict";
import { instanceSpec } from "../../test/fixtures.ts";
import { RejectedError, TimeoutError, UnknownMemberError } from "./errors.ts";
import { closeAll, leaderOf, member, threeMembers, until } from "../../test/clusters.ts";

Deno.test("RaftCluster.transferLeader() hands leadership to the named voter, from any member", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const others = ms.filter((m) => m !== leader);
    // Asked on a follower: forwarded to the leader.
    await others[0]!.cluster.transferLeader(others[1]!.name);
    await until(
      "everyone sees the new leader",
      () => ms.every((m) => m.cluster.status().leader === others[1]!.name),
    );
    assert.equal(others[1]!.cluster.status().role, "leader");
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.transferLeader(null) picks another voter", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    await leader.cluster.transferLeader(null);
    assert.notEqual(leader.cluster.status().leader, leader.name);
    assert.notEqual(leader.cluster.status().leader, null);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.transferLeader() and removePeer() of an unknown member name the members", async () => {
  const ms = await threeMembers();
  try {
    for (
      const call of [
        () => ms[1]!.cluster.transferLeader("n9"),
        () => ms[1]!.cluster.removePeer("n9"),
      ]
    ) {
      await assert.rejects(call(), (e: Error) => {
        assert.ok(e instanceof UnknownMemberError);
        assert.equal(e.message, "no member named n9; members: a, b, c");
        return true;
      });
    }
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.removePeer() removes a member everywhere and deregisters its instances", async () => {
  const ms = await threeMembers();
  try {
    const [a, b, c] = ms as [typeof ms[0], typeof ms[0], typeof ms[0]];
    await c.cluster.propose({
      type: "batch",
      commands: [
        { type: "node.register", name: "c", address: "127.0.0.3", meta: {} },
        { type: "register", instance: instanceSpec({ id: "c:web:80", node: "c" }) },
      ],
    });
    await until("c's instance on a", () => a.store.instancesOfNode("c").length === 1);
    // Asked on a member that may be a follower: forwarded to the leader.
    await b.cluster.removePeer("c");
    await until(
      "c gone from the membership of a and b",
      () => [a, b].every((m) => !m.store.members().some((x) => x.name === "c")),
    );
    assert.deepEqual(a.store.confState().voters.length, 2);
    await until("c's instances deregistered", () => a.store.instancesOfNode("c").length === 0);
    assert.equal(a.store.node("c")?.status, "down");
    // Asked again: nothing to do.
    await assert.rejects(b.cluster.removePeer("c"), UnknownMemberError);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.leave() on the leader hands leadership off, then removes the member", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const rest = ms.filter((m) => m !== leader);
    await leader.cluster.leave();
    await until(
      "the others no longer list the leaver",
      () => rest.every((m) => !m.store.members().some((x) => x.name === leader.name)),
    );
    const next = await leaderOf(rest);
    assert.notEqual(next, leader);
    assert.deepEqual(next.store.confState().voters.length, 2);
    // The cluster still commits without it.
    const p = await rest[0]!.cluster.propose({ type: "noop" });
    assert.ok(p.index > 0);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.leave() on a follower removes only that member", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const follower = ms.find((m) => m !== leader)!;
    await follower.cluster.leave();
    await until(
      "the leader no longer lists the leaver",
      () => !leader.store.members().some((x) => x.name === follower.name),
    );
    assert.equal(leader.cluster.status().role, "leader");
    assert.equal(leader.store.confState().voters.length, 2);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.removePeer() asked twice at once in a two-voter cluster refuses the last voter", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true, voters: 2 });
  const b = await member("b", "127.0.0.2", { join: [a.cluster.address], voters: 2 });
  try {
    await until("two voters", () => a.store.confState().voters.length === 2);
    const leader = await leaderOf([a, b]);
    const other = leader === a ? b : a;
    // Both pass a check made before they queue; only one may go.
    const [first, second] = await Promise.allSettled([
      leader.cluster.removePeer(other.name),
      leader.cluster.removePeer(leader.name),
    ]);
    assert.equal(first.status, "fulfilled");
    assert.equal(second.status, "rejected");
    const e = (second as PromiseRejectedResult).reason as Error;
    assert.ok(e instanceof RejectedError, `${e.name}: ${e.message}`);
    assert.equal(e.message, "cannot remove the last voter");
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("RaftCluster.removePeer() on a leader that loses its leadership before the change commits fails at once", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const rest = ms.filter((m) => m !== leader);
    const removing = leader.cluster.removePeer(rest[0]!.name).then(
      () => undefined,
      (e: Error) => e,
    );
    // The others stop before the change reaches them: it cannot commit, and checkQuorum makes
    // the leader step down.
    await Promise.all(rest.map((m) => m.cluster.close()));
    const e = await removing;
    assert.ok(e instanceof TimeoutError, String(e));
    assert.match(e.message, /^leadership lost while the membership change was pending/);
  } finally {
    await closeAll(ms);
  }
});
