import assert from "node:assert/strict";
import { closeAll, leaderOf, member, threeMembers, until } from "../../test/clusters.ts";

Deno.test("Liveness: the leader marks a silent member's node down and registers it if missing", async () => {
  const ms = await threeMembers({ nodeTimeoutMs: 300 });
  try {
    const leader = await leaderOf(ms);
    const gone = ms.find((m) => m !== leader)!;
    await gone.cluster.close();
    await until("gone marked down", () => leader.store.node(gone.name)?.status === "down");
    assert.ok(
      leader.logs.some((l) => l.startsWith(`cluster: no contact with ${gone.name} for `)),
      leader.logs.join("\n"),
    );
    // Registered from the member table: its cluster address without the port.
    assert.equal(leader.store.node(gone.name)?.address, gone.cluster.address.replace(/:\d+$/, ""));
  } finally {
    await closeAll(ms);
  }
});

Deno.test("Liveness: a silent IPv6 member's node is registered with its bare address (no brackets, no port)", async () => {
  // b stays a learner (voters: 1), so a keeps its quorum when b goes silent.
  const a = await member("a", "::1", { bootstrap: true, nodeTimeoutMs: 300, voters: 1 });
  const b = await member("b", "::1", { join: [a.cluster.address], nodeTimeoutMs: 300 });
  try {
    assert.match(b.cluster.address, /^\[::1\]:\d+$/);
    await until("b is a member", () => a.store.members().some((m) => m.name === "b"));
    await until("b caught up", () => b.store.members().length === 2);
    await b.cluster.close();
    await until("b marked down", () => a.store.node("b")?.status === "down");
    assert.equal(a.store.node("b")?.address, "::1");
  } finally {
    await closeAll([a, b]);
  }
});
