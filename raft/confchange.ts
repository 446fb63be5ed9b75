/**
 * Single-server membership changes (Raft thesis §4.1, etcd's model), encoding of conf change
 * entries, and bootstrap entries for a new cluster.
 *
 * ## Safety argument
 *
 * Membership changes add or remove one voter at a time, so any majority of the old voter set
 * and any majority of the new one share at least one server (thesis §4.1): two leaders elected
 * under adjacent configurations must meet a common voter, which votes once per term.
 *
 * A configuration takes effect on a node when the application applies its entry and calls
 * `applyConfChange` (etcd's choice, rather than "on append" as in the thesis). Three rules keep
 * every node within one change of the leader's configuration:
 *
 * 1. One change pending at a time: the leader refuses a conf change proposal while an earlier
 *    one is not yet applied (`pendingConfIndex > applied`). So change k+1 is proposed only
 *    after change k committed under config k-1 and was applied by the leader.
 * 2. A new leader sets `pendingConfIndex` to its last index, so it proposes no change before
 *    an entry of its own term committed and everything before it applied. This closes the
 *    single-server-change bug Ongaro described on raft-dev (2015): a leader must commit in its
 *    term before changing membership, or a stale uncommitted change from an earlier term could
 *    be overlapped by a disjoint one.
 * 3. A node does not campaign while it has committed but unapplied conf changes (`hup`), so a
 *    candidate never asks for votes under a configuration older than one it knows committed.
 *
 * A leader that removes itself keeps replicating until the removal is applied, then steps
 * down; the entry is committed by then, so a majority of the new configuration has it and
 * elects the next leader. Learners receive the log but their votes never count toward any
 * quorum and they never campaign; `addNode` promotes a learner (its progress is kept). As in
 * etcd, a node that believes it is a learner still answers vote requests: it may have been
 * promoted without having applied that yet, and refusing could block elections; a candidate
 * counts only the voters of its own configuration, so a learner's grant never decides one.
 *
 * @module
 */
import type { ConfChange, ConfChangeType, ConfState, Entry, HardState, NodeId } from "./types.ts";

const TYPE_CODES: Record<ConfChangeType, number> = {
  addNode: 1,
  addLearner: 2,
  removeNode: 3,
};
const CODE_TYPES: Record<number, ConfChangeType> = {
  1: "addNode",
  2: "addLearner",
  3: "removeNode",
};
const HEADER_BYTES = 9;

/** Whether `x` is a valid node id (positive safe integer). */
export function isNodeId(x: unknown): x is NodeId {
  return typeof x === "number" && Number.isSafeInteger(x) && x > 0;
}

/**
 * Returns the membership after applying `cc` to `cs`. Pure. Adding an existing member in the
 * same role or removing a non-member is a no-op. Throws if the result would have no voter or
 * if `cc` is malformed.
 */
export function applyChange(cs: ConfState, cc: ConfChange): ConfState {
  if (!isNodeId(cc.nodeId)) throw new Error(`conf change: invalid node id ${cc.nodeId}`);
  const voters = new Set(cs.voters);
  const learners = new Set(cs.learners);
  switch (cc.type) {
    case "addNode":
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
      break;
    case "addLearner":
      voters.delete(cc.nodeId);
      learners.add(cc.nodeId);
      break;
    case "removeNode":
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
      break;
    default:
      throw new Error(`conf change: unknown type ${String((cc as { type: unknown }).type)}`);
  }
  if (voters.size === 0) {
    throw new Error(`conf change ${cc.type} ${cc.nodeId} would remove all voters`);
  }
  return {
    voters: [...voters].sort((a, b) => a - b),
    learners: [...learners].sort((a, b) => a - b),
  };
}

/** Encodes a conf change as entry data: [type u8][nodeId f64 BE][context...]. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const ctx = cc.context ?? new Uint8Array(0);
  const out = new Uint8Array(HEADER_BYTES + ctx.byteLength);
  const code = TYPE_CODES[cc.type];
  if (code === undefined) throw new Error(`conf change: unknown type ${cc.type}`);
  if (!isNodeId(cc.nodeId)) throw new Error(`conf change: invalid node id ${cc.nodeId}`);
  out[0] = code;
  new DataView(out.buffer).setFloat64(1, cc.nodeId);
  out.set(ctx, HEADER_BYTES);
  return out;
}

/** Decodes entry data written by {@link encodeConfChange}; throws on malformed data. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.byteLength < HEADER_BYTES) {
    throw new Error(`conf change: ${data.byteLength} bytes, need at least ${HEADER_BYTES}`);
  }
  const type = CODE_TYPES[data[0] ?? 0];
  if (type === undefined) throw new Error(`conf change: unknown type code ${data[0]}`);
  const nodeId = new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(1);
  if (!isNodeId(nodeId)) throw new Error(`conf change: invalid node id ${nodeId}`);
  const cc: ConfChange = { type, nodeId };
  if (data.byteLength > HEADER_BYTES) cc.context = data.slice(HEADER_BYTES);
  return cc;
}

/**
 * Log entries and hard state that bootstrap a new cluster (etcd's `Bootstrap`): one committed
 * `addNode`/`addLearner` entry per initial member at term 1. Every initial member persists the
 * same entries before starting; a node joining later starts with empty storage and learns the
 * membership from the log (or a snapshot) once the leader adds it.
 */
export function bootstrapEntries(cs: ConfState): { entries: Entry[]; hardState: HardState } {
  if (cs.voters.length === 0) throw new Error("bootstrap: need at least one voter");
  const changes: ConfChange[] = [
    ...cs.voters.map((nodeId): ConfChange => ({ type: "addNode", nodeId })),
    ...cs.learners.map((nodeId): ConfChange => ({ type: "addLearner", nodeId })),
  ];
  const entries = changes.map((cc, i): Entry => ({
    term: 1,
    index: i + 1,
    type: "confChange",
    data: encodeConfChange(cc),
  }));
  return { entries, hardState: { term: 1, vote: 0, commit: entries.length } };
}
