/**
 * {@link RawNode}: the application's handle on a raft node (etcd's RawNode). See `mod.ts` for
 * the ready contract.
 *
 * @module
 */
import type { Config } from "./config.ts";
import { encodeConfChange } from "./confchange.ts";
import type { ProgressState } from "./progress.ts";
import { Raft } from "./raft.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ReadState,
  Snapshot,
  SnapshotStatus,
  SoftState,
} from "./types.ts";
import {
  hardStateEqual,
  invariant,
  isEmptyHardState,
  LOCAL_MESSAGE_TYPES,
  makeMessage,
  ProposalDroppedError,
} from "./types.ts";

/** Everything the application must do, in order; see `mod.ts`. */
export interface Ready {
  /** Changed leader or role; informational, never persisted. */
  softState?: SoftState;
  /** Hard state to persist (absent if unchanged). */
  hardState?: HardState;
  /** Linearizable read points that became ready (ReadIndex). */
  readStates: ReadState[];
  /** Entries to persist (append, truncating any conflicting suffix) before sending messages. */
  entries: Entry[];
  /** Snapshot to persist and apply to the state machine (absent if none). */
  snapshot?: Snapshot;
  /** Committed entries to apply to the state machine, in order. */
  committedEntries: Entry[];
  /** Messages to send after persisting. */
  messages: Message[];
  /** Whether persisting must be synced to disk (false if only the commit index changed). */
  mustSync: boolean;
}

/** Replication state of one peer, as seen by the leader. */
export interface PeerStatus {
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  isLearner: boolean;
  inflight: number;
}

/** A node's status snapshot. `progress` is present only on the leader. */
export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  leadTransferee: NodeId;
  config: ConfState;
  progress?: Map<NodeId, PeerStatus>;
}

const LOCAL = new Set<string>(LOCAL_MESSAGE_TYPES);
const RESPONSES = new Set<string>([
  "MsgAppResp",
  "MsgVoteResp",
  "MsgHeartbeatResp",
  "MsgPreVoteResp",
]);

/** The application-facing raft node. Construct it the same way to start or restart. */
export class RawNode {
  readonly raft: Raft;
  #prevSoft: SoftState;
  #prevHard: HardState;
  #pending: Ready | undefined = undefined;

  /**
   * Creates a node from `config`. On restart, `config.storage` holds the persisted hard state,
   * log and snapshot, and `config.applied` the last applied index.
   */
  constructor(config: Config) {
    this.raft = new Raft(config);
    this.#prevSoft = this.raft.softState();
    this.#prevHard = this.raft.hardState();
  }

  /** Advances the logical clock by one tick (election and heartbeat timeouts count ticks). */
  tick(): void {
    this.raft.tickFn(this.raft);
  }

  /** Starts an election now (PreVote first if enabled). */
  campaign(): void {
    this.raft.step(makeMessage({ type: "MsgHup", from: this.raft.id }));
  }

  /**
   * Proposes `data` for the log. Throws {@link ProposalDroppedError} if it is dropped; success
   * means only that it was accepted locally (or forwarded), not that it will commit.
   */
  propose(data: Uint8Array): void {
    this.raft.step(makeMessage({
      type: "MsgProp",
      from: this.raft.id,
      entries: [{ term: 0, index: 0, type: "normal", data }],
    }));
  }

  /**
   * Proposes a membership change. The leader refuses it (ProposalDroppedError) while another
   * change is pending. Once its entry is applied, call {@link applyConfChange}.
   */
  proposeConfChange(cc: ConfChange): void {
    this.raft.step(makeMessage({
      type: "MsgProp",
      from: this.raft.id,
      entries: [{ term: 0, index: 0, type: "confChange", data: encodeConfChange(cc) }],
    }));
  }

  /**
   * Feeds a message received from a peer (validate untrusted input with validateMessage first).
   * Responses from non-members are ignored; a forwarded proposal that cannot be accepted is
   * dropped silently (the proposer's client times out). Local message types throw.
   */
  step(m: Message): void {
    if (LOCAL.has(m.type)) throw new Error(`raft: cannot step local message ${m.type}`);
    if (RESPONSES.has(m.type) && !this.raft.trk.progress.has(m.from)) return;
    if (m.type === "MsgProp" && m.entries.length === 0) return;
    try {
      this.raft.step(m);
    } catch (e) {
      if (e instanceof ProposalDroppedError) return;
      throw e;
    }
  }

  /**
   * Requests a linearizable read point (Raft thesis §6.4). `context` must be unique per
   * request; the answer arrives in a later `ready().readStates` with the same context.
   * Silently dropped if no leader is known.
   */
  readIndex(context: Uint8Array): void {
    this.raft.step(makeMessage({ type: "MsgReadIndex", from: this.raft.id, context }));
  }

  /** Asks the leader to hand leadership to `to` (Raft thesis §3.10). */
  transferLeader(to: NodeId): void {
    this.raft.step(makeMessage({ type: "MsgTransferLeader", from: to }));
  }

  /** Applies a committed conf change entry (decoded); returns the new membership. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Reports that the last message to `id` could not be delivered. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(makeMessage({ type: "MsgUnreachable", from: id }));
  }

  /** Reports whether the snapshot sent to `id` was delivered ("finish") or not ("failure"). */
  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    this.raft.step(makeMessage({ type: "MsgSnapStatus", from: id, reject: status === "failure" }));
  }

  /** Whether {@link ready} would return something to do. False while a ready is unacknowledged. */
  hasReady(): boolean {
    if (this.#pending !== undefined) return false;
    const r = this.raft;
    r.flushAppends();
    const soft = r.softState();
    if (soft.lead !== this.#prevSoft.lead || soft.raftState !== this.#prevSoft.raftState) {
      return true;
    }
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.#prevHard)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.raftLog.unstableEntries().length > 0 || r.raftLog.hasNextEnts()) {
      return true;
    }
    return r.readStates.length > 0;
  }

  /**
   * Returns the work to do. The caller must finish it and call {@link advance} before calling
   * ready() again (throws otherwise). Other methods may be called in between.
   */
  ready(): Ready {
    invariant(this.#pending === undefined, "ready() called again before advance()");
    const r = this.raft;
    r.flushAppends();
    const rd: Ready = {
      readStates: r.readStates,
      entries: [...r.raftLog.unstableEntries()],
      committedEntries: r.raftLog.nextEnts(),
      messages: r.msgs,
      mustSync: false,
    };
    const soft = r.softState();
    if (soft.lead !== this.#prevSoft.lead || soft.raftState !== this.#prevSoft.raftState) {
      rd.softState = soft;
      this.#prevSoft = soft;
    }
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.#prevHard)) {
      rd.hardState = hs;
      rd.mustSync = hs.term !== this.#prevHard.term || hs.vote !== this.#prevHard.vote;
      this.#prevHard = hs;
    }
    const snap = r.raftLog.unstable.snapshot;
    if (snap !== undefined && snap.metadata.index !== 0) rd.snapshot = snap;
    if (rd.entries.length > 0 || rd.snapshot !== undefined) rd.mustSync = true;
    r.msgs = [];
    r.readStates = [];
    this.#pending = rd;
    return rd;
  }

  /**
   * Acknowledges the last ready: its entries, hard state and snapshot are persisted, its
   * messages sent and its committed entries applied.
   */
  advance(): void {
    const rd = this.#pending;
    invariant(rd !== undefined, "advance() without a ready()");
    this.#pending = undefined;
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    const snapIndex = rd.snapshot?.metadata.index ?? 0;
    const applied = lastCommitted?.index ?? snapIndex;
    this.raft.advance(
      applied,
      rd.committedEntries,
      rd.entries[rd.entries.length - 1],
      snapIndex,
    );
  }

  /** Current status; peers' progress only on the leader. */
  status(): Status {
    const r = this.raft;
    const s: Status = {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
      config: r.trk.confState(),
    };
    if (r.state === "leader") {
      const progress = new Map<NodeId, PeerStatus>();
      r.trk.visit((id, pr) => {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
          isLearner: pr.isLearner,
          inflight: pr.inflights.count(),
        });
      });
      s.progress = progress;
    }
    return s;
  }
}
