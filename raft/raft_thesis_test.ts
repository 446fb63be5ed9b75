/**
 * Claims of Ongaro's thesis beyond the paper: PreVote (§9.6), CheckQuorum and leader leases
 * (§6.2, §4.2.3), leadership transfer (§3.10), learners (§4.2.1 non-voting members) and
 * ReadIndex (§6.4).
 */
import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import type { Raft } from "./raft.ts";
import { RawCluster } from "./testing/cluster.ts";
import { bytes, ent } from "./testing/helpers.ts";
import { Network, newTestRaft, newTestStorage } from "./testing/network.ts";
import { makeMessage, NONE, ProposalDroppedError } from "./types.ts";

function tickN(r: Raft, n: number): void {
  for (let i = 0; i < n; i++) r.tickFn(r);
}

// ---- PreVote ---------------------------------------------------------------------------------

Deno.test("§9.6 PreVote: a pre-candidate does not increase its term", () => {
  const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]), { preVote: true });
  r.step(makeMessage({ type: "MsgHup", from: 1, to: 1 }));
  eq(r.state, "preCandidate");
  eq(r.term, 0);
  const msgs = r.readMessages();
  eq(msgs.map((m) => [m.type, m.term]), [["MsgPreVote", 1], ["MsgPreVote", 1]]);
  // Reference: thesis §9.6
});

Deno.test("§9.6 PreVote: a granted pre-vote does not change the voter's term or vote", () => {
  const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]), { preVote: true });
  r.step(makeMessage({ type: "MsgPreVote", from: 2, to: 1, term: 1 }));
  eq(r.term, 0);
  eq(r.vote, NONE);
  eq(r.readMessages().map((m) => [m.type, m.term, m.reject]), [["MsgPreVoteResp", 1, false]]);
  // Reference: thesis §9.6
});

Deno.test("§9.6 PreVote: a pre-candidate with a quorum of pre-votes starts a real election", () => {
  const nw = Network.create([undefined, undefined, undefined], { preVote: true });
  nw.hup(1);
  eq(nw.raft(1).state, "leader");
  eq(nw.raft(1).term, 1);
  // Reference: thesis §9.6
});

Deno.test("§9.6 PreVote: a node that cannot win does not disrupt the cluster's term", async (t) => {
  for (const preVote of [true, false]) {
    await t.step(`preVote=${preVote}`, () => {
      const nw = Network.create([undefined, undefined, undefined], { preVote });
      nw.hup(1);
      nw.isolate(3);
      for (let i = 0; i < 5; i++) nw.hup(3);
      eq(nw.raft(3).term, preVote ? 1 : 6);
      nw.recover();
      nw.send(makeMessage({ type: "MsgBeat", from: 1, to: 1 }));
      if (!preVote) {
        // Without PreVote the rejoining node's next vote request deposes the leader.
        nw.hup(3);
      }
      eq(nw.raft(1).term, preVote ? 1 : 7);
      eq(nw.raft(1).state, preVote ? "leader" : "follower");
    });
  }
  // Reference: thesis §9.6
});

Deno.test("§9.6 PreVote: a node with a stale log is refused pre-votes", () => {
  const nw = Network.create([undefined, undefined, undefined], { preVote: true });
  nw.hup(1);
  nw.isolate(3);
  nw.propose(1);
  nw.propose(1);
  nw.recover();
  // Node 1 steps down (for the sake of the test) so that node 2 has no leader either.
  nw.raft(1).becomeFollower(nw.raft(1).term, NONE);
  nw.raft(2).becomeFollower(nw.raft(2).term, NONE);
  nw.hup(3);
  eq(nw.raft(3).state, "follower");
  eq(nw.raft(3).term, 1);
  // Reference: thesis §9.6, §5.4.1
});

// ---- CheckQuorum -----------------------------------------------------------------------------

Deno.test("§6.2 CheckQuorum: a leader that hears from no quorum within an election timeout steps down", () => {
  const r = newTestRaft(1, 5, 1, newTestStorage([1, 2, 3]), { checkQuorum: true });
  r.becomeCandidate();
  r.becomeLeader();
  tickN(r, r.electionTimeout - 1);
  eq(r.state, "leader");
  tickN(r, 1);
  eq(r.state, "follower", "no peer answered during the election timeout");
  // Reference: thesis §6.2
});

Deno.test("§6.2 CheckQuorum: an isolated leader steps down after an election timeout", () => {
  const nw = Network.create([undefined, undefined, undefined], { checkQuorum: true });
  nw.hup(1);
  eq(nw.raft(1).state, "leader");
  nw.isolate(1);
  const r = nw.raft(1);
  for (let i = 0; i < 2 * r.electionTimeout; i++) {
    r.tickFn(r);
    nw.send(...nw.filter(r.readMessages()));
  }
  eq(r.state, "follower");
  // Reference: thesis §6.2
});

Deno.test("§6.2 CheckQuorum: a leader in contact with a quorum stays leader", () => {
  const nw = Network.create([undefined, undefined, undefined], { checkQuorum: true });
  nw.hup(1);
  nw.isolate(3);
  const r = nw.raft(1);
  for (let i = 0; i < 5 * r.electionTimeout; i++) {
    r.tickFn(r);
    nw.send(...r.readMessages());
  }
  eq(r.state, "leader");
  // Reference: thesis §6.2
});

Deno.test("§4.2.3 leader lease: a follower that heard from its leader ignores a higher-term vote", () => {
  const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]), { checkQuorum: true });
  r.becomeFollower(1, 2);
  r.step(makeMessage({ type: "MsgVote", from: 3, to: 1, term: 5, index: 10, logTerm: 5 }));
  eq(r.term, 1, "term not disrupted");
  eq(r.readMessages(), []);
  // After the lease expires the vote is considered.
  tickN(r, r.electionTimeout);
  r.readMessages();
  r.becomeFollower(1, 2);
  r.electionElapsed = r.electionTimeout;
  r.step(makeMessage({ type: "MsgVote", from: 3, to: 1, term: 5, index: 10, logTerm: 5 }));
  eq(r.term, 5);
  eq(r.vote, 3);
  // Reference: thesis §4.2.3, §6.2
});

// ---- Leadership transfer ---------------------------------------------------------------------

Deno.test("§3.10 leadership transfer to an up-to-date follower happens at once", () => {
  const nw = Network.create([undefined, undefined, undefined]);
  nw.hup(1);
  nw.send(makeMessage({ type: "MsgTransferLeader", from: 2, to: 1 }));
  eq(nw.raft(1).state, "follower");
  eq(nw.raft(2).state, "leader");
  eq(nw.raft(2).term, 2);
  // Reference: thesis §3.10
});

Deno.test("§3.10 leadership transfer bypasses the leader lease and PreVote", () => {
  const nw = Network.create([undefined, undefined, undefined], {
    checkQuorum: true,
    preVote: true,
  });
  nw.hup(1);
  nw.send(makeMessage({ type: "MsgTransferLeader", from: 3, to: 1 }));
  eq(nw.raft(3).state, "leader");
  // Reference: thesis §3.10
});

Deno.test("§3.10 the leader refuses proposals while a transfer is in flight", () => {
  const nw = Network.create([undefined, undefined, undefined]);
  nw.hup(1);
  nw.isolate(3);
  nw.propose(1);
  nw.send(makeMessage({ type: "MsgTransferLeader", from: 3, to: 1 }));
  const r = nw.raft(1);
  eq(r.leadTransferee, 3);
  throws(
    () =>
      r.step(makeMessage({ type: "MsgProp", from: 1, to: 1, entries: [ent(0, 0, bytes("x"))] })),
    ProposalDroppedError,
  );
  // Reference: thesis §3.10
});

Deno.test("§3.10 a transfer that does not finish within an election timeout is aborted", () => {
  const nw = Network.create([undefined, undefined, undefined]);
  nw.hup(1);
  nw.isolate(3);
  nw.send(makeMessage({ type: "MsgTransferLeader", from: 3, to: 1 }));
  const r = nw.raft(1);
  eq(r.leadTransferee, 3);
  for (let i = 0; i < r.electionTimeout; i++) r.tickFn(r);
  eq(r.leadTransferee, NONE);
  eq(r.state, "leader");
  // Reference: thesis §3.10
});

Deno.test("§3.10 transferring leadership to itself or to a learner does nothing", () => {
  const s = newTestStorage([1, 2], [3]);
  const r = newTestRaft(1, 10, 1, s);
  r.becomeCandidate();
  r.becomeLeader();
  r.step(makeMessage({ type: "MsgTransferLeader", from: 1, to: 1 }));
  eq(r.leadTransferee, NONE);
  r.step(makeMessage({ type: "MsgTransferLeader", from: 3, to: 1 }));
  eq(r.leadTransferee, NONE);
  // Reference: thesis §3.10
});

// ---- Learners --------------------------------------------------------------------------------

Deno.test("§4.2.1 a learner does not start an election", () => {
  const r = newTestRaft(2, 10, 1, newTestStorage([1], [2]));
  ok(r.isLearner);
  tickN(r, 100);
  eq(r.state, "follower");
  eq(r.readMessages(), []);
  // Reference: thesis §4.2.1
});

Deno.test("§4.2.1 a learner receives and applies the log", () => {
  const c = RawCluster.create([1, 2], {}, [3]);
  c.elect(1);
  c.get(1).raw.propose(bytes("hello"));
  c.stabilize();
  eq(c.appliedData(3), ["hello"]);
  // Reference: thesis §4.2.1
});

Deno.test("§4.2.1 a learner's vote does not count toward a quorum", () => {
  const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3], [4]));
  r.step(makeMessage({ type: "MsgHup", from: 1, to: 1 }));
  r.readMessages();
  r.step(makeMessage({ type: "MsgVoteResp", from: 4, to: 1, term: r.term }));
  eq(r.state, "candidate", "learner's grant is ignored");
  r.step(makeMessage({ type: "MsgVoteResp", from: 2, to: 1, term: r.term }));
  eq(r.state, "leader");
  // Reference: thesis §4.2.1
});

Deno.test("§4.2.1 a learner promoted by addNode can campaign", () => {
  const r = newTestRaft(2, 10, 1, newTestStorage([1], [2]));
  r.applyConfChange({ type: "addNode", nodeId: 2 });
  ok(!r.isLearner);
  r.step(makeMessage({ type: "MsgHup", from: 2, to: 2 }));
  eq(r.state, "candidate");
  // Reference: thesis §4.2.1
});

// ---- ReadIndex -------------------------------------------------------------------------------

Deno.test("§6.4 ReadIndex (safe): the leader answers after a heartbeat round with its commit index", () => {
  const c = RawCluster.create([1, 2, 3]);
  c.elect(1);
  c.get(1).raw.propose(bytes("w"));
  c.stabilize();
  const ctx = bytes("read-1");
  c.get(1).raw.readIndex(ctx);
  c.stabilize();
  const rs = c.get(1).readStates;
  eq(rs.length, 1);
  eq(rs[0]!.index, 2);
  eq(rs[0]!.requestCtx, ctx);
  // Reference: thesis §6.4
});

Deno.test("§6.4 ReadIndex (safe): no quorum of heartbeat acks, no read state", () => {
  const c = RawCluster.create([1, 2, 3]);
  c.elect(1);
  c.isolate(1);
  c.get(1).raw.readIndex(bytes("r"));
  c.stabilize();
  eq(c.get(1).readStates, []);
  // Reference: thesis §6.4
});

Deno.test("§6.4 ReadIndex from a follower is forwarded and answered with the leader's commit", () => {
  const c = RawCluster.create([1, 2, 3]);
  c.elect(1);
  c.get(1).raw.propose(bytes("w"));
  c.stabilize();
  c.get(2).raw.readIndex(bytes("f"));
  c.stabilize();
  eq(c.get(2).readStates.map((r) => r.index), [2]);
  // Reference: thesis §6.4
});

Deno.test("§6.4 ReadIndex waits until the new leader commits an entry of its term", () => {
  const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
  r.becomeCandidate();
  r.becomeLeader();
  r.readMessages();
  r.step(makeMessage({ type: "MsgReadIndex", from: 1, to: 1, context: bytes("early") }));
  eq(r.readStates.length, 0);
  eq(r.pendingReadIndexMessages.length, 1);
  // The no-op commits: the request proceeds to the heartbeat round.
  r.step(makeMessage({ type: "MsgAppResp", from: 2, to: 1, term: r.term, index: 1 }));
  const hb = r.readMessages().filter((m) => m.type === "MsgHeartbeat");
  ok(hb.length > 0 && hb.every((m) => m.context !== undefined));
  r.step(
    makeMessage({
      type: "MsgHeartbeatResp",
      from: 2,
      to: 1,
      term: r.term,
      context: bytes("early"),
    }),
  );
  eq(r.readStates.map((s) => s.index), [1]);
  // Reference: thesis §6.4 step 1
});

Deno.test("§6.4.1 ReadIndex (lease-based) answers without a heartbeat round", () => {
  const c = RawCluster.create([1, 2, 3], { readOnlyOption: "lease-based", checkQuorum: true });
  c.elect(1);
  c.isolate(1);
  c.get(1).raw.readIndex(bytes("lease"));
  c.stabilize();
  eq(c.get(1).readStates.map((r) => r.index), [1]);
  // Reference: thesis §6.4.1
});

Deno.test("§6.4 ReadIndex on a single-voter cluster is answered at once", () => {
  const c = RawCluster.create([1]);
  c.elect(1);
  c.get(1).raw.readIndex(bytes("solo"));
  c.stabilize();
  eq(c.get(1).readStates.map((r) => r.index), [1]);
  // Reference: thesis §6.4
});
