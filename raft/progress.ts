/**
 * What the leader knows about one follower's log (etcd's tracker.Progress), and the flow-control
 * state machine: probe (one message per heartbeat until a match is found), replicate (optimistic
 * pipelining bounded by {@link Inflights}), snapshot (waiting for a snapshot to be installed).
 *
 * @module
 */
import { Inflights } from "./inflights.ts";
import { invariant } from "./types.ts";

/** Flow-control state of a follower. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** Leader-side view of one peer. Invariant: 0 <= match < next. */
export class Progress {
  /** Highest index known to be replicated on the peer. */
  match: number;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = "probe";
  /** In snapshot state: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from the peer since the last CheckQuorum round (Raft thesis §6.2). */
  recentActive = false;
  /** In probe state: a probe was sent and we wait for an answer or a heartbeat response. */
  probeSent = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(
    opts: {
      match: number;
      next: number;
      maxInflight: number;
      maxInflightBytes?: number;
      isLearner?: boolean;
      recentActive?: boolean;
    },
  ) {
    this.match = opts.match;
    this.next = opts.next;
    this.isLearner = opts.isLearner ?? false;
    this.recentActive = opts.recentActive ?? false;
    this.inflights = new Inflights(opts.maxInflight, opts.maxInflightBytes ?? 0);
    this.#check();
  }

  #check(): void {
    invariant(
      this.match >= 0 && this.match < this.next,
      () => `progress invariant match ${this.match} < next ${this.next}`,
    );
  }

  #resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /**
   * Enters probe state. Coming from snapshot state, `next` resumes after the snapshot that was
   * being sent (it may have been installed); otherwise it restarts at match+1.
   */
  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.#resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#resetState("probe");
      this.next = this.match + 1;
    }
    this.#check();
  }

  /** Enters replicate state: optimistic pipelining from match+1. */
  becomeReplicate(): void {
    this.#resetState("replicate");
    this.next = this.match + 1;
    this.#check();
  }

  /** Enters snapshot state, waiting for the snapshot at `snapshotIndex` to be installed. */
  becomeSnapshot(snapshotIndex: number): void {
    this.#resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /**
   * Handles an acknowledgement of index `n`. Returns whether `match` advanced (a stale or
   * duplicate ack returns false). `next` never goes back.
   */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    this.#check();
    return updated;
  }

  /** Optimistically advances `next` after sending entries up to `n` (replicate state). */
  optimisticUpdate(n: number): void {
    this.next = n + 1;
    this.#check();
  }

  /**
   * Handles a rejected MsgApp whose prev index was `rejected`; `matchHint` is the highest index
   * that may match (from the follower's hint). Returns false if the rejection is stale.
   * Raft §5.3 (with etcd's conflict-hint acceleration).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      // Stale rejection: we already know the follower has `rejected`.
      if (rejected <= this.match) return false;
      // Directly fall back to the last known match.
      this.next = this.match + 1;
      this.#check();
      return true;
    }
    // In probe state only the answer to the latest probe (prev index next-1) is relevant.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    this.#check();
    return true;
  }

  /**
   * Whether sending to this peer is throttled: a probe is outstanding, the inflight window is
   * full, or a snapshot is being sent.
   */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}
