import assert from "node:assert/strict";
import { Store } from "../store/mod.ts";
import { instanceSpec } from "../../test/fixtures.ts";
import { closeAll, leaderOf, member, threeMembers, until } from "../../test/clusters.ts";
import { concatBytes } from "../lib/bytes.ts";

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

/** The user snapshot of an empty store: restoring it drops every node row. */
function emptySnapshot(): Uint8Array {
  const s = Store.open(":memory:");
  const src = s.snapshotSource("user");
  const parts: Uint8Array[] = [];
  for (let p = src.next(); p !== null; p = src.next()) parts.push(p);
  s.close();
  return concatBytes(parts);
}

Deno.test("Liveness and Join.watchNode(): a live member whose node row a restore dropped is registered again, with its meta", async () => {
  const ms = await threeMembers({ nodeMeta: { proxy: "true" } });
  try {
    const leader = await leaderOf(ms);
    await until("every node registered", () => ms.every((m) => leader.store.node(m.name)));
    const data = emptySnapshot();
    const id = "r1";
    for (
      const cmd of [
        { type: "restore.begin" as const, id },
        { type: "restore.chunk" as const, id, seq: 0, data },
        { type: "restore.commit" as const, id, chunks: 1, bytes: data.byteLength },
      ]
    ) {
      const p = await leader.cluster.propose(cmd);
      assert.ok(p.result.ok, p.result.error);
    }
    // Every member is alive; the leader puts their node rows back.
    await until(
      "every node registered again",
      () => ms.every((m) => leader.store.node(m.name)?.status === "alive"),
    );
    assert.equal(
      leader.store.node(ms[1]!.name)?.address,
      ms[1]!.cluster.address.replace(/:\d+$/, ""),
    );
    // The leader puts back a bare record; each member then restores its own meta.
    await until(
      "every node's meta back",
      () => ms.every((m) => leader.store.node(m.name)?.meta.proxy === "true"),
    );
  } finally {
    await closeAll(ms);
  }
});

Deno.test("Liveness: a leader that removed itself leaves its instances to the next leader, who deregisters them", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const rest = ms.filter((m) => m !== leader);
    await leader.cluster.propose({
      type: "batch",
      commands: [
        { type: "node.register", name: leader.name, address: "127.0.0.9", meta: {} },
        { type: "register", instance: instanceSpec({ id: "x:web:80", node: leader.name }) },
      ],
    });
    // Removing itself (not leave()): its own cleanup cannot run after the removal.
    await leader.cluster.removePeer(leader.name).catch(() => {});
    await until(
      "the removed leader's instances deregistered",
      () => rest.every((m) => m.store.instancesOfNode(leader.name).length === 0),
    );
    await until(
      "its node down",
      () => rest.every((m) => m.store.node(leader.name)?.status === "down"),
    );
    assert.deepEqual(rest[0]!.store.formerMembers(), [leader.name]);
  } finally {
    await closeAll(ms);
  }
});
