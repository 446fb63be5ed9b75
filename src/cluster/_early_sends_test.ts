import assert from "node:assert/strict";
import type { Entry, Message, Ready } from "../../raft/mod.ts";
import { earlyCommitBound, mustWaitForWrite, splitEarly } from "./_early_sends.ts";

const msg = (type: Message["type"], commit = 0): Message => ({
  type,
  from: 1,
  to: 2,
  term: 3,
  logTerm: 0,
  index: 0,
  entries: [],
  commit,
  reject: false,
  rejectHint: 0,
});
const ent = (index: number): Entry => ({ index, term: 3, type: "normal", data: new Uint8Array(1) });
const ready = (r: Partial<Ready>): Ready => ({
  readStates: [],
  entries: [],
  committedEntries: [],
  messages: [],
  mustSync: false,
  ...r,
});
const durable = { hardState: { term: 3, vote: 1, commit: 10 }, lastIndex: 10 };

Deno.test("splitEarly() sends a leader's appends and heartbeats whose commit is durable, before the write", () => {
  const rd = ready({
    entries: [ent(11), ent(12)],
    hardState: { term: 3, vote: 1, commit: 10 },
    messages: [msg("MsgApp", 10), msg("MsgHeartbeat", 9), msg("MsgSnap")],
  });
  assert.deepEqual(splitEarly(rd, true, durable).held, []);
});

Deno.test("splitEarly() holds a leader's append carrying a commit of entries in its own write (a single voter)", () => {
  // A lone voter commits its new entries at once: a learner must not learn that commit first.
  const rd = ready({
    entries: [ent(11)],
    hardState: { term: 3, vote: 1, commit: 11 },
    messages: [msg("MsgApp", 11), msg("MsgApp", 10)],
  });
  const { now, held } = splitEarly(rd, true, durable);
  assert.deepEqual(now.map((m) => m.commit), [10]);
  assert.deepEqual(held.map((m) => m.commit), [11]);
});

Deno.test("earlyCommitBound() is -1 after a term or vote change, with a snapshot, and off the leader", () => {
  const changed = ready({ hardState: { term: 4, vote: 1, commit: 10 } });
  assert.equal(earlyCommitBound(changed, true, durable), -1);
  const voted = ready({ hardState: { term: 3, vote: 2, commit: 10 } });
  assert.equal(earlyCommitBound(voted, true, durable), -1);
  const snap = ready({
    snapshot: {
      metadata: { index: 20, term: 3, confState: { voters: [1], learners: [] } },
      data: new Uint8Array(0),
    },
  });
  assert.equal(earlyCommitBound(snap, true, durable), -1);
  assert.equal(earlyCommitBound(ready({}), false, durable), -1);
  // Only the commit moved: as durable as before.
  assert.equal(
    earlyCommitBound(ready({ hardState: { term: 3, vote: 1, commit: 12 } }), true, durable),
    10,
  );
});

Deno.test("splitEarly() holds votes, append responses, proposals and read answers until the write", () => {
  const rd = ready({
    messages: [
      msg("MsgVote"),
      msg("MsgVoteResp"),
      msg("MsgPreVoteResp"),
      msg("MsgAppResp"),
      msg("MsgHeartbeatResp"),
      msg("MsgProp"),
      msg("MsgReadIndexResp"),
      msg("MsgTimeoutNow"),
    ],
  });
  assert.equal(splitEarly(rd, true, durable).now.length, 0);
  assert.equal(splitEarly(rd, false, durable).now.length, 0);
  // A follower sends nothing early, appends included.
  assert.equal(splitEarly(ready({ messages: [msg("MsgApp", 0)] }), false, durable).now.length, 0);
});

Deno.test("earlyCommitBound() counts a replaced stale suffix as not durable", () => {
  // Storage still has 11..12 of an old term, the ready rewrites from 11.
  const rd = ready({ entries: [ent(11)] });
  assert.equal(earlyCommitBound(rd, true, { ...durable, lastIndex: 12 }), 10);
});

Deno.test("mustWaitForWrite() does not wait for a ready that only moves the commit index", () => {
  const rd = ready({
    hardState: { term: 3, vote: 1, commit: 10 },
    committedEntries: [ent(9), ent(10)],
    messages: [msg("MsgApp", 10), msg("MsgAppResp", 10), msg("MsgHeartbeat", 10)],
  });
  assert.equal(
    mustWaitForWrite(rd, { ...durable, hardState: { term: 3, vote: 1, commit: 8 } }),
    false,
  );
  assert.equal(mustWaitForWrite(ready({ messages: [msg("MsgHeartbeatResp")] }), durable), false);
});

Deno.test("mustWaitForWrite() waits for entries, a snapshot, a term or vote change, or mustSync", () => {
  assert.equal(mustWaitForWrite(ready({ entries: [ent(11)], mustSync: true }), durable), true);
  assert.equal(mustWaitForWrite(ready({ entries: [ent(11)] }), durable), true);
  assert.equal(mustWaitForWrite(ready({ mustSync: true }), durable), true);
  const snapshot = {
    data: new Uint8Array(0),
    metadata: { index: 20, term: 3, confState: { voters: [1], learners: [] } },
  } as unknown as NonNullable<Ready["snapshot"]>;
  assert.equal(mustWaitForWrite(ready({ snapshot }), durable), true);
  const hs = (term: number, vote: number) => ({ hardState: { term, vote, commit: 10 } });
  assert.equal(mustWaitForWrite(ready(hs(4, 1)), durable), true);
  assert.equal(mustWaitForWrite(ready(hs(3, 2)), durable), true);
});

Deno.test("mustWaitForWrite() waits when a commit or committed entry is past the durable last index", () => {
  assert.equal(mustWaitForWrite(ready({ committedEntries: [ent(10), ent(11)] }), durable), true);
  assert.equal(
    mustWaitForWrite(ready({ hardState: { term: 3, vote: 1, commit: 11 } }), durable),
    true,
  );
  assert.equal(mustWaitForWrite(ready({ messages: [msg("MsgHeartbeat", 11)] }), durable), true);
});
