/**
 * Which messages of a ready may go out before that ready's write is durable (etcd-raft's
 * asynchronous storage writes, as _core.ts's ready loop does them): only a leader's appends,
 * heartbeats and snapshots, only while its term and vote are already on disk, and only those
 * whose commit index is durable here. Their entries may be lost with this member (followers
 * write them in parallel with it), but no member may learn of a commit this member could lose:
 * a single voter counts its own entries committed at once, and a quorum counts this member's
 * match before its fsync. Everything else (votes, append responses, a follower's forwarded
 * proposals, read index answers) says something about this member's log or hard state: held.
 *
 * @module
 */
import { type HardState, isEmptySnapshot, type Message, type Ready } from "../../raft/mod.ts";

/** Message types a leader may send before its own write of the same ready is durable. */
const EARLY = new Set<string>(["MsgApp", "MsgHeartbeat", "MsgSnap"]);

/** What is durable here when a ready is taken (its predecessors were acknowledged). */
export interface Durable {
  hardState: HardState;
  /** The log's last durable index. */
  lastIndex: number;
}

/**
 * The highest commit index a message of `rd` may carry and still go out before `rd`'s write is
 * durable; -1 when nothing may.
 */
export function earlyCommitBound(rd: Ready, isLeader: boolean, durable: Durable): number {
  if (!isLeader || rd.snapshot !== undefined) return -1;
  const hs = rd.hardState;
  if (
    hs !== undefined && (hs.term !== durable.hardState.term || hs.vote !== durable.hardState.vote)
  ) {
    return -1;
  }
  // Entries of this ready (and a stale suffix they replace) are not durable yet.
  const firstNew = rd.entries[0]?.index ?? Infinity;
  return Math.min(durable.lastIndex, firstNew - 1);
}

/** Splits `rd`'s messages into those to send now and those held until its write is durable. */
export function splitEarly(
  rd: Ready,
  isLeader: boolean,
  durable: Durable,
): { now: Message[]; held: Message[] } {
  const bound = earlyCommitBound(rd, isLeader, durable);
  const now: Message[] = [];
  const held: Message[] = [];
  for (const m of rd.messages) {
    if (EARLY.has(m.type) && m.commit <= bound) now.push(m);
    else held.push(m);
  }
  return { now, held };
}

/**
 * Whether the ready loop must wait for `rd`'s write before sending the rest, applying and
 * advancing. It need not when nothing depends on the write's durability: no entries, no
 * snapshot, and a hard state (if any) that changes only `commit` (term and vote are on disk:
 * `mustSync` false), and every committed entry is already in the durable log. Such a write
 * (a commit index moved) is posted and kept in order by the writer; a later write that is
 * waited for follows it, and a lost one is recovered at start (the commit is raised to the
 * store's applied index, RaftStorage.commitAtLeast). Every message of such a ready refers to
 * durable state only: raft's last index is the durable one, and its commit is at most that.
 */
export function mustWaitForWrite(rd: Ready, durable: Durable): boolean {
  if (rd.mustSync || rd.entries.length > 0) return true;
  if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) return true;
  const hs = rd.hardState;
  if (
    hs !== undefined && (hs.term !== durable.hardState.term || hs.vote !== durable.hardState.vote)
  ) {
    return true;
  }
  if (hs !== undefined && hs.commit > durable.lastIndex) return true;
  if (rd.messages.some((m) => m.commit > durable.lastIndex)) return true;
  const last = rd.committedEntries.at(-1);
  return last !== undefined && last.index > durable.lastIndex;
}
