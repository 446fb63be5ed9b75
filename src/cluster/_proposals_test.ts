import assert from "node:assert/strict";
import { PROPOSAL_BYTES_MAX, withLeaderTime } from "./_proposals.ts";
import { NoLeaderError, RejectedError, TimeoutError } from "./errors.ts";
import { CHECK_TIMED_TYPES, type Command, validateCommand } from "../store/mod.ts";
import { apiInstanceSpec, registeredCheck } from "../../test/fixtures.ts";
import { RemoteError } from "./transport.ts";
import {
  closeAll,
  leaderOf,
  member,
  rawPeer,
  type TestMember,
  threeMembers,
  until,
} from "../../test/clusters.ts";

const enc = new TextEncoder();

Deno.test("RaftCluster.propose() of an oversized command fails at once with RejectedError, on leader and follower", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const follower = ms.find((m) => m !== leader)!;
    const big = {
      type: "kv.put" as const,
      key: "big",
      value: new Uint8Array(PROPOSAL_BYTES_MAX + 1),
      flags: 0,
    };
    for (const m of [leader, follower]) {
      await assert.rejects(m.cluster.propose(big), (e: Error) => {
        // Not retried until the deadline and reported as "may or may not have taken effect".
        assert.ok(e instanceof RejectedError, `${e.name}: ${e.message}`);
        assert.match(e.message, /over 4194304/);
        return true;
      });
    }
    assert.equal(leader.store.kvGet("big"), undefined);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.propose() on a follower retries on the new leader after a transfer", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const [f1, f2] = ms.filter((m) => m !== leader) as [typeof leader, typeof leader];
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      writes.push(
        f1.cluster.propose({ type: "kv.put", key: `k${i}`, value: enc.encode("v"), flags: 0 }),
      );
    }
    await leader.cluster.transferLeader(f2.name);
    for (let i = 20; i < 40; i++) {
      writes.push(
        f1.cluster.propose({ type: "kv.put", key: `k${i}`, value: enc.encode("v"), flags: 0 }),
      );
    }
    await Promise.all(writes);
    for (let i = 0; i < 40; i++) assert.ok(f1.store.kvGet(`k${i}`) !== undefined, `k${i}`);
    await until("all on the new leader", () => f2.store.kvGet("k39") !== undefined);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.readBarrier() on a follower covers a write committed through the leader", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const follower = ms.find((m) => m !== leader)!;
    const p = await leader.cluster.propose({
      type: "kv.put",
      key: "rb",
      value: enc.encode("1"),
      flags: 0,
    });
    const idx = await follower.cluster.readBarrier();
    assert.ok(idx >= p.index);
    assert.ok(follower.store.kvGet("rb") !== undefined);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster: the leader refuses a forwarded oversized proposal with the rejected code", async () => {
  // Plain TCP: a bare Transport speaks to the members.
  const ms = await threeMembers({ tls: false });
  const leader = await leaderOf(ms);
  const follower = ms.find((m) => m !== leader)!;
  // Speaks as the follower forwarding a proposal that skipped its own size check.
  const probe = await rawPeer("127.0.0.10", {
    clusterId: leader.cluster.identity()!.clusterId,
    nodeId: follower.cluster.identity()!.id,
  });
  try {
    const cmd = { type: "kv.put", key: "big", value: new Uint8Array(PROPOSAL_BYTES_MAX), flags: 0 };
    const e = await probe.request(leader.cluster.address, { t: "propose", id: "r", cmd }).catch(
      (e) => e,
    );
    assert.ok(e instanceof RemoteError);
    assert.equal(e.code, "rejected");
    assert.match(e.message, /over 4194304/);
  } finally {
    await probe.close();
    await closeAll(ms);
  }
});

Deno.test("withLeaderTime() stamps nowMs of the commands that carry a time, in batches too", () => {
  const lock = {
    type: "kv.lock" as const,
    key: "k",
    value: new Uint8Array(),
    flags: 0,
    session: "aaaaaaaa-0000-4000-8000-000000000001",
    nowMs: 1,
  };
  assert.deepEqual(withLeaderTime(lock, 5), { ...lock, nowMs: 5 });
  assert.deepEqual(withLeaderTime({ type: "batch", commands: [lock] }, 5), {
    type: "batch",
    commands: [{ ...lock, nowMs: 5 }],
  });
  const put = { type: "kv.put" as const, key: "k", value: new Uint8Array(), flags: 0 };
  assert.equal(withLeaderTime(put, 5), put);
});

Deno.test("withLeaderTime() stamps every command that can fail a check; validateCommand keeps it", () => {
  const failing: Command[] = [
    { type: "node.register", name: "n1", address: "10.0.0.1", meta: {} },
    { type: "node.status", name: "n1", status: "down" },
    { type: "register", instance: apiInstanceSpec() },
    { type: "deregister", id: "x" },
    { type: "check", id: "x", status: "critical", output: "" },
    { type: "check.register", node: "n1", serviceId: null, check: registeredCheck("c") },
    { type: "check.update", node: "n1", id: "c", status: "critical", output: "" },
    { type: "check.deregister", node: "n1", id: "c" },
    { type: "docker", id: "x", state: "unhealthy", detail: "" },
  ];
  assert.deepEqual(failing.map((c) => c.type).sort(), [...CHECK_TIMED_TYPES].sort());
  for (const c of failing) {
    const stamped = withLeaderTime(c, 5);
    assert.deepEqual(stamped, { ...c, nowMs: 5 }, c.type);
    assert.deepEqual(validateCommand(JSON.parse(JSON.stringify(stamped))), stamped, c.type);
  }
  assert.throws(
    () => validateCommand({ type: "node.status", name: "n1", status: "down", nowMs: -1 }),
    /nowMs/,
  );
});

Deno.test("RaftCluster.propose() from a member whose clock runs an hour ahead: the lock-delay is the leader's", async () => {
  const ahead = () => Date.now() + 3_600_000;
  const a = await member("a", "127.0.0.1", { bootstrap: true, nodeMeta: {} });
  const ms: TestMember[] = [a];
  try {
    for (const [name, host] of [["b", "127.0.0.2"], ["c", "127.0.0.3"]] as const) {
      ms.push(await member(name, host, { join: [a.cluster.address], now: ahead, nodeMeta: {} }));
    }
    await until("three voters", () => ms.every((m) => m.store.confState().voters.length === 3));
    if ((await leaderOf(ms)) !== a) await a.cluster.transferLeader("a");
    await until("a leads", () => a.cluster.status().role === "leader");
    const b = ms[1]!;
    const id = "aaaaaaaa-0000-4000-8000-000000000001";
    await b.cluster.propose({
      type: "session.create",
      session: {
        id,
        name: "",
        node: "b",
        nodeChecks: [],
        serviceChecks: [],
        lockDelayMs: 10_000,
        behavior: "release",
        ttl: "",
        ttlMs: 0,
      },
    });
    const lock = { type: "kv.lock" as const, key: "k", value: enc.encode(""), flags: 0 };
    assert.equal(
      (await b.cluster.propose({ ...lock, session: id, nowMs: ahead() })).result.ok,
      true,
    );
    const before = Date.now();
    await b.cluster.propose({ type: "session.destroy", id, nowMs: ahead() });
    const until_ = b.store.sessions.lockDelayUntil("k");
    assert.ok(until_ >= before + 10_000 && until_ <= Date.now() + 10_000, `${until_ - before}`);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.propose(): an entry appended by a leader that then lost its leadership ends in TimeoutError, not NoLeaderError", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    // The leader appends the entry but cannot commit it; checkQuorum then makes it step down
    // and no leader is elected again before the deadline. The entry may still commit under a
    // later leader, so the proposer must not hear "not done".
    for (const m of ms) if (m !== leader) await m.cluster.close();
    const e = await leader.cluster.propose({
      type: "kv.put",
      key: "maybe",
      value: enc.encode("1"),
      flags: 0,
    }).catch((e) => e);
    assert.ok(e instanceof TimeoutError, `${e.name}: ${e.message}`);
    assert.match(e.message, /may or may not have taken effect/);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.propose() with no leader ever asked ends in NoLeaderError", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const follower = ms.find((m) => m !== leader)!;
    // Only the follower is left: the old leader cannot be reached, nothing is ever sent.
    for (const m of ms) if (m !== follower) await m.cluster.close();
    const e = await follower.cluster.propose({
      type: "kv.put",
      key: "never",
      value: enc.encode("1"),
      flags: 0,
    }).catch((e) => e);
    assert.ok(e instanceof NoLeaderError, `${e.name}: ${e.message}`);
  } finally {
    await closeAll(ms);
  }
});
