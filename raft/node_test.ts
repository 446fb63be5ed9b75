import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { bootstrapEntries, decodeConfChange, encodeConfChange } from "./confchange.ts";
import { RawNode } from "./node.ts";
import { MemoryStorage } from "./storage.ts";
import { bytes } from "./testing/helpers.ts";
import { resolveConfig } from "./config.ts";
import { Rng } from "./sim/prng.ts";

/** RawNode's `random` option from the one seeded PRNG. */
function rng(seed = 1): (n: number) => number {
  const r = new Rng(seed);
  return (n) => r.int(n);
}

Deno.test("RawNode: a single-voter node elects itself and commits through ready/advance", () => {
  const storage = new MemoryStorage({ confState: { voters: [1], learners: [] } });
  const n = new RawNode({ id: 1, storage, random: rng() });
  n.campaign();
  ok(n.hasReady());
  let rd = n.ready();
  eq(rd.softState, { lead: 1, raftState: "leader" });
  eq(rd.hardState, { term: 1, vote: 1, commit: 1 });
  eq(rd.entries.map((e) => e.index), [1]);
  eq(rd.committedEntries.map((e) => e.index), [1]);
  eq(rd.mustSync, true);
  throws(() => n.ready(), /before advance/);
  storage.append(rd.entries);
  storage.setHardState(rd.hardState!);
  n.advance();
  eq(n.hasReady(), false);
  n.propose(bytes("x"));
  rd = n.ready();
  eq(rd.entries.map((e) => e.data), [bytes("x")]);
  eq(rd.committedEntries.map((e) => e.data), [bytes("x")]);
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
  n.advance();
  eq(n.status().applied, 2);
  eq(n.status().progress?.get(1)?.match, 2);
  // Reference: ready contract (mod.ts)
});

Deno.test("RawNode: restarting from storage restores term, vote, commit and log", () => {
  const storage = new MemoryStorage({ confState: { voters: [1], learners: [] } });
  const n = new RawNode({ id: 1, storage, random: rng() });
  n.campaign();
  for (let i = 0; i < 3; i++) {
    if (i > 0) n.propose(bytes(`p${i}`));
    const rd = n.ready();
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    n.advance();
  }
  const before = n.status().hardState;
  const again = new RawNode({ id: 1, storage, random: rng(), applied: 1 });
  eq(again.status().hardState, before);
  eq(again.raft.raftLog.lastIndex(), 3);
  // Entries after `applied` are handed out again for application.
  const rd = again.ready();
  eq(rd.committedEntries.map((e) => e.index), [2, 3]);
  eq(rd.softState, undefined, "restarts as follower: no change from the initial soft state");
  // Reference: §5 Figure 2 (persistent state)
});

Deno.test("RawNode: a crash before persisting loses the unpersisted entries", () => {
  const storage = new MemoryStorage({ confState: { voters: [1, 2, 3], learners: [] } });
  const n = new RawNode({ id: 1, storage, random: rng() });
  n.campaign();
  const rd = n.ready(); // Votes requested; hard state not persisted.
  ok(rd.hardState !== undefined);
  const restarted = new RawNode({ id: 1, storage, random: rng() });
  eq(restarted.status().hardState, { term: 0, vote: 0, commit: 0 });
  // Reference: §5 Figure 2 (persist before responding)
});

Deno.test("RawNode: bootstrapEntries start a cluster whose membership lives in the log", () => {
  const { entries, hardState } = bootstrapEntries({ voters: [1, 2, 3], learners: [4] });
  const storage = new MemoryStorage();
  storage.append(entries);
  storage.setHardState(hardState);
  const n = new RawNode({ id: 1, storage, random: rng() });
  const rd = n.ready();
  eq(rd.committedEntries.length, 4);
  let cs = n.status().config;
  for (const e of rd.committedEntries) cs = n.applyConfChange(decodeConfChange(e.data));
  n.advance();
  eq(cs, { voters: [1, 2, 3], learners: [4] });
  // Reference: thesis §4.1
});

Deno.test("RawNode: reportUnreachable and reportSnapshot move the peer back to probing", () => {
  const storage = new MemoryStorage({ confState: { voters: [1, 2], learners: [] } });
  const n = new RawNode({ id: 1, storage, random: rng() });
  n.campaign();
  n.raft.becomeLeader();
  const pr = n.raft.trk.progress.get(2)!;
  pr.becomeReplicate();
  n.reportUnreachable(2);
  eq(pr.state, "probe");
  pr.becomeSnapshot(5);
  n.reportSnapshot(2, "failure");
  eq(pr.state, "probe");
  eq(pr.pendingSnapshot, 0);
  // Reference: §7
});

Deno.test("conf change entries round-trip through encode/decode", () => {
  const cc = { type: "addLearner" as const, nodeId: 12345678901, context: bytes("ctx") };
  eq(decodeConfChange(encodeConfChange(cc)), cc);
  throws(() => decodeConfChange(new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0, 0])), /unknown type/);
  throws(() => decodeConfChange(new Uint8Array(3)), /need at least/);
  // Reference: thesis §4.1
});

Deno.test("resolveConfig() rejects bad configuration with a clear message", () => {
  const storage = new MemoryStorage();
  const base = { id: 1, storage, random: rng() };
  throws(() => resolveConfig({ ...base, id: 0 }), /id must be a positive integer/);
  throws(() => resolveConfig({ ...base, heartbeatTick: 10 }), /heartbeatTick \(10\) must be </);
  throws(
    () => resolveConfig({ ...base, readOnlyOption: "lease-based" }),
    /lease-based requires checkQuorum/,
  );
  throws(() => resolveConfig({ ...base, maxInflightMsgs: 0 }), /maxInflightMsgs/);
  // Reference: configuration validation
});
