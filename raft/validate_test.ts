import { deepStrictEqual as eq, throws } from "node:assert/strict";
import { validateMessage } from "./validate.ts";
import { makeMessage } from "./types.ts";
import { RawCluster } from "./testing/cluster.ts";
import { bytes } from "./testing/helpers.ts";

function good(): Record<string, unknown> {
  return {
    type: "MsgApp",
    from: 1,
    to: 2,
    term: 3,
    logTerm: 2,
    index: 4,
    entries: [{ term: 3, index: 5, type: "normal", data: new Uint8Array([1]) }],
    commit: 4,
    reject: false,
    rejectHint: 0,
  };
}

Deno.test("validateMessage() accepts a well-formed message and returns a clean copy", () => {
  const x = { ...good(), extra: "dropped", context: new Uint8Array([9]) };
  const m = validateMessage(x);
  eq(m.type, "MsgApp");
  eq(m.context, new Uint8Array([9]));
  eq("extra" in m, false);
  const snap = validateMessage({
    ...good(),
    type: "MsgSnap",
    entries: [],
    snapshot: {
      metadata: { index: 9, term: 2, confState: { voters: [1, 2], learners: [] } },
      data: new Uint8Array(0),
    },
  });
  eq(snap.snapshot?.metadata.index, 9);
  // Reference: transport input validation
});

Deno.test("validateMessage() rejects malformed messages with a clear error", () => {
  const cases: [string, (m: Record<string, unknown>) => unknown, RegExp][] = [
    ["not an object", () => "MsgApp", /message must be an object/],
    ["null", () => null, /message must be an object/],
    ["array", () => [], /message must be an object/],
    ["unknown type", (m) => ({ ...m, type: "MsgNope" }), /type must be a network message type/],
    ["local type", (m) => ({ ...m, type: "MsgHup" }), /type must be a network/],
    ["missing from", (m) => ({ ...m, from: undefined }), /from must be a positive/],
    ["zero to", (m) => ({ ...m, to: 0 }), /to must be a positive/],
    ["string term", (m) => ({ ...m, term: "3" }), /term must be a non-negative/],
    ["negative index", (m) => ({ ...m, index: -1 }), /index must be a non-negative/],
    ["fractional commit", (m) => ({ ...m, commit: 1.5 }), /commit must be/],
    ["huge term", (m) => ({ ...m, term: 2 ** 60 }), /term must be a non-negative safe/],
    ["NaN logTerm", (m) => ({ ...m, logTerm: NaN }), /logTerm must be/],
    ["Infinity rejectHint", (m) => ({ ...m, rejectHint: Infinity }), /rejectHint must be/],
    ["bigint index", (m) => ({ ...m, index: 4n }), /index must be/],
    ["reject not boolean", (m) => ({ ...m, reject: 0 }), /reject must be a boolean/],
    ["entries not array", (m) => ({ ...m, entries: {} }), /entries must be an array/],
    ["entry not object", (m) => ({ ...m, entries: [7] }), /entries\[0\] must be an object/],
    [
      "entry data not bytes",
      (m) => ({ ...m, entries: [{ term: 3, index: 5, type: "normal", data: [1] }] }),
      /entries\[0\].data must be a Uint8Array/,
    ],
    [
      "entry bad type",
      (m) => ({ ...m, entries: [{ term: 3, index: 5, type: "weird", data: new Uint8Array() }] }),
      /entries\[0\].type/,
    ],
    [
      "entries not contiguous",
      (m) => ({ ...m, entries: [{ term: 3, index: 7, type: "normal", data: new Uint8Array() }] }),
      /entries\[0\].index must be 5/,
    ],
    [
      "entry term above message term",
      (m) => ({ ...m, entries: [{ term: 9, index: 5, type: "normal", data: new Uint8Array() }] }),
      /must be <= message term/,
    ],
    ["context not bytes", (m) => ({ ...m, context: "ctx" }), /context must be a Uint8Array/],
    ["empty proposal", (m) => ({ ...m, type: "MsgProp", entries: [] }), /must not be empty/],
    [
      "snap without snapshot",
      (m) => ({ ...m, type: "MsgSnap", entries: [] }),
      /snapshot is required/,
    ],
    [
      "snapshot bad voters",
      (m) => ({
        ...m,
        type: "MsgSnap",
        entries: [],
        snapshot: {
          metadata: { index: 1, term: 1, confState: { voters: [0], learners: [] } },
          data: new Uint8Array(),
        },
      }),
      /snapshot.metadata.confState.voters\[0\]/,
    ],
    [
      "snapshot missing metadata",
      (m) => ({ ...m, type: "MsgSnap", entries: [], snapshot: { data: new Uint8Array() } }),
      /snapshot.metadata must be an object/,
    ],
  ];
  for (const [name, mutate, want] of cases) {
    throws(() => validateMessage(mutate(good())), want, name);
  }
  // Reference: transport input validation
});

Deno.test("RawNode.step() survives messages from unknown nodes and stale terms", () => {
  const c = RawCluster.create([1, 2, 3]);
  c.elect(1);
  const lead = c.get(1).raw;
  const term = lead.raft.term;
  // Responses from a node that is not a member are ignored.
  lead.step(makeMessage({ type: "MsgAppResp", from: 99, to: 1, term, index: 1000 }));
  lead.step(makeMessage({ type: "MsgHeartbeatResp", from: 99, to: 1, term }));
  lead.step(makeMessage({ type: "MsgVoteResp", from: 42, to: 1, term }));
  // An unknown node's append of a stale term is ignored.
  lead.step(makeMessage({ type: "MsgApp", from: 77, to: 1, term: term - 1, index: 5, commit: 9 }));
  // A forwarded proposal that cannot be accepted is dropped, not thrown.
  c.get(2).raw.step(makeMessage({ type: "MsgProp", from: 3, to: 2, entries: [] }));
  c.stabilize();
  eq(lead.raft.state, "leader");
  eq(lead.raft.term, term);
  lead.propose(bytes("still fine"));
  c.stabilize();
  eq(c.appliedData(3), ["still fine"]);
  throws(() => lead.step(makeMessage({ type: "MsgHup", from: 1, to: 1 })), /local message/);
  // Reference: §5.1
});
