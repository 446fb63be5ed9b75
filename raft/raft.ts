/**
 * The raft state machine (etcd's `raft` struct): every input — ticks included — is a message to
 * {@link Raft.step}; roles swap the `stepFn`/`tickFn` handlers. Outputs accumulate in `msgs`,
 * the log's unstable part and `readStates`, and are drained by {@link RawNode}.
 *
 * Sections cited are from the Raft paper (§5–§8) and Ongaro's thesis (§3.10 transfer, §4 membership,
 * §6.2 CheckQuorum, §6.4 ReadIndex, §9.6 PreVote).
 *
 * Longer than our usual ~500 lines on purpose, like etcd's raft.go: the role step functions
 * and the state they drive are read together; the pure parts live in their own modules.
 *
 * @module
 */
import { type Config, resolveConfig } from "./config.ts";
import { applyChange, decodeConfChange } from "./confchange.ts";
import { RaftLog } from "./log.ts";
import type { Progress } from "./progress.ts";
import { ReadOnly } from "./read_only.ts";
import {
  CompactedError,
  SnapshotTemporarilyUnavailableError,
  UnavailableError,
} from "./storage.ts";
import { ProgressTracker } from "./tracker.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Snapshot,
  SoftState,
  StateType,
} from "./types.ts";
import { invariant, isEmptyHardState, makeMessage, NONE, ProposalDroppedError } from "./types.ts";
import { payloadsSize } from "./util.ts";

type CampaignType = "preElection" | "election" | "transfer";

/** Context marking a vote request as a leadership transfer (Raft thesis §3.10). */
export const CAMPAIGN_TRANSFER_CTX: Uint8Array = new TextEncoder().encode("CampaignTransfer");

function isCampaignTransfer(ctx: Uint8Array | undefined): boolean {
  if (ctx === undefined || ctx.byteLength !== CAMPAIGN_TRANSFER_CTX.byteLength) return false;
  for (let i = 0; i < ctx.byteLength; i++) if (ctx[i] !== CAMPAIGN_TRANSFER_CTX[i]) return false;
  return true;
}

function voteRespType(t: MessageType): MessageType {
  if (t === "MsgVote") return "MsgVoteResp";
  if (t === "MsgPreVote") return "MsgPreVoteResp";
  throw new Error(`not a vote message: ${t}`);
}

type StepFn = (r: Raft, m: Message) => void;

/** The consensus core. Not thread-safe; driven by one caller. */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  trk: ProgressTracker;
  state: StateType = "follower";
  /** Whether this node is a learner in its own (applied) configuration. */
  isLearner = false;
  msgs: Message[] = [];
  lead: NodeId = NONE;
  /** Target of an in-flight leadership transfer (Raft thesis §3.10), or NONE. */
  leadTransferee: NodeId = NONE;
  /**
   * Index of the latest conf change entry the leader may have in its log. A new conf change is
   * refused while pendingConfIndex > applied (one change at a time, see confchange.ts).
   */
  pendingConfIndex = 0;
  /** Payload bytes of uncommitted entries in the leader's log (estimate, bounded). */
  uncommittedSize = 0;
  readOnly: ReadOnly;
  /** Ticks since the last election timeout reset (or, for the leader, since last CheckQuorum). */
  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  /** Randomized in [electionTimeout, 2*electionTimeout) at every term change (Raft §5.2). */
  randomizedElectionTimeout = 0;
  readonly disableProposalForwarding: boolean;
  readonly random: (n: number) => number;
  /** Proposals were appended but not yet sent to followers (flushed by flushAppends). */
  appendsPending = false;
  /** ReadIndex requests that arrived before the leader committed an entry of its term. */
  pendingReadIndexMessages: Message[] = [];
  tickFn: (r: Raft) => void = tickElection;
  stepFn: StepFn = stepFollower;

  constructor(config: Config) {
    const c = resolveConfig(config);
    this.id = c.id;
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady);
    this.maxMsgSize = c.maxSizePerMsg;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize === 0
      ? Infinity
      : c.maxUncommittedEntriesSize;
    this.trk = new ProgressTracker(c.maxInflightMsgs, c.maxInflightBytes);
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.readOnly = new ReadOnly(c.readOnlyOption);
    this.disableProposalForwarding = c.disableProposalForwarding;
    this.random = c.random;

    const { hardState, confState } = c.storage.initialState();
    this.trk.applyConfState(confState, this.raftLog.lastIndex());
    this.#switchToConfig();
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);
  }

  // ---- state accessors -------------------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  /** Restores persisted state. Invariant: the persisted commit lies within the persisted log. */
  loadState(hs: HardState): void {
    invariant(
      hs.commit >= this.raftLog.committed && hs.commit <= this.raftLog.lastIndex(),
      () =>
        `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
    );
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /** Whether this node may become leader: a voter in its own configuration. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  resetRandomizedElectionTimeout(): void {
    const n = this.random(this.electionTimeout);
    invariant(
      Number.isInteger(n) && n >= 0 && n < this.electionTimeout,
      () => `random(${this.electionTimeout}) returned ${n}, want an integer in [0, n)`,
    );
    this.randomizedElectionTimeout = this.electionTimeout + n;
  }

  /** Sends the appends deferred by proposals (see stepLeader's MsgProp). */
  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.state !== "leader") return;
    this.trk.visit((id) => {
      if (id !== this.id) this.maybeSendAppend(id, false);
    });
  }

  /** Drains outgoing messages (tests; RawNode drains via ready()). */
  readMessages(): Message[] {
    this.flushAppends();
    const m = this.msgs;
    this.msgs = [];
    return m;
  }

  // ---- sending ---------------------------------------------------------------------------

  /** Queues `m`, stamping `from` and (except for votes and proposals) the current term. */
  send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    if (
      m.type === "MsgVote" || m.type === "MsgVoteResp" || m.type === "MsgPreVote" ||
      m.type === "MsgPreVoteResp"
    ) {
      // Vote messages carry the term they are for (a PreVote's is term+1), never implied.
      invariant(m.term !== 0, () => `term should be set when sending ${m.type}`);
    } else {
      invariant(
        m.term === 0,
        () => `term should not be set when sending ${m.type} (was ${m.term})`,
      );
      // Proposals and read requests are forwarded as-is; they are not bound to a term.
      if (m.type !== "MsgProp" && m.type !== "MsgReadIndex") m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends an append (or snapshot) to `to` even if it carries no entries. */
  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends `to` the entries after its `next`, or a snapshot if they were compacted. Returns
   * whether a message was sent. Raft §5.3.
   */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    let term = 0;
    let ents: Entry[] = [];
    let compacted = false;
    try {
      term = this.raftLog.term(pr.next - 1);
      ents = this.raftLog.entries(pr.next, this.maxMsgSize);
    } catch (e) {
      if (!(e instanceof CompactedError || e instanceof UnavailableError)) throw e;
      compacted = true;
    }
    if (!compacted && ents.length === 0 && !sendIfEmpty) return false;
    if (compacted) return this.#maybeSendSnapshot(to, pr);
    const m = makeMessage({
      type: "MsgApp",
      to,
      index: pr.next - 1,
      logTerm: term,
      entries: ents,
      commit: this.raftLog.committed,
    });
    const last = ents[ents.length - 1];
    if (last !== undefined) {
      switch (pr.state) {
        case "replicate":
          pr.optimisticUpdate(last.index);
          pr.inflights.add(last.index, payloadsSize(ents));
          break;
        case "probe":
          pr.probeSent = true;
          break;
        default:
          invariant(false, () => `${this.id} sending append in unhandled state ${pr.state}`);
      }
    }
    this.send(m);
    return true;
  }

  /** An append without entries at the peer's next-1, bypassing flow control. */
  sendEmptyAppend(to: NodeId, pr: Progress): void {
    if (pr.next - 1 < this.raftLog.firstIndex() - 1) {
      // The entry before next is compacted: restart probing (which sends a snapshot).
      pr.becomeProbe();
      this.sendAppend(to);
      return;
    }
    let term: number;
    try {
      term = this.raftLog.term(pr.next - 1);
    } catch (e) {
      if (!(e instanceof CompactedError || e instanceof UnavailableError)) throw e;
      return;
    }
    this.send(makeMessage({
      type: "MsgApp",
      to,
      index: pr.next - 1,
      logTerm: term,
      commit: this.raftLog.committed,
    }));
  }

  #maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    let snapshot: Snapshot;
    try {
      snapshot = this.raftLog.snapshot();
    } catch (e) {
      if (e instanceof SnapshotTemporarilyUnavailableError) return false;
      throw e;
    }
    invariant(snapshot.metadata.index !== 0, "need non-empty snapshot");
    pr.becomeSnapshot(snapshot.metadata.index);
    this.send(makeMessage({ type: "MsgSnap", to, snapshot }));
    return true;
  }

  /** Heartbeat to `to`; commit is capped at the follower's match so it never commits beyond its log. */
  sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to);
    const commit = Math.min(pr?.match ?? 0, this.raftLog.committed);
    const m = makeMessage({ type: "MsgHeartbeat", to, commit });
    if (ctx !== undefined) m.context = ctx;
    this.send(m);
  }

  bcastAppend(): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  // ---- applying --------------------------------------------------------------------------

  /**
   * Called after the application persisted and applied a ready: `appliedIndex` is the last
   * applied index, `stable` the last persisted entry, `snapIndex` a persisted snapshot.
   */
  advance(
    appliedIndex: number,
    committedApplied: readonly Entry[],
    stable: Entry | undefined,
    snapIndex: number,
  ): void {
    this.reduceUncommittedSize(committedApplied);
    if (appliedIndex > 0) this.raftLog.appliedTo(appliedIndex);
    if (stable !== undefined) this.raftLog.stableTo(stable.index, stable.term);
    if (snapIndex > 0) this.raftLog.stableSnapTo(snapIndex);
  }

  /** Raft §5.3/§5.4.2: advances commit to the quorum-replicated index if it is of this term. */
  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  /** Resets per-term volatile state; a new term clears the vote. */
  reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    this.trk.visit((id, pr) => {
      pr.inflights.reset();
      pr.state = "probe";
      pr.probeSent = false;
      pr.pendingSnapshot = 0;
      pr.recentActive = false;
      pr.match = id === this.id ? last : 0;
      pr.next = last + 1;
    });
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly(this.readOnly.option);
    this.pendingReadIndexMessages = [];
  }

  /**
   * Leader: assigns term and indexes to new entries and appends them. Returns false (appending
   * nothing) if the uncommitted-size cap would be exceeded.
   */
  appendEntry(es: readonly Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    // Copy: entries may arrive in a message object that is shared (or delivered twice).
    const ents = es.map((e, i): Entry => ({
      term: this.term,
      index: li + 1 + i,
      type: e.type,
      data: e.data,
    }));
    if (!this.increaseUncommittedSize(ents)) return false;
    const newLast = this.raftLog.append(ents);
    const self = this.trk.progress.get(this.id);
    invariant(self !== undefined, "leader appending without own progress");
    self.maybeUpdate(newLast);
    this.maybeCommit();
    return true;
  }

  increaseUncommittedSize(ents: readonly Entry[]): boolean {
    const s = payloadsSize(ents);
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) {
      return false;
    }
    this.uncommittedSize += s;
    return true;
  }

  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.uncommittedSize === 0) return;
    const s = payloadsSize(ents);
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  // ---- role transitions ------------------------------------------------------------------

  becomeFollower(term: number, lead: NodeId): void {
    this.stepFn = stepFollower;
    this.reset(term);
    this.tickFn = tickElection;
    this.lead = lead;
    this.state = "follower";
  }

  becomeCandidate(): void {
    invariant(this.state !== "leader", "invalid transition [leader -> candidate]");
    this.stepFn = stepCandidate;
    this.reset(this.term + 1);
    this.tickFn = tickElection;
    this.vote = this.id;
    this.state = "candidate";
  }

  /** Thesis §9.6: a pre-candidate keeps its term and vote; it only polls electability. */
  becomePreCandidate(): void {
    invariant(this.state !== "leader", "invalid transition [leader -> pre-candidate]");
    this.stepFn = stepCandidate;
    this.trk.resetVotes();
    this.tickFn = tickElection;
    this.lead = NONE;
    this.state = "preCandidate";
  }

  /** Raft §5.2/§8: a new leader appends an empty entry of its term to commit earlier ones. */
  becomeLeader(): void {
    invariant(this.state !== "follower", "invalid transition [follower -> leader]");
    this.stepFn = stepLeader;
    this.reset(this.term);
    this.tickFn = tickHeartbeat;
    this.lead = this.id;
    this.state = "leader";
    const self = this.trk.progress.get(this.id);
    invariant(self !== undefined, "leader without own progress");
    // Our own log is authoritative: replicate state, no probing needed.
    self.becomeReplicate();
    // No conf change until everything in our log, including an uncommitted conf change from an
    // earlier term, is committed and applied (confchange.ts rule 2).
    this.pendingConfIndex = this.raftLog.lastIndex();
    const ok = this.appendEntry([{ term: 0, index: 0, type: "normal", data: new Uint8Array(0) }]);
    invariant(ok, "empty entry was dropped");
  }

  /** Starts an election (or pre-election) unless a committed conf change awaits application. */
  hup(t: CampaignType): void {
    if (this.state === "leader") return;
    if (!this.promotable()) return;
    if (this.raftLog.committed > this.raftLog.applied) {
      const ents = this.raftLog.slice(
        Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex()),
        this.raftLog.committed + 1,
        Infinity,
      );
      if (ents.some((e) => e.type === "confChange")) return; // confchange.ts rule 3
    }
    this.campaign(t);
  }

  campaign(t: CampaignType): void {
    let voteType: MessageType;
    let term: number;
    if (t === "preElection") {
      this.becomePreCandidate();
      voteType = "MsgPreVote";
      // PreVote asks for the term we would use, without incrementing ours (thesis §9.6).
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = "MsgVote";
      term = this.term;
    }
    if (this.poll(this.id, true) === "won") {
      // Single voter: won immediately.
      if (t === "preElection") this.campaign("election");
      else this.becomeLeader();
      return;
    }
    for (const id of this.trk.voterIds()) {
      if (id === this.id) continue;
      const m = makeMessage({
        type: voteType,
        to: id,
        term,
        index: this.raftLog.lastIndex(),
        logTerm: this.raftLog.lastTerm(),
      });
      if (t === "transfer") m.context = CAMPAIGN_TRANSFER_CTX;
      this.send(m);
    }
  }

  /** Records `id`'s vote and returns the election outcome so far. */
  poll(id: NodeId, granted: boolean): "pending" | "lost" | "won" {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---- the one entry point ---------------------------------------------------------------

  /** Processes one message (network or local). Throws ProposalDroppedError for a dropped MsgProp. */
  step(m: Message): void {
    if (m.term === 0) {
      // Local message (or a proposal/read request, which carry no term).
    } else if (m.term > this.term) {
      if (m.type === "MsgVote" || m.type === "MsgPreVote") {
        const force = isCampaignTransfer(m.context);
        const inLease = this.checkQuorum && this.lead !== NONE &&
          this.electionElapsed < this.electionTimeout;
        // Thesis §4.2.3/§6.2: while we hear from a live leader, ignore disruptive candidates.
        if (!force && inLease) return;
      }
      if (m.type === "MsgPreVote") {
        // Never change our term in response to a PreVote.
      } else if (m.type === "MsgPreVoteResp" && !m.reject) {
        // A granted pre-vote carries our future term; the term moves when the quorum is reached.
      } else if (m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgSnap") {
        // Raft §5.1: a higher term makes us a follower of the sender.
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.checkQuorum || this.preVote) && (m.type === "MsgHeartbeat" || m.type === "MsgApp")
      ) {
        // A stale leader (e.g. after a partition) would otherwise never learn our term; with
        // CheckQuorum/PreVote we do not bump terms on its vote requests, so answer here.
        this.send(makeMessage({ type: "MsgAppResp", to: m.from }));
      } else if (m.type === "MsgVote" || m.type === "MsgPreVote") {
        // Raft §5.1, Figure 2: reject, telling the (pre-)candidate our term. It cannot rely on
        // hearing it otherwise: when configurations differ (one applied a change the other has
        // not) we may campaign toward voters that exclude it, and it would never catch up.
        this.send(
          makeMessage({ type: voteRespType(m.type), to: m.from, term: this.term, reject: true }),
        );
      }
      // Raft §5.1: otherwise ignore messages from stale terms.
      return;
    }

    switch (m.type) {
      case "MsgHup":
        this.hup(this.preVote ? "preElection" : "election");
        return;
      case "MsgVote":
      case "MsgPreVote": {
        // Raft §5.2/§5.4.1: one vote per term, only for an at-least-as-up-to-date log.
        const canVote = this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === "MsgPreVote" && m.term > this.term);
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          // A granted vote carries the candidate's term: for a PreVote it is our future term.
          this.send(makeMessage({ type: voteRespType(m.type), to: m.from, term: m.term }));
          if (m.type === "MsgVote") {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(
            makeMessage({ type: voteRespType(m.type), to: m.from, term: this.term, reject: true }),
          );
        }
        return;
      }
      default:
        this.stepFn(this, m);
    }
  }

  // ---- follower-side handlers ------------------------------------------------------------

  /** Raft §5.3 AppendEntries receiver, with etcd's conflict hint on rejection. */
  handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit matches the leader's log (§5.4); tell it where we are.
      this.send(makeMessage({ type: "MsgAppResp", to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(makeMessage({ type: "MsgAppResp", to: m.from, index: lastNew }));
      return;
    }
    // Reject, hinting the largest index whose term is <= the leader's prev term, so the
    // leader can skip a whole term of conflicting entries in one round trip.
    const hint = Math.min(m.index, this.raftLog.lastIndex());
    const [hintIndex, hintTerm] = this.raftLog.findConflictByTerm(hint, m.logTerm);
    this.send(makeMessage({
      type: "MsgAppResp",
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: hintTerm,
    }));
  }

  handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    const resp = makeMessage({ type: "MsgHeartbeatResp", to: m.from });
    if (m.context !== undefined) resp.context = m.context;
    this.send(resp);
  }

  /** Raft §7 InstallSnapshot receiver. */
  handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === undefined) return;
    if (this.restore(s)) {
      this.send(makeMessage({ type: "MsgAppResp", to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.send(makeMessage({ type: "MsgAppResp", to: m.from, index: this.raftLog.committed }));
    }
  }

  /**
   * Installs snapshot `s` if it is newer than our commit and our log does not already contain
   * its last entry. Returns whether it was installed.
   */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== "follower") {
      // Defense in depth: only a follower installs snapshots. Step down and retry later.
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    // Unlike etcd we accept a snapshot whose membership lacks us: a node removed and re-added
    // after the leader's latest snapshot would otherwise never catch up. It simply is not
    // promotable until it applies the later entry that re-adds it.
    const cs = s.metadata.confState;
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // Raft §7: our log already has the snapshot's last entry; keep the suffix, fast-forward.
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    this.trk = new ProgressTracker(this.trk.maxInflight, this.trk.maxInflightBytes);
    this.trk.applyConfState(cs, this.raftLog.lastIndex());
    this.#switchToConfig();
    return true;
  }

  // ---- membership --------------------------------------------------------------------------

  /** Applies a committed conf change (called by the application); returns the new membership. */
  applyConfChange(cc: ConfChange): ConfState {
    const cs = applyChange(this.trk.confState(), cc);
    this.trk.applyConfState(cs, this.raftLog.lastIndex());
    return this.#switchToConfig();
  }

  #switchToConfig(): ConfState {
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr !== undefined && pr.isLearner;
    if ((pr === undefined || this.isLearner) && this.state === "leader") {
      // Removed or demoted leader: the change is committed (it was applied), so step down;
      // a majority of the new configuration holds the log and elects the next leader.
      this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.state !== "leader" || cs.voters.length === 0) return cs;
    // The quorum changed: commit may advance (e.g. a slow voter was removed).
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      this.trk.visit((id) => {
        if (id !== this.id) this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== NONE && !this.trk.voters.has(this.leadTransferee)) {
      this.abortLeaderTransfer();
    }
    return cs;
  }

  // ---- leader helpers ----------------------------------------------------------------------

  sendTimeoutNow(to: NodeId): void {
    this.send(makeMessage({ type: "MsgTimeoutNow", to }));
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  /** Thesis §6.4: a leader serves reads only after committing an entry of its own term. */
  committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  /** Answers a ReadIndex request at `readIndex`: a local read state, or a response message. */
  responseToReadIndexReq(req: Message, readIndex: number): Message | undefined {
    const ctx = req.context ?? new Uint8Array(0);
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: ctx });
      return undefined;
    }
    return makeMessage({ type: "MsgReadIndexResp", to: req.from, index: readIndex, context: ctx });
  }

  sendReadIndexResponse(m: Message): void {
    if (this.readOnly.option === "safe") {
      // Thesis §6.4 step 3: confirm leadership with a heartbeat round carrying the ctx.
      const ctx = m.context ?? new Uint8Array(0);
      this.readOnly.addRequest(this.raftLog.committed, m);
      this.readOnly.recvAck(this.id, ctx);
      this.bcastHeartbeatWithCtx(ctx);
    } else {
      // Thesis §6.4.1: lease-based, trusting bounded clock drift and CheckQuorum.
      const resp = this.responseToReadIndexReq(m, this.raftLog.committed);
      if (resp !== undefined) this.send(resp);
    }
  }

  releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexResponse(m);
  }
}

// ---- ticks -------------------------------------------------------------------------------

/** Follower/candidate tick: campaign after a randomized election timeout (Raft §5.2). */
function tickElection(r: Raft): void {
  r.electionElapsed++;
  if (r.promotable() && r.pastElectionTimeout()) {
    r.electionElapsed = 0;
    r.step(makeMessage({ type: "MsgHup", from: r.id }));
  }
}

/** Leader tick: heartbeats, CheckQuorum every election timeout, transfer timeout. */
function tickHeartbeat(r: Raft): void {
  r.heartbeatElapsed++;
  r.electionElapsed++;
  if (r.electionElapsed >= r.electionTimeout) {
    r.electionElapsed = 0;
    if (r.checkQuorum) r.step(makeMessage({ type: "MsgCheckQuorum", from: r.id }));
    // Thesis §3.10: abort a transfer that did not complete within an election timeout.
    if (r.state === "leader" && r.leadTransferee !== NONE) r.abortLeaderTransfer();
  }
  if (r.state !== "leader") return;
  if (r.heartbeatElapsed >= r.heartbeatTimeout) {
    r.heartbeatElapsed = 0;
    r.step(makeMessage({ type: "MsgBeat", from: r.id }));
  }
}

// ---- role step functions -------------------------------------------------------------------

function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case "MsgBeat":
      r.bcastHeartbeat();
      return;
    case "MsgCheckQuorum": {
      // Thesis §6.2: step down if a quorum was not heard from during the last election timeout.
      const self = r.trk.progress.get(r.id);
      if (self !== undefined) self.recentActive = true;
      if (!r.trk.quorumActive()) {
        r.becomeFollower(r.term, NONE);
        return;
      }
      r.trk.visit((id, pr) => {
        if (id !== r.id) pr.recentActive = false;
      });
      return;
    }
    case "MsgProp": {
      invariant(m.entries.length > 0, `${r.id} stepped empty MsgProp`);
      if (!r.trk.progress.has(r.id)) {
        throw new ProposalDroppedError("this node is no longer a member");
      }
      if (r.leadTransferee !== NONE) {
        throw new ProposalDroppedError(`leadership transfer to ${r.leadTransferee} in progress`);
      }
      let pendingConf = r.pendingConfIndex;
      const last = r.raftLog.lastIndex();
      for (let i = 0; i < m.entries.length; i++) {
        const e = m.entries[i] as Entry;
        if (e.type !== "confChange") continue;
        // One membership change at a time (confchange.ts rule 1).
        if (pendingConf > r.raftLog.applied) {
          throw new ProposalDroppedError(
            `conf change pending at ${pendingConf} (applied ${r.raftLog.applied})`,
          );
        }
        try {
          applyChange(r.trk.confState(), decodeConfChange(e.data));
        } catch (err) {
          throw new ProposalDroppedError(`invalid conf change: ${(err as Error).message}`);
        }
        pendingConf = last + i + 1;
      }
      if (!r.appendEntry(m.entries)) {
        throw new ProposalDroppedError("too many uncommitted bytes (maxUncommittedEntriesSize)");
      }
      r.pendingConfIndex = pendingConf;
      // Batching: appends go out when the application next collects messages, so every
      // proposal stepped in between travels in one MsgApp per follower.
      r.appendsPending = true;
      return;
    }
    case "MsgReadIndex": {
      if (r.trk.isSingleton()) {
        const resp = r.responseToReadIndexReq(m, r.raftLog.committed);
        if (resp !== undefined) r.send(resp);
        return;
      }
      // Thesis §6.4 step 1: wait until an entry of this term is committed.
      if (!r.committedEntryInCurrentTerm()) {
        r.pendingReadIndexMessages.push(m);
        return;
      }
      r.sendReadIndexResponse(m);
      return;
    }
  }

  const pr = r.trk.progress.get(m.from);
  if (pr === undefined) return; // Not (or no longer) a member.
  switch (m.type) {
    case "MsgAppResp": {
      pr.recentActive = true;
      if (m.reject) {
        let nextProbe = m.rejectHint;
        if (m.logTerm > 0) {
          // The follower's log has term m.logTerm at rejectHint: skip to our last entry with a
          // term <= that one; everything after it cannot match.
          nextProbe = r.raftLog.findConflictByTerm(m.rejectHint, m.logTerm)[0];
        }
        if (pr.maybeDecrTo(m.index, nextProbe)) {
          if (pr.state === "replicate") pr.becomeProbe();
          r.sendAppend(m.from);
        }
        return;
      }
      const oldPaused = pr.isPaused();
      // An ack of exactly `match` still ends probing: the peer's log matches ours up to there
      // (e.g. a caught-up peer probed after reportUnreachable answers the empty probe so).
      const probeAnswered = pr.state === "probe" && m.index === pr.match;
      if (!pr.maybeUpdate(m.index) && !probeAnswered) return;
      if (pr.state === "probe") {
        pr.becomeReplicate();
      } else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) {
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === "replicate") {
        pr.inflights.freeLE(m.index);
      }
      if (r.maybeCommit()) {
        r.releasePendingReadIndexMessages();
        r.bcastAppend();
      } else if (oldPaused) {
        r.sendAppend(m.from);
      }
      // Flow control may allow several more (size-limited) messages now.
      while (r.maybeSendAppend(m.from, false)) { /* keep sending */ }
      // Thesis §3.10: the transferee caught up; let it campaign now.
      if (m.from === r.leadTransferee && pr.match === r.raftLog.lastIndex()) {
        r.sendTimeoutNow(m.from);
      }
      return;
    }
    case "MsgHeartbeatResp": {
      pr.recentActive = true;
      pr.probeSent = false;
      // A peer in probe state gets an append even when caught up: its answer is what moves it
      // back to replicate (after reportUnreachable it would otherwise stay in probe until the
      // next proposal). A snapshot-state peer is paused, so nothing is sent to it.
      if (pr.match < r.raftLog.lastIndex() || pr.state === "probe") {
        if (pr.state === "replicate" && pr.inflights.full()) {
          // Every append filling the window may have been lost. An empty append at next-1
          // acts as a probe: an ack frees the window, a rejection falls back to probing.
          r.sendEmptyAppend(m.from, pr);
        } else {
          r.sendAppend(m.from);
        }
      }
      if (r.readOnly.option !== "safe" || m.context === undefined || m.context.byteLength === 0) {
        return;
      }
      const acks = r.readOnly.recvAck(m.from, m.context);
      if (acks === undefined) return;
      if (r.trk.tallyAcks(acks) !== "won") return;
      for (const rs of r.readOnly.advance(m.context)) {
        const resp = r.responseToReadIndexReq(rs.req, rs.index);
        if (resp !== undefined) r.send(resp);
      }
      return;
    }
    case "MsgSnapStatus":
      if (pr.state !== "snapshot") return;
      if (m.reject) pr.pendingSnapshot = 0;
      pr.becomeProbe();
      // Wait for a heartbeat response (or the MsgAppResp of the snapshot) before probing.
      pr.probeSent = true;
      return;
    case "MsgUnreachable":
      // The last MsgApp may be lost; go back to probing.
      if (pr.state === "replicate") pr.becomeProbe();
      return;
    case "MsgTransferLeader": {
      if (pr.isLearner) return; // A learner cannot lead.
      const transferee = m.from;
      if (r.leadTransferee !== NONE) {
        if (r.leadTransferee === transferee) return;
        r.abortLeaderTransfer();
      }
      if (transferee === r.id) return;
      // Thesis §3.10: the transfer must finish within an election timeout.
      r.electionElapsed = 0;
      r.leadTransferee = transferee;
      if (pr.match === r.raftLog.lastIndex()) r.sendTimeoutNow(transferee);
      else r.sendAppend(transferee);
      return;
    }
  }
}

/** Candidate and pre-candidate. */
function stepCandidate(r: Raft, m: Message): void {
  const myVoteResp: MessageType = r.state === "preCandidate" ? "MsgPreVoteResp" : "MsgVoteResp";
  switch (m.type) {
    case "MsgProp":
      throw new ProposalDroppedError("no leader (election in progress)");
    case "MsgApp":
      // Raft §5.2: a candidate that hears from a leader of its term returns to follower.
      r.becomeFollower(m.term, m.from);
      r.handleAppendEntries(m);
      return;
    case "MsgHeartbeat":
      r.becomeFollower(m.term, m.from);
      r.handleHeartbeat(m);
      return;
    case "MsgSnap":
      r.becomeFollower(m.term, m.from);
      r.handleSnapshot(m);
      return;
    case myVoteResp: {
      const res = r.poll(m.from, !m.reject);
      if (res === "won") {
        if (r.state === "preCandidate") {
          r.campaign("election");
        } else {
          r.becomeLeader();
          r.bcastAppend();
        }
      } else if (res === "lost") {
        // A PreVote or Vote rejection carries the rejecter's term (possibly higher, already
        // adopted in step()).
        r.becomeFollower(r.term, NONE);
      }
      return;
    }
    default:
      return;
  }
}

function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case "MsgProp":
      if (r.lead === NONE) throw new ProposalDroppedError("no leader");
      if (r.disableProposalForwarding) {
        throw new ProposalDroppedError("proposal forwarding disabled and not leader");
      }
      r.send({ ...m, to: r.lead });
      return;
    case "MsgApp":
      r.electionElapsed = 0;
      r.lead = m.from;
      r.handleAppendEntries(m);
      return;
    case "MsgHeartbeat":
      r.electionElapsed = 0;
      r.lead = m.from;
      r.handleHeartbeat(m);
      return;
    case "MsgSnap":
      r.electionElapsed = 0;
      r.lead = m.from;
      r.handleSnapshot(m);
      return;
    case "MsgTransferLeader":
      if (r.lead === NONE) return;
      r.send({ ...m, to: r.lead });
      return;
    case "MsgTimeoutNow":
      // Thesis §3.10: campaign at once, bypassing PreVote and leases.
      r.hup("transfer");
      return;
    case "MsgReadIndex":
      if (r.lead === NONE) return;
      r.send({ ...m, to: r.lead });
      return;
    case "MsgReadIndexResp":
      r.readStates.push({ index: m.index, requestCtx: m.context ?? new Uint8Array(0) });
      return;
    default:
      return;
  }
}
