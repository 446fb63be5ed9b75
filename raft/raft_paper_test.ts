/**
 * One test per claim of the Raft paper §5.1–§5.4 and §6–§8 (etcd's raft_paper_test.go is the
 * model). Each test names the section it checks.
 *
 * Longer than ~500 lines on purpose: one file per source (the paper), as etcd keeps it, so a
 * claim is found by its section; each test stands alone.
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import type { Raft } from "./raft.ts";
import { CompactedError } from "./storage.ts";
import {
  BLACK_HOLE,
  entsWithTerms,
  Network,
  newTestRaft,
  newTestStorage,
} from "./testing/network.ts";
import { acceptAndReply, bytes, commitNoopEntry, ent, types } from "./testing/helpers.ts";
import type { StateType } from "./types.ts";
import { makeMessage, NONE } from "./types.ts";
import { encodeConfChange } from "./confchange.ts";

function tickN(r: Raft, n: number): void {
  for (let i = 0; i < n; i++) r.tickFn(r);
}

function prop(r: Raft, data: Uint8Array): void {
  r.step(makeMessage({ type: "MsgProp", from: r.id, to: r.id, entries: [ent(0, 0, data)] }));
}

function becomeState(r: Raft, st: StateType, term: number): void {
  if (st === "follower") r.becomeFollower(term, 2);
  else if (st === "candidate") {
    r.becomeFollower(term - 1, NONE);
    r.becomeCandidate();
  } else {
    r.becomeFollower(term - 1, NONE);
    r.becomeCandidate();
    r.becomeLeader();
  }
}

Deno.test("§5.1 a server with a stale term updates to the higher term", async (t) => {
  for (const st of ["follower", "candidate", "leader"] as const) {
    await t.step(`${st} receiving AppendEntries of a higher term becomes follower`, () => {
      const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
      becomeState(r, st, 1);
      r.step(makeMessage({ type: "MsgApp", from: 2, to: 1, term: 2 }));
      eq(r.term, 2);
      eq(r.state, "follower");
    });
  }
  // Reference: §5.1
});

Deno.test("§5.1 a server rejects a request with a stale term", () => {
  const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
  r.loadState({ term: 2, vote: 0, commit: 0 });
  const before = r.raftLog.lastIndex();
  r.step(makeMessage({ type: "MsgApp", from: 2, to: 1, term: 1, entries: [ent(1, 1)] }));
  eq(r.raftLog.lastIndex(), before);
  eq(r.term, 2);
  eq(r.readMessages(), []);
  // Reference: §5.1
});

Deno.test("§5.1 a server rejects a RequestVote with a stale term and replies with its term", async (t) => {
  // Figure 2: the reply carries currentTerm "for candidate to update itself". Without it a
  // candidate whose term fell behind stays behind whenever the higher-term server never sends
  // it anything (e.g. its older configuration does not list the candidate as a voter).
  for (const st of ["follower", "candidate", "leader"] as const) {
    for (const type of ["MsgVote", "MsgPreVote"] as const) {
      await t.step(`${st} answering a stale ${type}`, () => {
        const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
        becomeState(r, st, 5);
        r.readMessages();
        r.step(makeMessage({ type, from: 2, to: 1, term: 3, index: 9, logTerm: 3 }));
        eq(r.term, 5);
        eq(r.state, st);
        const msgs = r.readMessages();
        eq(msgs.map((m) => [m.type, m.to, m.term, m.reject]), [
          [type === "MsgVote" ? "MsgVoteResp" : "MsgPreVoteResp", 2, 5, true],
        ]);
        // The stale candidate adopts the term and returns to follower.
        const c = newTestRaft(2, 10, 1, newTestStorage([1, 2, 3]));
        becomeState(c, "candidate", 3);
        c.step(msgs[0]!);
        eq(c.term, 5);
        eq(c.state, "follower");
      });
    }
  }
  // Reference: §5.1, Figure 2 (RequestVote RPC)
});

Deno.test("§5.2 servers start up as followers", () => {
  const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
  eq(r.state, "follower");
  // Reference: §5.2
});

Deno.test("§5.2 leader sends heartbeats to all followers every heartbeat timeout", () => {
  const hi = 1;
  const r = newTestRaft(1, 10, hi, newTestStorage([1, 2, 3]));
  r.becomeCandidate();
  r.becomeLeader();
  for (let i = 0; i < 10; i++) prop(r, new Uint8Array([i]));
  r.readMessages();
  tickN(r, hi);
  const msgs = r.readMessages().sort((a, b) => a.to - b.to);
  eq(msgs.map((m) => [m.type, m.to, m.term]), [["MsgHeartbeat", 2, 1], ["MsgHeartbeat", 3, 1]]);
  // Reference: §5.2
});

Deno.test("§5.2 a follower starts an election after election timeout", async (t) => {
  for (const st of ["follower", "candidate"] as const) {
    await t.step(st, () => {
      const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
      becomeState(r, st, 1);
      tickN(r, 2 * 10);
      eq(r.term, 2);
      eq(r.state, "candidate");
      eq(r.trk.votes.get(1), true, "votes for itself");
      const msgs = r.readMessages().sort((a, b) => a.to - b.to);
      eq(msgs.map((m) => [m.type, m.to, m.term]), [["MsgVote", 2, 2], ["MsgVote", 3, 2]]);
    });
  }
  // Reference: §5.2
});

Deno.test("§5.2 a candidate wins an election with votes from a majority", () => {
  const cases: { size: number; votes: Record<number, boolean>; want: StateType }[] = [
    { size: 1, votes: {}, want: "leader" },
    { size: 3, votes: { 2: true, 3: true }, want: "leader" },
    { size: 3, votes: { 2: true }, want: "leader" },
    { size: 5, votes: { 2: true, 3: true, 4: true, 5: true }, want: "leader" },
    { size: 5, votes: { 2: true, 3: true, 4: true }, want: "leader" },
    { size: 5, votes: { 2: true, 3: true }, want: "leader" },
    { size: 3, votes: { 2: false, 3: false }, want: "follower" },
    { size: 5, votes: { 2: false, 3: false, 4: false }, want: "follower" },
    { size: 5, votes: { 2: true, 3: false, 4: false, 5: false }, want: "follower" },
    { size: 3, votes: {}, want: "candidate" },
    { size: 5, votes: { 2: true }, want: "candidate" },
    { size: 5, votes: { 2: false, 3: false }, want: "candidate" },
    { size: 5, votes: {}, want: "candidate" },
  ];
  for (const tt of cases) {
    const ids = Array.from({ length: tt.size }, (_, i) => i + 1);
    const r = newTestRaft(1, 10, 1, newTestStorage(ids));
    r.step(makeMessage({ type: "MsgHup", from: 1, to: 1 }));
    for (const [id, granted] of Object.entries(tt.votes)) {
      r.step(makeMessage({
        type: "MsgVoteResp",
        from: Number(id),
        to: 1,
        term: r.term,
        reject: !granted,
      }));
    }
    eq(r.state, tt.want, JSON.stringify(tt));
    eq(r.term, 1);
  }
  // Reference: §5.2
});

Deno.test("§5.2 a follower votes for at most one candidate per term, first come first served", () => {
  const cases = [
    { vote: NONE, from: 2, reject: false },
    { vote: NONE, from: 3, reject: false },
    { vote: 2, from: 2, reject: false },
    { vote: 3, from: 3, reject: false },
    { vote: 2, from: 3, reject: true },
    { vote: 3, from: 2, reject: true },
  ];
  for (const tt of cases) {
    const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
    r.loadState({ term: 1, vote: tt.vote, commit: 0 });
    r.step(makeMessage({ type: "MsgVote", from: tt.from, to: 1, term: 1 }));
    const msgs = r.readMessages();
    eq(msgs.map((m) => [m.type, m.to, m.reject]), [["MsgVoteResp", tt.from, tt.reject]]);
  }
  // Reference: §5.2
});

Deno.test("§5.2 a candidate that hears from a leader of its term returns to follower", () => {
  for (const term of [1, 2]) {
    const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
    r.step(makeMessage({ type: "MsgHup", from: 1, to: 1 }));
    eq(r.state, "candidate");
    r.step(makeMessage({ type: "MsgApp", from: 2, to: 1, term }));
    eq(r.state, "follower");
    eq(r.term, term);
    eq(r.lead, 2);
  }
  // Reference: §5.2
});

Deno.test("§5.2 election timeouts are randomized", async (t) => {
  for (const st of ["follower", "candidate"] as const) {
    await t.step(st, () => {
      const et = 10;
      const seen = new Set<number>();
      const r = newTestRaft(1, et, 1, newTestStorage([1, 2, 3]));
      for (let round = 0; round < 50 * et; round++) {
        becomeState(r, st, r.term + 1);
        let time = 0;
        while (r.readMessages().length === 0) {
          r.tickFn(r);
          time++;
        }
        seen.add(time);
      }
      for (let d = et; d < 2 * et; d++) ok(seen.has(d), `timeout ${d} never chosen`);
      for (const d of seen) ok(d >= et && d < 2 * et, `timeout ${d} outside [et, 2et)`);
    });
  }
  // Reference: §5.2
});

Deno.test("§5.2 randomized timeouts make simultaneous elections rare", () => {
  const et = 10, size = 5, rounds = 1000;
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const rs = ids.map((id) => newTestRaft(id, et, 1, newTestStorage(ids)));
  let conflicts = 0;
  for (let round = 0; round < rounds; round++) {
    for (const r of rs) r.becomeFollower(r.term + 1, NONE);
    let timeoutNum = 0;
    while (timeoutNum === 0) {
      for (const r of rs) {
        r.tickFn(r);
        if (r.readMessages().length > 0) timeoutNum++;
      }
    }
    if (timeoutNum > 1) conflicts++;
  }
  ok(conflicts / rounds <= 0.3, `probability of conflicts ${conflicts / rounds} > 0.3`);
  // Reference: §5.2
});

Deno.test("§5.3 leader appends a proposal to its log and sends AppendEntries", () => {
  const s = newTestStorage([1, 2, 3]);
  const r = newTestRaft(1, 10, 1, s);
  r.becomeCandidate();
  r.becomeLeader();
  commitNoopEntry(r, s);
  const li = r.raftLog.lastIndex();
  prop(r, bytes("some data"));
  eq(r.raftLog.lastIndex(), li + 1);
  eq(r.raftLog.committed, li);
  const msgs = r.readMessages().sort((a, b) => a.to - b.to);
  const wents = [ent(1, li + 1, bytes("some data"))];
  eq(
    msgs.map((m) => [m.type, m.to, m.term, m.index, m.logTerm, m.entries, m.commit]),
    [2, 3].map((to) => ["MsgApp", to, 1, li, 1, wents, li]),
  );
  eq(r.raftLog.unstableEntries(), wents);
  // Reference: §5.3
});

Deno.test("§5.3 leader commits an entry once replicated on a majority", () => {
  const s = newTestStorage([1, 2, 3]);
  const r = newTestRaft(1, 10, 1, s);
  r.becomeCandidate();
  r.becomeLeader();
  commitNoopEntry(r, s);
  const li = r.raftLog.lastIndex();
  prop(r, bytes("some data"));
  for (const m of r.readMessages()) r.step(acceptAndReply(m));
  eq(r.raftLog.committed, li + 1);
  eq(r.raftLog.nextEnts(), [ent(1, li + 1, bytes("some data"))]);
  // Followers learn the new commit index in the next append.
  const msgs = r.readMessages().sort((a, b) => a.to - b.to);
  eq(msgs.map((m) => [m.type, m.to, m.commit]), [["MsgApp", 2, li + 1], ["MsgApp", 3, li + 1]]);
  // Reference: §5.3
});

Deno.test("§5.3 leader acknowledges commit once a majority of the cluster accepted", () => {
  const cases: { size: number; acceptors: number[]; wack: boolean }[] = [
    { size: 1, acceptors: [], wack: true },
    { size: 3, acceptors: [], wack: false },
    { size: 3, acceptors: [2], wack: true },
    { size: 3, acceptors: [2, 3], wack: true },
    { size: 5, acceptors: [], wack: false },
    { size: 5, acceptors: [2], wack: false },
    { size: 5, acceptors: [2, 3], wack: true },
    { size: 5, acceptors: [2, 3, 4], wack: true },
    { size: 5, acceptors: [2, 3, 4, 5], wack: true },
  ];
  for (const tt of cases) {
    const ids = Array.from({ length: tt.size }, (_, i) => i + 1);
    const s = newTestStorage(ids);
    const r = newTestRaft(1, 10, 1, s);
    r.becomeCandidate();
    r.becomeLeader();
    commitNoopEntry(r, s);
    const li = r.raftLog.lastIndex();
    prop(r, bytes("some data"));
    for (const m of r.readMessages()) {
      if (tt.acceptors.includes(m.to)) r.step(acceptAndReply(m));
    }
    eq(r.raftLog.committed > li, tt.wack, JSON.stringify(tt));
  }
  // Reference: §5.3
});

Deno.test("§5.3 committing an entry also commits all preceding entries of the leader", () => {
  const cases = [[], [ent(2, 1)], [ent(1, 1), ent(2, 2)], [ent(1, 1)]];
  for (const tt of cases) {
    const s = newTestStorage([1, 2, 3]);
    s.append(tt);
    const r = newTestRaft(1, 10, 1, s);
    r.loadState({ term: 2, vote: 0, commit: 0 });
    r.becomeCandidate();
    r.becomeLeader();
    prop(r, bytes("some data"));
    for (const m of r.readMessages()) r.step(acceptAndReply(m));
    const li = tt.length;
    const want = [...tt, ent(3, li + 1), ent(3, li + 2, bytes("some data"))];
    eq(r.raftLog.nextEnts(), want);
  }
  // Reference: §5.3
});

Deno.test("§5.3 a follower applies entries the leader reports committed", () => {
  const cases = [
    { ents: [ent(1, 1, bytes("a"))], commit: 1 },
    { ents: [ent(1, 1, bytes("a")), ent(1, 2, bytes("b"))], commit: 2 },
    { ents: [ent(1, 1, bytes("a")), ent(1, 2, bytes("b"))], commit: 1 },
  ];
  for (const tt of cases) {
    const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
    r.becomeFollower(1, 2);
    r.step(makeMessage({
      type: "MsgApp",
      from: 2,
      to: 1,
      term: 1,
      entries: tt.ents,
      commit: tt.commit,
    }));
    eq(r.raftLog.committed, tt.commit);
    eq(r.raftLog.nextEnts(), tt.ents.slice(0, tt.commit));
  }
  // Reference: §5.3
});

Deno.test("§5.3 follower rejects AppendEntries whose prev entry does not match", () => {
  const ents = [ent(1, 1), ent(2, 2)];
  const cases = [
    // Match with committed entries.
    { term: 0, index: 0, windex: 1, wreject: false, wrejectHint: 0, wlogTerm: 0 },
    { term: ents[0]!.term, index: 1, windex: 1, wreject: false, wrejectHint: 0, wlogTerm: 0 },
    // Match with uncommitted entries.
    { term: ents[1]!.term, index: 2, windex: 2, wreject: false, wrejectHint: 0, wlogTerm: 0 },
    // Unmatch with existing entry.
    { term: ents[0]!.term, index: 2, windex: 2, wreject: true, wrejectHint: 1, wlogTerm: 1 },
    // Unexisting entry.
    { term: ents[1]!.term + 1, index: 3, windex: 3, wreject: true, wrejectHint: 2, wlogTerm: 2 },
  ];
  for (const tt of cases) {
    const s = newTestStorage([1, 2, 3]);
    s.append(ents);
    const r = newTestRaft(1, 10, 1, s);
    r.loadState({ term: 0, vote: 0, commit: 1 });
    r.becomeFollower(2, 2);
    r.step(makeMessage({
      type: "MsgApp",
      from: 2,
      to: 1,
      term: 2,
      logTerm: tt.term,
      index: tt.index,
    }));
    const msgs = r.readMessages();
    eq(
      msgs.map((m) => [m.type, m.term, m.index, m.reject, m.rejectHint, m.logTerm]),
      [["MsgAppResp", 2, tt.windex, tt.wreject, tt.wrejectHint, tt.wlogTerm]],
      JSON.stringify(tt),
    );
  }
  // Reference: §5.3
});

Deno.test("§5.3 follower deletes conflicting entries and appends new ones", () => {
  const cases = [
    { index: 2, term: 2, ents: [ent(3, 3)], wents: [ent(1, 1), ent(2, 2), ent(3, 3)] },
    {
      index: 1,
      term: 1,
      ents: [ent(3, 2), ent(4, 3)],
      wents: [ent(1, 1), ent(3, 2), ent(4, 3)],
    },
    { index: 0, term: 0, ents: [ent(1, 1)], wents: [ent(1, 1), ent(2, 2)] },
    { index: 0, term: 0, ents: [ent(3, 1)], wents: [ent(3, 1)] },
  ];
  for (const tt of cases) {
    const s = newTestStorage([1, 2, 3]);
    s.append([ent(1, 1), ent(2, 2)]);
    const r = newTestRaft(1, 10, 1, s);
    r.becomeFollower(2, 2);
    r.step(makeMessage({
      type: "MsgApp",
      from: 2,
      to: 1,
      term: 2,
      logTerm: tt.term,
      index: tt.index,
      entries: tt.ents,
    }));
    eq(r.raftLog.allEntries(), tt.wents, JSON.stringify(tt));
  }
  // Reference: §5.3
});

Deno.test("§5.4.1 voter rejects a candidate with a less up-to-date log", () => {
  const cases = [
    // Same logterm.
    { ents: [ent(1, 1)], logTerm: 1, index: 1, wreject: false },
    { ents: [ent(1, 1)], logTerm: 1, index: 2, wreject: false },
    { ents: [ent(1, 1), ent(1, 2)], logTerm: 1, index: 1, wreject: true },
    // Candidate higher logterm.
    { ents: [ent(1, 1)], logTerm: 2, index: 1, wreject: false },
    { ents: [ent(1, 1)], logTerm: 2, index: 2, wreject: false },
    { ents: [ent(1, 1), ent(1, 2)], logTerm: 2, index: 1, wreject: false },
    // Voter higher logterm.
    { ents: [ent(2, 1)], logTerm: 1, index: 1, wreject: true },
    { ents: [ent(2, 1)], logTerm: 1, index: 2, wreject: true },
    { ents: [ent(2, 1), ent(1, 2)], logTerm: 1, index: 1, wreject: true },
  ];
  for (const tt of cases) {
    const s = newTestStorage([1, 2]);
    s.append(tt.ents);
    const r = newTestRaft(1, 10, 1, s);
    r.step(makeMessage({
      type: "MsgVote",
      from: 2,
      to: 1,
      term: 3,
      logTerm: tt.logTerm,
      index: tt.index,
    }));
    const msgs = r.readMessages();
    eq(msgs.map((m) => [m.type, m.reject]), [["MsgVoteResp", tt.wreject]], JSON.stringify(tt));
  }
  // Reference: §5.4.1
});

Deno.test("§5.4.1 a candidate sends its last log index and term in RequestVote", () => {
  const s = newTestStorage([1, 2, 3]);
  s.append([ent(1, 1), ent(2, 2)]);
  const r = newTestRaft(1, 10, 1, s);
  r.loadState({ term: 2, vote: 0, commit: 0 });
  r.step(makeMessage({ type: "MsgHup", from: 1, to: 1 }));
  for (const m of r.readMessages()) {
    eq([m.type, m.index, m.logTerm, m.term], ["MsgVote", 2, 2, 3]);
  }
  // Reference: §5.4.1
});

Deno.test("§5.4.2 leader commits only entries of its own term by counting", () => {
  const ents = [ent(1, 1), ent(2, 2)];
  const cases = [
    // Do not commit log entries in previous terms.
    { index: 1, wcommit: 0 },
    { index: 2, wcommit: 0 },
    // Commit log in current term.
    { index: 3, wcommit: 3 },
  ];
  for (const tt of cases) {
    const s = newTestStorage([1, 2]);
    s.append(ents);
    const r = newTestRaft(1, 10, 1, s);
    r.loadState({ term: 2, vote: 0, commit: 0 });
    // Become leader at term 3.
    r.becomeCandidate();
    r.becomeLeader();
    r.readMessages();
    // Propose an entry to the current term.
    prop(r, new Uint8Array(0));
    r.step(makeMessage({ type: "MsgAppResp", from: 2, to: 1, term: r.term, index: tt.index }));
    eq(r.raftLog.committed, tt.wcommit, JSON.stringify(tt));
  }
  // Reference: §5.4.2
});

Deno.test("§5.4.2 an entry of an earlier term commits once a current-term entry commits", () => {
  const s = newTestStorage([1, 2, 3]);
  s.append([ent(1, 1), ent(2, 2)]);
  const r = newTestRaft(1, 10, 1, s);
  r.loadState({ term: 2, vote: 0, commit: 0 });
  r.becomeCandidate();
  r.becomeLeader();
  r.readMessages();
  r.step(makeMessage({ type: "MsgAppResp", from: 2, to: 1, term: r.term, index: 3 }));
  eq(r.raftLog.committed, 3, "the no-op at 3 commits entries 1 and 2 with it");
  // Reference: §5.4.2
});

Deno.test("§5.5 a follower ignores a duplicate AppendEntries (RPCs are idempotent)", () => {
  const r = newTestRaft(1, 10, 1, newTestStorage([1, 2, 3]));
  r.becomeFollower(1, 2);
  const m = makeMessage({ type: "MsgApp", from: 2, to: 1, term: 1, entries: [ent(1, 1)] });
  r.step(m);
  r.step(m);
  eq(r.raftLog.allEntries(), [ent(1, 1)]);
  eq(r.readMessages().map((x) => [x.type, x.index, x.reject]), [
    ["MsgAppResp", 1, false],
    ["MsgAppResp", 1, false],
  ]);
  // Reference: §5.5
});

Deno.test("§6 a leader refuses a second membership change while one is pending", () => {
  const s = newTestStorage([1, 2, 3]);
  const r = newTestRaft(1, 10, 1, s);
  r.becomeCandidate();
  r.becomeLeader();
  commitNoopEntry(r, s);
  const cc = (id: number) =>
    makeMessage({
      type: "MsgProp",
      from: 1,
      to: 1,
      entries: [{
        term: 0,
        index: 0,
        type: "confChange",
        data: encodeConfChange({ type: "addNode", nodeId: id }),
      }],
    });
  r.step(cc(4));
  let dropped = false;
  try {
    r.step(cc(5));
  } catch (e) {
    dropped = (e as Error).name === "ProposalDroppedError";
  }
  ok(dropped, "second conf change is dropped");
  eq(r.raftLog.lastIndex(), 2);
  // Reference: §6 (thesis §4.1: one change at a time)
});

Deno.test("§6 a new leader proposes no membership change before its log is applied", () => {
  const s = newTestStorage([1, 2, 3]);
  s.append([ent(1, 1)]);
  const r = newTestRaft(1, 10, 1, s);
  r.loadState({ term: 1, vote: 0, commit: 0 });
  r.becomeCandidate();
  r.becomeLeader();
  eq(r.pendingConfIndex, 1, "pending conf index covers the whole inherited log");
  let dropped = false;
  try {
    r.step(makeMessage({
      type: "MsgProp",
      from: 1,
      to: 1,
      entries: [{
        term: 0,
        index: 0,
        type: "confChange",
        data: encodeConfChange({ type: "removeNode", nodeId: 3 }),
      }],
    }));
  } catch (e) {
    dropped = (e as Error).name === "ProposalDroppedError";
  }
  ok(dropped);
  // Reference: §6 (raft-dev 2015 single-server change fix)
});

Deno.test("§6 applying a membership change updates the voters the leader counts", () => {
  const s = newTestStorage([1, 2]);
  const r = newTestRaft(1, 10, 1, s);
  r.becomeCandidate();
  r.becomeLeader();
  r.readMessages();
  prop(r, bytes("x"));
  // Node 2 never answers; removing it lets the leader commit alone.
  eq(r.raftLog.committed, 0);
  r.applyConfChange({ type: "removeNode", nodeId: 2 });
  eq(r.raftLog.committed, 2);
  // Reference: §6
});

Deno.test("§7 a follower installs a snapshot and discards its log", () => {
  const s = newTestStorage([1, 2]);
  const r = newTestRaft(1, 10, 1, s);
  r.becomeFollower(2, 2);
  const snap = {
    metadata: { index: 11, term: 11, confState: { voters: [1, 2, 3], learners: [] } },
    data: bytes("state"),
  };
  r.step(makeMessage({ type: "MsgSnap", from: 2, to: 1, term: 2, snapshot: snap }));
  eq(r.raftLog.lastIndex(), 11);
  eq(r.raftLog.term(11), 11);
  eq(r.raftLog.committed, 11);
  eq(r.trk.confState().voters, [1, 2, 3]);
  eq(r.readMessages().map((m) => [m.type, m.index]), [["MsgAppResp", 11]]);
  // Reference: §7
});

Deno.test("§7 a snapshot whose last entry the follower has keeps the following entries", () => {
  const s = newTestStorage([1, 2]);
  s.append([ent(1, 1), ent(1, 2), ent(1, 3)]);
  const r = newTestRaft(1, 10, 1, s);
  r.becomeFollower(1, 2);
  const snap = {
    metadata: { index: 2, term: 1, confState: { voters: [1, 2], learners: [] } },
    data: new Uint8Array(0),
  };
  r.step(makeMessage({ type: "MsgSnap", from: 2, to: 1, term: 1, snapshot: snap }));
  eq(r.raftLog.lastIndex(), 3);
  eq(r.raftLog.committed, 2);
  ok(!r.raftLog.hasPendingSnapshot());
  // Reference: §7
});

Deno.test("§7 a leader sends a snapshot to a follower that needs compacted entries", () => {
  const s = newTestStorage([1, 2]);
  s.append([ent(1, 1), ent(1, 2), ent(1, 3)]);
  s.createSnapshot(3, { voters: [1, 2], learners: [] }, bytes("snap"));
  s.compact(3);
  const r = newTestRaft(1, 10, 1, s);
  r.loadState({ term: 1, vote: 0, commit: 3 });
  r.becomeCandidate();
  r.becomeLeader();
  r.readMessages();
  const pr = r.trk.progress.get(2)!;
  pr.next = 1;
  pr.recentActive = true;
  r.sendAppend(2);
  const msgs = r.readMessages();
  eq(types(msgs), ["MsgSnap"]);
  eq(msgs[0]!.snapshot!.metadata.index, 3);
  eq(pr.state, "snapshot");
  eq(s.firstIndex(), 4);
  let compacted = false;
  try {
    s.entries(2, 3, Infinity);
  } catch (e) {
    compacted = e instanceof CompactedError;
  }
  ok(compacted);
  // Reference: §7
});

Deno.test("§8 a new leader commits a blank no-op entry of its term", () => {
  const nw = Network.create([undefined, undefined, undefined]);
  nw.hup(1);
  const r = nw.raft(1);
  eq(r.raftLog.allEntries(), [ent(1, 1)]);
  eq(r.raftLog.committed, 1);
  // Reference: §8
});

Deno.test("§8 clients may send requests to any server: followers forward proposals", () => {
  const nw = Network.create([undefined, undefined, undefined]);
  nw.hup(1);
  nw.propose(2, bytes("via follower"));
  eq(nw.raft(1).raftLog.committed, 2);
  eq(nw.raft(3).raftLog.allEntries()[1]?.data, bytes("via follower"));
  // Reference: §8
});

Deno.test("§8 a leader needs a majority to serve, a minority cannot commit", () => {
  const nw = Network.create([undefined, BLACK_HOLE, BLACK_HOLE]);
  nw.hup(1);
  eq(nw.raft(1).state, "candidate");
  // Reference: §8 / §5.2
});

Deno.test("§5.3 log inconsistency: leader backs up next index and overwrites follower", () => {
  // Follower holds an extra uncommitted entry from term 2; the leader of term 3 overwrites it.
  const s1 = newTestStorage([1, 2, 3]);
  s1.append(entsWithTerms(1, 1));
  const s2 = newTestStorage([1, 2, 3]);
  s2.append(entsWithTerms(1, 1, 2, 2));
  const r1 = newTestRaft(1, 10, 1, s1);
  r1.loadState({ term: 2, vote: 0, commit: 0 });
  const r2 = newTestRaft(2, 10, 1, s2);
  r2.loadState({ term: 2, vote: 0, commit: 0 });
  const nw = Network.create([r1, r2, undefined]);
  nw.hup(1); // Node 3 (empty log) and node 1 elect 1 at term 3.
  eq(r1.state, "leader");
  nw.propose(1);
  eq(r2.raftLog.allEntries().map((e) => e.term), r1.raftLog.allEntries().map((e) => e.term));
  // Reference: §5.3
});
