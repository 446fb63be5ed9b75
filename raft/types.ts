/**
 * Plain data types shared by every raft module. Everything here is a plain object made of
 * numbers, strings, booleans, arrays and `Uint8Array`s, so a message or an entry survives a
 * msgpack round trip unchanged.
 *
 * @module
 */

/** A node id: a positive integer. `NONE` (0) means "no node". */
export type NodeId = number;

/** The absent node id (no leader, no vote). */
export const NONE: NodeId = 0;

/** Kind of a log entry. `confChange` entries carry an encoded {@link ConfChange}. */
export type EntryType = "normal" | "confChange";

/** A log entry. Invariant: entries are immutable once created. */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** State that must be persisted before messages are sent (Raft §5, Figure 2 "persistent state"). */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** Membership: the voters and the learners (non-voting members that receive the log). */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** Describes the log prefix a snapshot replaces and the membership in force at its index. */
export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

/** An application snapshot plus the raft metadata needed to install it. */
export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

/** Kind of a single-server membership change. */
export type ConfChangeType = "addNode" | "addLearner" | "removeNode";

/** A single-server membership change, carried in a `confChange` entry. */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context?: Uint8Array;
}

/** Message types that travel between nodes. */
export const NETWORK_MESSAGE_TYPES = [
  "MsgProp",
  "MsgApp",
  "MsgAppResp",
  "MsgVote",
  "MsgVoteResp",
  "MsgPreVote",
  "MsgPreVoteResp",
  "MsgSnap",
  "MsgHeartbeat",
  "MsgHeartbeatResp",
  "MsgTransferLeader",
  "MsgTimeoutNow",
  "MsgReadIndex",
  "MsgReadIndexResp",
] as const;

/** Message types that only exist inside one node (never on the wire). */
export const LOCAL_MESSAGE_TYPES = [
  "MsgHup",
  "MsgBeat",
  "MsgCheckQuorum",
  "MsgUnreachable",
  "MsgSnapStatus",
] as const;

/** Every message type. */
export type MessageType =
  | typeof NETWORK_MESSAGE_TYPES[number]
  | typeof LOCAL_MESSAGE_TYPES[number];

/**
 * A raft message. All numeric fields are always present (0 when unused) so that messages have
 * one shape on the wire; `snapshot` and `context` are present only when used.
 *
 * - MsgApp: `index`/`logTerm` name the entry preceding `entries`; `commit` is the leader's commit.
 * - MsgAppResp: `index` is the last index appended (or the rejected index when `reject`);
 *   on reject, `rejectHint`/`logTerm` carry the conflict hint (etcd's findConflictByTerm).
 * - MsgVote/MsgPreVote: `index`/`logTerm` describe the candidate's last entry; `context` marks a
 *   leadership-transfer campaign.
 * - MsgHeartbeat: `commit` is min(follower match, leader commit); `context` is a ReadIndex ctx.
 * - MsgReadIndex/MsgReadIndexResp: `context` is the request ctx; the response carries `index`.
 * - MsgSnapStatus (local): `reject` true when sending the snapshot failed.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  snapshot?: Snapshot;
  context?: Uint8Array;
}

/** Role of a node. */
export type StateType = "follower" | "preCandidate" | "candidate" | "leader";

/** Volatile state useful to the application (leader id, own role). Never persisted. */
export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

/**
 * A linearizable read point (Raft thesis §6.4): once the application has applied up to `index`,
 * reading its state machine is linearizable for the request identified by `requestCtx`.
 */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

/** Whether a snapshot sent by the application reached its destination. */
export type SnapshotStatus = "finish" | "failure";

/** ReadIndex mode: "safe" confirms leadership by a heartbeat round; "lease-based" relies on clocks. */
export type ReadOnlyOption = "safe" | "lease-based";

/** Builds a message with every numeric field zeroed; `fields` override. */
export function makeMessage(
  fields: Partial<Message> & Pick<Message, "type">,
): Message {
  return {
    from: NONE,
    to: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

/** The empty hard state of a fresh node. */
export const EMPTY_HARD_STATE: Readonly<HardState> = Object.freeze({
  term: 0,
  vote: NONE,
  commit: 0,
});

/** Whether `hs` is the empty hard state. */
export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

/** Whether two hard states are equal. */
export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Whether `s` is the empty snapshot (index 0). */
export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

/** An empty snapshot: index 0, term 0, no members. */
export function emptySnapshot(confState?: ConfState): Snapshot {
  return {
    metadata: {
      index: 0,
      term: 0,
      confState: confState ?? { voters: [], learners: [] },
    },
    data: new Uint8Array(0),
  };
}

/** Thrown when a broken invariant is detected. Never caught inside raft. */
export class RaftInvariantError extends Error {
  constructor(message: string) {
    super(`raft: invariant broken: ${message}`);
    this.name = "RaftInvariantError";
  }
}

/** Throws a {@link RaftInvariantError} unless `cond` holds. */
export function invariant(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) {
    throw new RaftInvariantError(typeof message === "string" ? message : message());
  }
}

/**
 * Thrown by `propose()`, `proposeConfChange()` (and swallowed for forwarded proposals) when a
 * proposal is dropped: no known leader, forwarding disabled, a leadership transfer in flight,
 * the uncommitted-size cap reached, a conf change already pending, or this node was removed.
 */
export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(`raft proposal dropped: ${reason}`);
    this.name = "ProposalDroppedError";
  }
}
