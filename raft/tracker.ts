/**
 * The leader's (and candidate's) view of the membership: voters, learners, one {@link Progress}
 * per member, and the votes received in the current election.
 *
 * @module
 */
import { Progress } from "./progress.ts";
import { committedIndex, type VoteResult, voteResult } from "./quorum.ts";
import type { ConfState, NodeId } from "./types.ts";
import { invariant } from "./types.ts";

/** Membership plus per-member replication progress. Invariant: voters ∩ learners = ∅. */
export class ProgressTracker {
  readonly voters = new Set<NodeId>();
  readonly learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflight: number, readonly maxInflightBytes: number) {}

  /** The membership as a sorted {@link ConfState}. */
  confState(): ConfState {
    return {
      voters: [...this.voters].sort((a, b) => a - b),
      learners: [...this.learners].sort((a, b) => a - b),
    };
  }

  /**
   * Makes `cs` the membership. New members get a fresh Progress probing from `lastIndex + 1`
   * and marked recently active (so CheckQuorum does not count them as lost before they could
   * answer); removed members lose theirs; members switching role keep their progress.
   */
  applyConfState(cs: ConfState, lastIndex: number): void {
    const voters = new Set(cs.voters);
    const learners = new Set(cs.learners);
    for (const id of voters) {
      invariant(!learners.has(id), `node ${id} is both voter and learner`);
    }
    this.voters.clear();
    this.learners.clear();
    for (const id of voters) this.voters.add(id);
    for (const id of learners) this.learners.add(id);
    for (const id of [...this.progress.keys()]) {
      if (!voters.has(id) && !learners.has(id)) {
        this.progress.delete(id);
        this.votes.delete(id);
      }
    }
    for (const id of [...voters, ...learners]) {
      const isLearner = learners.has(id);
      const pr = this.progress.get(id);
      if (pr === undefined) {
        this.progress.set(
          id,
          new Progress({
            match: 0,
            next: lastIndex + 1,
            maxInflight: this.maxInflight,
            maxInflightBytes: this.maxInflightBytes,
            isLearner,
            recentActive: true,
          }),
        );
      } else {
        pr.isLearner = isLearner;
      }
    }
  }

  /** Whether the membership is exactly one voter. */
  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  /** The largest index replicated on a majority of voters (Raft §5.3). */
  committed(): number {
    return committedIndex(this.voters, (id) => this.progress.get(id)?.match);
  }

  /** Calls `f` for every member in increasing id order. */
  visit(f: (id: NodeId, pr: Progress) => void): void {
    const ids = [...this.progress.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const pr = this.progress.get(id);
      if (pr !== undefined) f(id, pr);
    }
  }

  /** Whether a majority of voters was recently active (Raft thesis §6.2, CheckQuorum). */
  quorumActive(): boolean {
    return voteResult(this.voters, (id) => this.progress.get(id)?.recentActive) === "won";
  }

  /** Sorted voter ids. */
  voterIds(): NodeId[] {
    return [...this.voters].sort((a, b) => a - b);
  }

  /** Whether the nodes in `acks` form a majority of voters (ReadIndex heartbeat acks). */
  tallyAcks(acks: ReadonlySet<NodeId>): VoteResult {
    return voteResult(this.voters, (id) => acks.has(id) ? true : undefined);
  }

  /** Forgets all votes. */
  resetVotes(): void {
    this.votes.clear();
  }

  /** Records `id`'s vote; only the first vote from a node in an election counts. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Counts granted and rejected votes from voters and the election outcome. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0, rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: voteResult(this.voters, (id) => this.votes.get(id)) };
  }
}
