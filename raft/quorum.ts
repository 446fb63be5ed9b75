/**
 * Majority quorum arithmetic (Raft §5.2 elections, §5.3/§5.4.2 commitment). Pure functions over
 * a voter set; no knowledge of the rest of raft.
 *
 * @module
 */
import type { NodeId } from "./types.ts";

/** Outcome of a vote count. */
export type VoteResult = "pending" | "lost" | "won";

/** Smallest number of voters forming a majority of `n` voters. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The largest index acknowledged by a majority of `voters`: sort the acknowledged indexes in
 * descending order and take the one at position majority-1. A voter without an entry in
 * `acked` counts as 0. With no voters the result is 0 (nothing can be committed).
 */
export function committedIndex(
  voters: Iterable<NodeId>,
  acked: (id: NodeId) => number | undefined,
): number {
  const idx: number[] = [];
  for (const id of voters) idx.push(acked(id) ?? 0);
  if (idx.length === 0) return 0;
  idx.sort((a, b) => b - a);
  return idx[majority(idx.length) - 1] ?? 0;
}

/**
 * Tallies `votes` (true = granted) over `voters`: won once a majority granted, lost once a
 * majority can no longer be reached, pending otherwise. Votes from non-voters are ignored.
 * An empty voter set wins (by convention, as in etcd).
 */
export function voteResult(
  voters: Iterable<NodeId>,
  votes: (id: NodeId) => boolean | undefined,
): VoteResult {
  let n = 0, granted = 0, missing = 0;
  for (const id of voters) {
    n++;
    const v = votes(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  if (n === 0) return "won";
  const q = majority(n);
  if (granted >= q) return "won";
  if (granted + missing >= q) return "pending";
  return "lost";
}
