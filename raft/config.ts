/**
 * Node configuration with documented defaults and validation.
 *
 * @module
 */
import type { Storage } from "./storage.ts";
import type { NodeId, ReadOnlyOption } from "./types.ts";

/** Configuration of a raft node. */
export interface Config {
  /** This node's id, a positive integer. */
  id: NodeId;
  /** Persisted log; on restart raft reads hard state, membership and log from it. */
  storage: Storage;
  /**
   * Ticks a follower waits without hearing from a leader before campaigning. The actual
   * timeout is randomized in [electionTick, 2*electionTick) (Raft §5.2). Default 10.
   */
  electionTick?: number;
  /** Ticks between leader heartbeats. Must be < electionTick. Default 1. */
  heartbeatTick?: number;
  /**
   * Random source: returns an integer in [0, n). Required: raft never uses Math.random, so
   * the simulator can replay a seed exactly.
   */
  random: (n: number) => number;
  /** Raft thesis §9.6 PreVote: probe electability before bumping the term. Default false. */
  preVote?: boolean;
  /**
   * Raft thesis §6.2: a leader steps down when it has not heard from a quorum within an election
   * timeout, and followers ignore vote requests while their leader's lease holds. Default false.
   */
  checkQuorum?: boolean;
  /** Byte limit of one MsgApp (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Byte limit of committed entries returned by one ready(). Default maxSizePerMsg. */
  maxCommittedSizePerReady?: number;
  /** Max unacknowledged MsgApps per follower in replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Max unacknowledged payload bytes per follower; 0 = unlimited. Default 0. */
  maxInflightBytes?: number;
  /**
   * Max payload bytes of uncommitted entries on the leader; proposals beyond it are dropped.
   * 0 = unlimited. Default 0.
   */
  maxUncommittedEntriesSize?: number;
  /** ReadIndex mode. "lease-based" requires checkQuorum. Default "safe". */
  readOnlyOption?: ReadOnlyOption;
  /** Followers drop proposals instead of forwarding them to the leader. Default false. */
  disableProposalForwarding?: boolean;
  /**
   * Last index the application applied (on restart). Entries after it are returned again as
   * committed entries. Storage's ConfState must be the membership as of this index. Default 0.
   */
  applied?: number;
}

/** A {@link Config} with every default filled in. */
export type ResolvedConfig = Required<Config>;

/** Fills defaults and validates; throws a clear Error on a bad config. */
export function resolveConfig(c: Config): ResolvedConfig {
  const maxSizePerMsg = c.maxSizePerMsg ?? 1024 * 1024;
  const r: ResolvedConfig = {
    id: c.id,
    storage: c.storage,
    electionTick: c.electionTick ?? 10,
    heartbeatTick: c.heartbeatTick ?? 1,
    random: c.random,
    preVote: c.preVote ?? false,
    checkQuorum: c.checkQuorum ?? false,
    maxSizePerMsg,
    maxCommittedSizePerReady: c.maxCommittedSizePerReady ?? maxSizePerMsg,
    maxInflightMsgs: c.maxInflightMsgs ?? 256,
    maxInflightBytes: c.maxInflightBytes ?? 0,
    maxUncommittedEntriesSize: c.maxUncommittedEntriesSize ?? 0,
    readOnlyOption: c.readOnlyOption ?? "safe",
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    applied: c.applied ?? 0,
  };
  const positiveInt = (name: string, v: number) => {
    if (!Number.isSafeInteger(v) || v <= 0) {
      throw new Error(`raft config: ${name} must be a positive integer, got ${v}`);
    }
  };
  const nonNegInt = (name: string, v: number) => {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new Error(`raft config: ${name} must be a non-negative integer, got ${v}`);
    }
  };
  positiveInt("id", r.id);
  positiveInt("electionTick", r.electionTick);
  positiveInt("heartbeatTick", r.heartbeatTick);
  if (r.heartbeatTick >= r.electionTick) {
    throw new Error(
      `raft config: heartbeatTick (${r.heartbeatTick}) must be < electionTick (${r.electionTick})`,
    );
  }
  positiveInt("maxSizePerMsg", r.maxSizePerMsg);
  positiveInt("maxCommittedSizePerReady", r.maxCommittedSizePerReady);
  positiveInt("maxInflightMsgs", r.maxInflightMsgs);
  nonNegInt("maxInflightBytes", r.maxInflightBytes);
  nonNegInt("maxUncommittedEntriesSize", r.maxUncommittedEntriesSize);
  nonNegInt("applied", r.applied);
  if (typeof r.random !== "function") {
    throw new Error("raft config: random must be a function (n) => integer in [0, n)");
  }
  if (r.storage === undefined) throw new Error("raft config: storage is required");
  if (r.readOnlyOption !== "safe" && r.readOnlyOption !== "lease-based") {
    throw new Error(`raft config: readOnlyOption must be "safe" or "lease-based"`);
  }
  if (r.readOnlyOption === "lease-based" && !r.checkQuorum) {
    throw new Error("raft config: readOnlyOption lease-based requires checkQuorum");
  }
  return r;
}
