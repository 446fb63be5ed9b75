/**
 * Hard scenarios, one per test: the paper's Figures 7 and 8, dueling candidates, stale leaders,
 * disruptive rejoins, membership and leadership changes, snapshots and learners.
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import type { Raft } from "./raft.ts";
import { RawCluster } from "./testing/cluster.ts";
import { bytes, ent } from "./testing/helpers.ts";
import { BLACK_HOLE, Network, newTestRaft, newTestStorage } from "./testing/network.ts";
import type { Entry } from "./types.ts";
import { makeMessage } from "./types.ts";

function terms(...ts: number[]): Entry[] {
  return ts.map((t, i) => ent(t, i + 1));
}

function logTerms(r: Raft): number[] {
  return r.raftLog.allEntries().map((e) => e.term);
}

Deno.test("Figure 7: a new leader brings every follower log shape (a)-(f) to match its own", async (t) => {
  const leaderLog = terms(1, 1, 1, 4, 4, 5, 5, 6, 6, 6);
  const term = 8;
  const followers: Record<string, Entry[]> = {
    a: terms(1, 1, 1, 4, 4, 5, 5, 6, 6),
    b: terms(1, 1, 1, 4),
    c: terms(1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6),
    d: terms(1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7),
    e: terms(1, 1, 1, 4, 4, 4, 4),
    f: terms(1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3),
  };
  for (const [name, flog] of Object.entries(followers)) {
    await t.step(`follower (${name})`, () => {
      const ls = newTestStorage([1, 2, 3]);
      ls.append(leaderLog);
      const lead = newTestRaft(1, 10, 1, ls);
      lead.loadState({ term, vote: 0, commit: lead.raftLog.lastIndex() });
      const fs = newTestStorage([1, 2, 3]);
      fs.append(flog);
      const follower = newTestRaft(2, 10, 1, fs);
      follower.loadState({ term: term - 1, vote: 0, commit: 0 });
      // The follower may have a longer log, so the leader needs node 3's vote.
      const nw = Network.create([lead, follower, BLACK_HOLE]);
      nw.hup(1);
      nw.send(makeMessage({ type: "MsgVoteResp", from: 3, to: 1, term: term + 1 }));
      eq(lead.state, "leader");
      nw.propose(1, new Uint8Array(0));
      eq(logTerms(follower), logTerms(lead));
      eq(follower.raftLog.committed, lead.raftLog.committed);
    });
  }
  // Reference: §5.3, Figure 7
});

Deno.test("Figure 8: an entry from an older term is never committed by counting replicas", () => {
  // (c) S1 leads term 4 with [1:1, 2:2, 3:4]; S2 and S3 hold the term-2 entry; S5 holds a
  // conflicting term-3 entry at index 2.
  const logs: Entry[][] = [terms(1, 2, 4), terms(1, 2), terms(1, 2), terms(1), terms(1, 3)];
  const rs = logs.map((log, i) => {
    const s = newTestStorage([1, 2, 3, 4, 5]);
    s.append(log);
    const r = newTestRaft(i + 1, 10, 1, s);
    r.loadState({ term: 4, vote: 0, commit: 1 });
    return r;
  });
  const s1 = rs[0]!, s5 = rs[4]!;
  s1.becomeCandidate(); // term 5 (the figure's term 4 plus our election)
  s1.becomeLeader();
  s1.readMessages();
  // The term-2 entry at index 2 reaches a majority (S1, S2, S3)...
  for (const from of [2, 3]) {
    s1.step(makeMessage({ type: "MsgAppResp", from, to: 1, term: s1.term, index: 2 }));
  }
  // ...but S1 must not count it committed: it is not from S1's term.
  eq(s1.raftLog.committed, 1);
  // (d) Indeed S5 can still be elected (votes of S2, S3, S4) and overwrite index 2.
  const nw = Network.create([BLACK_HOLE, rs[1]!, rs[2]!, rs[3]!, s5]);
  s5.becomeFollower(5, 0);
  nw.hup(5);
  eq(s5.state, "leader");
  nw.propose(5);
  for (const r of rs.slice(1)) eq(r.raftLog.term(2), 3);
  // Reference: §5.4.2, Figure 8
});

Deno.test("Figure 8 (e): once a current-term entry is on a majority, both commit and S5 cannot win", () => {
  const logs: Entry[][] = [terms(1, 2), terms(1, 2), terms(1, 2), terms(1), terms(1, 3)];
  const rs = logs.map((log, i) => {
    const s = newTestStorage([1, 2, 3, 4, 5]);
    s.append(log);
    const r = newTestRaft(i + 1, 10, 1, s);
    r.loadState({ term: 4, vote: 0, commit: 1 });
    return r;
  });
  const nw = Network.create(rs);
  nw.isolate(5);
  nw.isolate(4);
  nw.hup(1);
  eq(rs[0]!.state, "leader");
  eq(rs[0]!.raftLog.committed, 3, "no-op of the new term commits index 2 with it");
  nw.recover();
  nw.isolate(1);
  rs[4]!.becomeFollower(rs[4]!.term + 1, 0);
  nw.hup(5);
  ok(rs[4]!.state !== "leader", "S5's log is behind the committed entry");
  // Reference: §5.4.2, Figure 8
});

Deno.test("dueling candidates: a candidate with a short log disrupts but cannot win", () => {
  const nw = Network.create([undefined, undefined, undefined]);
  nw.cut(1, 3);
  nw.hup(1);
  nw.hup(3);
  eq(nw.raft(1).state, "leader");
  eq(nw.raft(3).state, "candidate", "3 gets no vote: 2 already voted in term 1");
  nw.recover();
  // 3 campaigns at term 2: its higher term deposes 1, but 1 and 2 reject its short log.
  nw.hup(3);
  for (const id of [1, 2, 3]) {
    eq(nw.raft(id).state, "follower", `node ${id}`);
    eq(nw.raft(id).term, 2, `node ${id}`);
  }
  eq(nw.raft(1).raftLog.committed, 1);
  eq(nw.raft(3).raftLog.lastIndex(), 0);
  // Reference: §5.2
});

Deno.test("dueling candidates with PreVote: the short-log node cannot even bump terms", () => {
  const nw = Network.create([undefined, undefined, undefined], { preVote: true });
  nw.cut(1, 3);
  nw.hup(1);
  nw.hup(3);
  nw.recover();
  nw.hup(3);
  eq(nw.raft(1).state, "leader");
  eq(nw.raft(1).term, 1);
  eq(nw.raft(3).state, "follower");
  // Reference: thesis §9.6
});

Deno.test("an old leader partitioned away cannot commit, and steps down under CheckQuorum", () => {
  const c = RawCluster.create([1, 2, 3, 4, 5], { checkQuorum: true });
  c.elect(1);
  for (const a of [1, 2]) {
    for (const b of [3, 4, 5]) {
      c.cuts.add(`${a}->${b}`);
      c.cuts.add(`${b}->${a}`);
    }
  }
  const old = c.get(1);
  old.raw.propose(bytes("lost"));
  c.stabilize();
  const committedBefore = old.raw.raft.raftLog.committed;
  // CheckQuorum: within an election timeout the old leader notices and steps down, and the
  // majority side (whose leader lease expired) elects a new leader.
  c.tick(2 * old.raw.raft.electionTimeout + 2);
  eq(old.raw.raft.state, "follower");
  eq(old.raw.raft.raftLog.committed, committedBefore, "minority leader committed nothing");
  const lead = c.leader();
  ok(lead !== undefined && [3, 4, 5].includes(lead.id));
  lead.raw.propose(bytes("kept"));
  c.stabilize();
  c.heal();
  c.tick(3);
  eq(c.appliedData(1), ["kept"]);
  eq(c.appliedData(2), ["kept"]);
  // Reference: §5.4, §8, thesis §6.2
});

Deno.test("a rejoining node does not disrupt a stable leader under PreVote and CheckQuorum", () => {
  const c = RawCluster.create([1, 2, 3], { preVote: true, checkQuorum: true });
  c.elect(1);
  c.isolate(3);
  c.tick(100); // Node 3 times out again and again while partitioned.
  eq(c.get(3).raw.raft.term, 1, "pre-elections never bump the term");
  c.heal();
  c.tick(5);
  eq(c.get(1).raw.raft.state, "leader");
  eq(c.get(1).raw.raft.term, 1);
  eq(c.get(3).raw.raft.lead, 1);
  // Reference: thesis §9.6, §4.2.3
});

Deno.test("a follower with a higher term rejoining a CheckQuorum cluster is brought back", () => {
  // Without PreVote the isolated node bumps its term; the leader ignores its votes (lease) but
  // learns the term from its reply to a heartbeat and a new election restores liveness.
  const c = RawCluster.create([1, 2, 3], { checkQuorum: true });
  c.elect(1);
  c.isolate(3);
  c.tick(60);
  ok(c.get(3).raw.raft.term > 1);
  c.heal();
  c.tick(60);
  const lead = c.leader();
  ok(lead !== undefined);
  lead.raw.propose(bytes("after"));
  c.stabilize();
  eq(c.appliedData(3), ["after"]);
  // Reference: thesis §6.2, §9.6
});

Deno.test("removing the leader: it steps down once the change applies and the rest elect a leader", () => {
  const c = RawCluster.create([1, 2, 3]);
  c.elect(1);
  c.get(1).raw.propose(bytes("before"));
  c.stabilize();
  c.get(1).raw.proposeConfChange({ type: "removeNode", nodeId: 1 });
  c.stabilize();
  eq(c.get(1).raw.raft.state, "follower");
  eq(c.get(2).confState.voters, [2, 3]);
  c.members.delete(1);
  c.tick(30);
  const lead = c.leader();
  ok(lead !== undefined && lead.id !== 1);
  lead.raw.propose(bytes("after"));
  c.stabilize();
  eq(c.appliedData(2), ["before", "after"]);
  eq(c.appliedData(3), ["before", "after"]);
  // Reference: §6, thesis §4.2.2
});

Deno.test("transferring leadership to a lagging follower first catches it up", () => {
  const c = RawCluster.create([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  for (let i = 0; i < 5; i++) c.get(1).raw.propose(bytes(`w${i}`));
  c.stabilize();
  c.heal();
  c.get(1).raw.transferLeader(3);
  c.stabilize();
  eq(c.get(3).raw.raft.state, "leader");
  eq(c.get(1).raw.raft.state, "follower");
  eq(c.get(3).raw.raft.raftLog.lastIndex() >= 6, true);
  eq(c.appliedData(3).slice(0, 5), ["w0", "w1", "w2", "w3", "w4"]);
  // Reference: thesis §3.10
});

Deno.test("a follower behind the leader's first index catches up by snapshot", () => {
  const c = RawCluster.create([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  for (let i = 0; i < 10; i++) c.get(1).raw.propose(bytes(`w${i}`));
  c.stabilize();
  c.compact(1, bytes("state@11"));
  eq(c.get(1).storage.firstIndex(), 12);
  c.heal();
  c.tick(2);
  const f = c.get(3);
  eq(f.storage.snapshot().metadata.index, 11);
  eq(f.storage.snapshot().data, bytes("state@11"));
  eq(f.raw.raft.raftLog.committed, c.get(1).raw.raft.raftLog.committed);
  c.get(1).raw.propose(bytes("after"));
  c.stabilize();
  eq(c.appliedData(3), ["after"]);
  const st = c.get(1).raw.status().progress?.get(3);
  eq(st?.state, "replicate");
  // Reference: §7
});

Deno.test("a learner never campaigns and its votes never make a leader", () => {
  const c = RawCluster.create([1, 2], { checkQuorum: true }, [3]);
  c.elect(1);
  c.isolate(2);
  let learnerCampaigned = false;
  c.filter = (m) => {
    if (m.from === 3 && (m.type === "MsgVote" || m.type === "MsgPreVote")) learnerCampaigned = true;
    return true;
  };
  c.tick(200);
  // Node 1 lost its quorum (CheckQuorum) and keeps campaigning; the learner's grants never
  // complete a majority of the voters {1, 2}.
  eq(c.leader(), undefined);
  ok(c.get(1).raw.raft.term > 1);
  eq(learnerCampaigned, false);
  eq(c.get(3).raw.raft.state, "follower");
  // Reference: thesis §4.2.1
});

Deno.test("a learner is promoted to voter by addNode and then counts for commit", () => {
  const c = RawCluster.create([1], {}, [2]);
  c.elect(1);
  c.get(1).raw.proposeConfChange({ type: "addNode", nodeId: 2 });
  c.stabilize();
  eq(c.get(1).confState, { voters: [1, 2], learners: [] });
  c.isolate(2);
  c.get(1).raw.propose(bytes("needs 2"));
  c.stabilize();
  eq(c.appliedData(1), [], "with 2 voters the leader alone cannot commit");
  c.heal();
  c.tick(2);
  eq(c.appliedData(1), ["needs 2"]);
  // Reference: thesis §4.2.1
});

Deno.test("a new node joins with empty storage as a learner and catches up", () => {
  const c = RawCluster.bootstrap([1, 2, 3]);
  c.elect(1);
  c.get(1).raw.propose(bytes("old"));
  c.stabilize();
  c.add(4, { voters: [], learners: [] });
  c.get(1).raw.proposeConfChange({ type: "addLearner", nodeId: 4 });
  c.stabilize();
  c.tick(2);
  eq(c.appliedData(4), ["old"]);
  eq(c.get(4).confState, { voters: [1, 2, 3], learners: [4] });
  // Reference: thesis §4.2.1
});

Deno.test("proposals past maxUncommittedEntriesSize are dropped", () => {
  const c = RawCluster.create([1, 2, 3], { maxUncommittedEntriesSize: 10 });
  c.elect(1);
  c.isolate(1);
  const raw = c.get(1).raw;
  raw.propose(new Uint8Array(8));
  let dropped = false;
  try {
    raw.propose(new Uint8Array(8));
  } catch (e) {
    dropped = (e as Error).name === "ProposalDroppedError";
  }
  ok(dropped);
  // Reference: etcd MaxUncommittedEntriesSize (thesis §10.2.1 flow control)
});

Deno.test("a proposal with no leader or with forwarding disabled is reported dropped", () => {
  const c = RawCluster.create([1, 2, 3], { disableProposalForwarding: true });
  let err = "";
  try {
    c.get(2).raw.propose(bytes("x"));
  } catch (e) {
    err = (e as Error).message;
  }
  ok(err.includes("no leader"), err);
  c.elect(1);
  try {
    c.get(2).raw.propose(bytes("x"));
  } catch (e) {
    err = (e as Error).message;
  }
  ok(err.includes("forwarding disabled"), err);
  // Reference: §8
});

Deno.test("many proposals are batched into one append per follower", () => {
  const c = RawCluster.create([1, 2, 3]);
  c.elect(1);
  const sent: number[] = [];
  c.filter = (m) => {
    if (m.type === "MsgApp" && m.entries.length > 0) sent.push(m.entries.length);
    return true;
  };
  // Proposals arriving before the leader hands out a ready go out together.
  for (let i = 0; i < 3; i++) c.get(1).raw.propose(bytes(`b${i}`));
  c.stabilize();
  ok(sent.some((n) => n >= 2), `append sizes ${sent}`);
  eq(c.appliedData(2), ["b0", "b1", "b2"]);
  // Reference: §5.3 (etcd batching)
});

Deno.test("a follower reported unreachable returns to replicate on the next heartbeat response", async (t) => {
  // reportUnreachable drops a follower to probe state. The leader's only regular contact with
  // a caught-up follower is the heartbeat, so its response must restart replication; otherwise
  // the follower stays in probe (one message per round trip) until the next proposal.
  const cases: {
    name: string;
    /** Brings follower 2 into the state under test; returns nothing. */
    setup: (nw: Network) => void;
    /** Whether the heartbeat round must carry a MsgApp to 2. */
    wantApp: boolean;
  }[] = [
    {
      name: "caught up, then reported unreachable",
      setup: (nw) => nw.send(makeMessage({ type: "MsgUnreachable", from: 2, to: 1 })),
      wantApp: true,
    },
    {
      name: "reported unreachable, then its probe was lost",
      setup: (nw) => {
        nw.send(makeMessage({ type: "MsgUnreachable", from: 2, to: 1 }));
        nw.drop(1, 2, 2);
        nw.propose(1, bytes("lost"));
        nw.recover();
      },
      wantApp: true,
    },
    {
      name: "caught up in replicate state",
      setup: () => {},
      wantApp: false,
    },
  ];
  for (const tc of cases) {
    await t.step(tc.name, () => {
      const nw = Network.create([undefined, undefined, undefined]);
      nw.hup(1);
      nw.propose(1, bytes("w"));
      const lead = nw.raft(1);
      const pr = lead.trk.progress.get(2)!;
      eq(pr.state, "replicate");
      tc.setup(nw);
      const sent: string[] = [];
      nw.msgHook = (m) => {
        if (m.from === 1 && m.to === 2) sent.push(m.type);
        return true;
      };
      nw.send(makeMessage({ type: "MsgBeat", from: 1, to: 1 }));
      eq(sent.includes("MsgApp"), tc.wantApp);
      eq(pr.state, "replicate");
      eq(pr.match, lead.raftLog.lastIndex());
      eq(nw.raft(2).raftLog.committed, lead.raftLog.committed);
    });
  }
  // Reference: §5.3 (the leader retries AppendEntries until the follower's log matches)
});

Deno.test("a lagging voter with an older configuration and a higher term still elects the up-to-date voter", () => {
  // Voters {2, 3}, learner 1. Node 2 acknowledges the promotion of 1 but never learns that it
  // committed; 3 then removes itself (1 and 3 commit that) and leaves. Node 2 still sees
  // voters {2, 3}: it campaigns only toward the departed 3, raising its term, and never sends
  // anything to 1. Node 1 sees voters {1, 2} and needs 2's vote, but asks at a lower term.
  const c = RawCluster.create([2, 3], {}, [1]);
  c.elect(3);
  const promotion = c.get(3).raw.raft.raftLog.lastIndex() + 1;
  let acked = false;
  c.filter = (m) => {
    if (m.from === 2 && m.to === 3 && m.type === "MsgAppResp" && m.index >= promotion) {
      acked = true;
    }
    return !(acked && m.from === 3 && m.to === 2);
  };
  c.get(3).raw.proposeConfChange({ type: "addNode", nodeId: 1 });
  c.stabilize();
  c.get(3).raw.proposeConfChange({ type: "removeNode", nodeId: 3 });
  c.stabilize();
  eq(c.get(1).confState, { voters: [1, 2], learners: [] });
  eq(c.get(2).confState, { voters: [2, 3], learners: [1] });
  c.members.delete(3);
  c.heal();
  // Node 2 campaigned alone for a while (node 1 was down).
  for (let i = 0; i < 200; i++) {
    c.get(2).raw.tick();
    c.stabilize();
  }
  ok(c.get(2).raw.raft.term > c.get(1).raw.raft.term + 5);
  // Both race to campaign; node 1 wins a round once it asks at a term above node 2's.
  for (let i = 0; i < 100 * 10 && c.leader() === undefined; i++) c.tick();
  const lead = c.leader();
  ok(lead !== undefined, "no leader elected");
  eq(lead.id, 1);
  lead.raw.propose(bytes("after"));
  c.stabilize();
  eq(c.appliedData(2), ["after"]);
  eq(c.get(2).confState, { voters: [1, 2], learners: [] });
  // Reference: §5.1, Figure 2 (RequestVote replies carry the term), thesis §4.2
});
