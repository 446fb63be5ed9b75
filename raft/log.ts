/**
 * The raft log (etcd's raftLog): persisted entries read through {@link Storage} followed by
 * the {@link Unstable} tail, plus the commit and applied indexes.
 *
 * Invariant: applied <= committed <= lastIndex; firstIndex - 1 <= committed.
 *
 * @module
 */
import { CompactedError, type Storage, UnavailableError } from "./storage.ts";
import type { Entry, Snapshot } from "./types.ts";
import { invariant } from "./types.ts";
import { Unstable } from "./unstable.ts";
import { limitSize } from "./util.ts";

/** The log as seen by the raft state machine. */
export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known to be committed (Raft §5.3). */
  committed: number;
  /** Highest index the application has applied. Invariant: applied <= committed. */
  applied: number;

  /** @param maxNextEntsSize byte budget for committed entries handed out per ready(). */
  constructor(readonly storage: Storage, readonly maxNextEntsSize = Infinity) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /**
   * Term of entry `i`: 0 outside [firstIndex - 1, lastIndex]; throws CompactedError or
   * UnavailableError from storage when the entry is gone.
   */
  term(i: number): number {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    return this.storage.term(i);
  }

  /** Term of entry `i`, or 0 if it was compacted. */
  termOrZero(i: number): number {
    try {
      return this.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return 0;
      throw e;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Whether entry `i` exists with term `term`. */
  matchTerm(i: number, term: number): boolean {
    // Outside [firstIndex - 1, lastIndex] nothing matches (term() would answer 0 there).
    if (i > this.lastIndex() || i < this.firstIndex() - 1) return false;
    try {
      return this.term(i) === term;
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return false;
      throw e;
    }
  }

  /**
   * Raft §5.3 AppendEntries receiver: if the entry at `index` has `logTerm`, append `ents`
   * (truncating a conflicting suffix) and advance commit to min(committed, last new index).
   * Returns the last new index, or undefined on mismatch.
   */
  maybeAppend(
    index: number,
    logTerm: number,
    committed: number,
    ents: readonly Entry[],
  ): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      // Raft §5.4: a committed entry is never overwritten.
      invariant(
        ci > this.committed,
        () => `entry ${ci} conflicts with committed ${this.committed}`,
      );
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries after truncating at ents[0].index. Returns the new last index. */
  append(ents: readonly Entry[]): number {
    const first = ents[0];
    if (first === undefined) return this.lastIndex();
    invariant(
      first.index - 1 >= this.committed,
      () => `append after ${first.index - 1} is below committed ${this.committed}`,
    );
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry in `ents` whose term differs from ours (or that we lack), or 0 if
   * all match.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term (etcd's
   * findConflictByTerm, the fast backtracking of Raft §5.3). A compacted or unavailable entry
   * answers (index, 0): it may match.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      let ourTerm: number;
      try {
        ourTerm = this.term(index);
      } catch (e) {
        if (e instanceof CompactedError || e instanceof UnavailableError) return [index, 0];
        throw e;
      }
      if (ourTerm <= term) return [index, ourTerm];
    }
    return [0, 0];
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  /** Committed entries not yet applied, up to `maxNextEntsSize` bytes. */
  nextEnts(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxNextEntsSize);
    return [];
  }

  hasNextEnts(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined && this.unstable.snapshot.metadata.index !== 0;
  }

  /** The pending (unstable) snapshot, else the storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Advances commit. Invariant: commit never goes back and never exceeds lastIndex. */
  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      invariant(
        toCommit <= this.lastIndex(),
        () =>
          `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]; log corrupted, truncated or lost?`,
      );
      this.committed = toCommit;
    }
  }

  /** Records that the application applied up to `i`. */
  appliedTo(i: number): void {
    if (i === 0) return;
    invariant(
      i <= this.committed && i >= this.applied,
      () =>
        `applied(${i}) out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
    );
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** Entries from `i` to the end, at most `maxSize` bytes (at least one). */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  /** Raft §5.4.1: whether a log ending at (lastIndex, term) is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Raft §5.4.2: commits up to `maxIndex` only if that entry is from `term` (the leader's
   * current term). Returns whether commit advanced.
   */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Installs a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /**
   * Entries in [lo, hi), at most `maxSize` bytes (at least one). Throws CompactedError if
   * lo < firstIndex. Invariant: hi <= lastIndex + 1.
   */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    invariant(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new CompactedError(lo, fi);
    invariant(
      hi <= this.lastIndex() + 1,
      () => `slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`,
    );
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const uoff = this.unstable.offset;
    if (lo < uoff) {
      const stored = this.storage.entries(lo, Math.min(hi, uoff), maxSize);
      // Storage stopped early because of the size limit.
      if (stored.length < Math.min(hi, uoff) - lo) return stored;
      ents = stored;
    }
    if (hi > uoff) {
      const u = this.unstable.slice(Math.max(lo, uoff), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxSize);
  }

  /** Every entry from firstIndex (for tests). */
  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), Infinity);
  }
}
