import assert from "node:assert/strict";
import { closeAll, member, rawPeer, threeMembers } from "../../test/clusters.ts";
import { waitFor as until } from "../../test/wait.ts";

const enc = new TextEncoder();

Deno.test("RaftCluster: members join as learners, are promoted, and replicate a follower's proposal", async () => {
  const ms = await threeMembers();
  try {
    const follower = ms.find((m) => m.cluster.status().role === "follower")!;
    const p = await follower.cluster.propose({
      type: "kv.put",
      key: "k",
      value: enc.encode("v"),
      flags: 0,
    });
    assert.equal(p.result.ok, true);
    // The proposer has applied it before answering (read-your-writes on any member).
    assert.equal(follower.store.kvGet("k")?.modifyIndex, p.index);
    await until("replicated everywhere", () => ms.every((m) => m.store.kvGet("k") !== undefined));
    assert.deepEqual(ms[0]!.store.members().map((m) => m.name).sort(), ["a", "b", "c"]);
    const idx = await ms[2]!.cluster.readBarrier();
    assert.ok(idx >= p.index);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster: malformed raft frames are dropped with a log line and the member keeps working", async () => {
  // Plain TCP: a bare Transport speaks to the members.
  const ms = await threeMembers({ tls: false });
  const target = ms[1]!;
  const id = target.cluster.identity()!;
  const rogue = await rawPeer("127.0.0.9", { clusterId: id.clusterId, nodeId: 99 });
  try {
    const bad: unknown[] = [
      { t: "raft", m: { type: "MsgApp", from: "x" } },
      { t: "raft", m: null },
      { t: "raft", m: { type: "MsgHeartbeat", from: 99, to: id.id, term: -1 } },
      { t: "snapChunk", key: "k", data: "not bytes" },
      { t: "nonsense" },
      42,
    ];
    for (const b of bad) assert.equal(rogue.send(target.cluster.address, b), true);
    // A non-member may not propose, even with the right cluster id.
    await assert.rejects(
      rogue.request(target.cluster.address, { t: "propose", id: "r", cmd: { type: "noop" } }),
      /members only|not the leader/,
    );
    await until(
      "the drop logged",
      () => target.logs.some((l) => l.includes("dropped a malformed raft message")),
    );
    // Requests it cannot act on are refused, not crashed on.
    await assert.rejects(
      rogue.request(target.cluster.address, { t: "remove", id: "x" }),
      /malformed/,
    );
    await assert.rejects(rogue.request(target.cluster.address, { t: "what" }), /unknown request/);
    const p = await target.cluster.propose({
      type: "kv.put",
      key: "after",
      value: enc.encode("1"),
      flags: 0,
    });
    assert.equal(p.result.ok, true);
  } finally {
    await rogue.close();
    await closeAll(ms);
  }
});

Deno.test("RaftCluster: a proposal retried with the same request id is applied once", async () => {
  // Plain TCP: a bare Transport speaks to the members.
  const ms = await threeMembers({ tls: false });
  await until("a leader", () => ms.some((m) => m.cluster.status().role === "leader"));
  // The probe speaks as a follower forwarding a proposal (members only may propose).
  const follower = ms.find((m) => m.cluster.status().role !== "leader")!;
  const probe = await rawPeer("127.0.0.10", {
    clusterId: ms[0]!.cluster.identity()!.clusterId,
    nodeId: follower.cluster.identity()!.id,
  });
  try {
    await until("a leader", () => ms.some((m) => m.cluster.status().role === "leader"));
    const leader = ms.find((m) => m.cluster.status().role === "leader")!;
    const cmd = { type: "kv.put", key: "once", value: enc.encode("1"), flags: 0, cas: 0 };
    const first = await probe.request(leader.cluster.address, {
      t: "propose",
      id: "req-42",
      cmd,
    }) as {
      index: number;
      result: { ok: boolean };
    };
    const retry = await probe.request(leader.cluster.address, {
      t: "propose",
      id: "req-42",
      cmd,
    }) as {
      index: number;
      result: { ok: boolean };
    };
    // Applied once: the retry reports the first outcome (a second CAS at 0 would have failed).
    assert.equal(first.result.ok, true);
    assert.equal(retry.result.ok, true);
    assert.equal(leader.store.kvGet("once")?.modifyIndex, first.index);
  } finally {
    await probe.close();
    await closeAll(ms);
  }
});

Deno.test("RaftCluster: a member that is not in a cluster refuses proposals with NoLeaderError", async () => {
  const m = await member("lonely", "127.0.0.1", {});
  try {
    await assert.rejects(m.cluster.propose({ type: "noop" }), { name: "NoLeaderError" });
    assert.equal(m.cluster.status().role, "standalone");
  } finally {
    await m.cluster.close();
    m.store.close();
  }
});
