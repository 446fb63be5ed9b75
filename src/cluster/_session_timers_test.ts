import assert from "node:assert/strict";
import { type Command, type SessionSpec, Store } from "../store/mod.ts";
import { SessionTimers } from "./_session_timers.ts";
import { closeAll, leaderOf, threeMembers, until } from "../../test/clusters.ts";

const A = "aaaaaaaa-0000-4000-8000-000000000001";
const B = "bbbbbbbb-0000-4000-8000-000000000002";
const enc = new TextEncoder();

function session(over: Partial<SessionSpec> = {}): SessionSpec {
  return {
    id: A,
    name: "",
    node: "n1",
    nodeChecks: [],
    serviceChecks: [],
    lockDelayMs: 5_000,
    behavior: "release",
    ttl: "10s",
    ttlMs: 10_000,
    ...over,
  };
}

/** A store with node n1, timers on a fake clock whose proposals apply to the store. */
function setup() {
  const store = Store.open(":memory:");
  const clock = { now: 1_000_000 };
  const proposed: Command[] = [];
  const apply = (c: Command) => store.apply(store.appliedIndex() + 1, c);
  apply({ type: "node.register", name: "n1", address: "10.0.0.1", meta: {} });
  const timers = new SessionTimers({
    store,
    now: () => clock.now,
    propose: (c) => {
      proposed.push(c);
      const index = store.appliedIndex() + 1;
      return Promise.resolve({ index, result: store.apply(index, c) });
    },
    log: () => {},
  });
  /** A tick, then the microtasks its proposals settle in. */
  const tick = async () => {
    timers.tick();
    await Promise.resolve();
    await Promise.resolve();
  };
  return { store, clock, proposed, apply, timers, tick };
}

Deno.test("SessionTimers.tick() gives a session 2 × TTL from when the leader first sees it", async () => {
  const { clock, timers, tick, apply } = setup();
  apply({ type: "session.create", session: session() });
  await tick();
  assert.equal(timers.deadline(A), 1_000_000 + 20_000);
  apply({ type: "session.create", session: session({ id: B, ttl: "", ttlMs: 0 }) });
  clock.now += 1;
  await tick();
  assert.equal(timers.deadline(B), undefined, "a session without a TTL has no deadline");
});

Deno.test("SessionTimers ends a session whose TTL passed, stamping the leader's clock", async () => {
  const { store, clock, proposed, apply, tick } = setup();
  apply({ type: "session.create", session: session() });
  apply({ type: "kv.lock", key: "k", value: enc.encode(""), flags: 0, session: A, nowMs: 0 });
  await tick();
  clock.now += 19_999;
  await tick();
  assert.ok(store.sessions.get(A) !== undefined, "not before 2 × TTL");
  clock.now += 1;
  await tick();
  assert.deepEqual(proposed, [{ type: "session.destroy", id: A, nowMs: 1_020_000 }]);
  assert.equal(store.sessions.get(A), undefined);
  assert.equal(store.sessions.holder("k"), null);
  assert.equal(store.sessions.lockDelayUntil("k"), 1_025_000);
});

Deno.test("SessionTimers.renew() restarts the TTL; an unknown session is undefined", async () => {
  const { store, clock, apply, timers, tick } = setup();
  apply({ type: "session.create", session: session() });
  await tick();
  clock.now += 15_000;
  assert.equal(timers.renew(A)?.id, A);
  assert.equal(timers.deadline(A), 1_015_000 + 20_000);
  clock.now += 15_000; // past the first deadline, not the renewed one
  await tick();
  assert.ok(store.sessions.get(A) !== undefined);
  assert.equal(timers.renew(B), undefined);
});

Deno.test("SessionTimers.reset() (a new leader) restarts every TTL in full, never sooner", async () => {
  const { store, clock, timers, tick, apply } = setup();
  apply({ type: "session.create", session: session() });
  await tick();
  clock.now += 19_000; // 1 s before the old leader's deadline
  timers.reset();
  await tick();
  assert.equal(timers.deadline(A), 1_019_000 + 20_000);
  clock.now += 19_999;
  await tick();
  assert.ok(store.sessions.get(A) !== undefined);
  clock.now += 1;
  await tick();
  assert.equal(store.sessions.get(A), undefined);
});

Deno.test("SessionTimers leaves check-bound invalidation to apply: a node marked down proposes nothing", async () => {
  const { store, proposed, apply, tick } = setup();
  apply({ type: "session.create", session: session({ nodeChecks: ["serfHealth"] }) });
  await tick();
  apply({ type: "node.status", name: "n1", status: "down", nowMs: 2_000 });
  assert.equal(store.sessions.get(A), undefined, "ended by the entry itself");
  await tick();
  assert.deepEqual(proposed, []);
});

Deno.test("RaftCluster: a new leader restarts every session TTL in full (a failover never expires a live session early)", async () => {
  // One fake clock for every member (real time plus an offset the test moves).
  let offset = 0;
  const now = () => Date.now() + offset;
  const ms = await threeMembers({ now, nodeTimeoutMs: 3_600_000, nodeMeta: {} });
  try {
    const old = await leaderOf(ms);
    const [next] = ms.filter((m) => m !== old);
    const created = await old.cluster.propose({
      type: "session.create",
      session: session({ node: old.name, nodeChecks: [] }),
    });
    assert.deepEqual(created.result, { ok: true });
    await until("the leader's deadline", () => old.cluster.sessionDeadline(A) !== undefined);
    const oldDeadline = old.cluster.sessionDeadline(A)!;
    offset += 15_000; // 5 s before the old leader would end it
    await old.cluster.transferLeader(next!.name);
    await until("the new leader's deadline", () => next!.cluster.sessionDeadline(A) !== undefined);
    const newDeadline = next!.cluster.sessionDeadline(A)!;
    assert.ok(newDeadline >= oldDeadline + 15_000, "restarted in full on the new leader's clock");
    assert.equal(old.cluster.sessionDeadline(A), undefined, "the old leader forgot its timers");
    offset += 10_000; // past the old leader's deadline, before the new one's
    const live = await next!.cluster.renewSession(A);
    assert.equal(live?.id, A, "still alive on the new leader");
    // The renewal (forwarded from a follower too) restarts it again; past that it ends.
    assert.equal((await old.cluster.renewSession(A))?.id, A);
    offset += 20_001;
    await until("the session ended", () => ms.every((m) => m.store.sessions.get(A) === undefined));
    assert.ok(next!.logs.some((l) => l.includes(`ending session ${A}: its TTL passed`)));
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster: a member that goes silent has its node marked down, and its sessions end, freeing their locks", async () => {
  const ms = await threeMembers({ nodeTimeoutMs: 500, nodeMeta: {} });
  try {
    const leader = await leaderOf(ms);
    const gone = ms.find((m) => m !== leader)!;
    const created = await leader.cluster.propose({
      type: "session.create",
      session: session({ node: gone.name, nodeChecks: ["serfHealth"], ttl: "", ttlMs: 0 }),
    });
    assert.deepEqual(created.result, { ok: true });
    const lock = { type: "kv.lock" as const, key: "k", value: enc.encode(""), flags: 0 };
    assert.equal((await leader.cluster.propose({ ...lock, session: A, nowMs: 0 })).result.ok, true);
    await gone.cluster.close();
    const rest = ms.filter((m) => m !== gone);
    await until(
      "the session ended",
      () => rest.every((m) => m.store.sessions.get(A) === undefined),
    );
    assert.equal(leader.store.node(gone.name)?.status, "down");
    for (const m of rest) assert.equal(m.store.sessions.holder("k"), null);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.renewSession(): a leader cut off from the others does not confirm a renewal", async () => {
  const ms = await threeMembers({ nodeTimeoutMs: 3_600_000, nodeMeta: {} });
  try {
    const leader = await leaderOf(ms);
    const created = await leader.cluster.propose({
      type: "session.create",
      session: session({ node: leader.name, nodeChecks: [] }),
    });
    assert.deepEqual(created.result, { ok: true });
    assert.equal((await leader.cluster.renewSession(A))?.id, A, "confirmed while it leads");
    // Its transport to the others is gone: the others may elect a leader and end the session,
    // and this member, still `role === "leader"` for a moment, must not answer for them.
    for (const m of ms) if (m !== leader) await m.cluster.close();
    assert.equal(leader.cluster.status().role, "leader");
    const e = await leader.cluster.renewSession(A).then(() => undefined, (e) => e);
    assert.ok(e instanceof Error, "the renewal is refused, not confirmed");
    assert.match(e.name, /NoLeaderError|NotLeaderError|TimeoutError/);
  } finally {
    await closeAll(ms);
  }
});
