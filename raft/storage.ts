/**
 * The read side of the durable raft log that the application owns, and an in-memory
 * implementation (etcd's MemoryStorage) used by tests, the simulator and the benchmark.
 *
 * @module
 */
import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";
import { EMPTY_HARD_STATE, emptySnapshot, invariant } from "./types.ts";
import { limitSize } from "./util.ts";

/** The requested index is older than the first index (compacted into a snapshot). */
export class CompactedError extends Error {
  constructor(index: number, first: number) {
    super(`raft storage: index ${index} is compacted (first index ${first})`);
    this.name = "CompactedError";
  }
}

/** The requested index is beyond the last index. */
export class UnavailableError extends Error {
  constructor(index: number) {
    super(`raft storage: index ${index} is unavailable`);
    this.name = "UnavailableError";
  }
}

/** A snapshot older than the one already held was offered. */
export class SnapOutOfDateError extends Error {
  constructor(index: number, have: number) {
    super(`raft storage: snapshot at ${index} is out of date (have ${have})`);
    this.name = "SnapOutOfDateError";
  }
}

/** The snapshot is being produced; raft retries later. */
export class SnapshotTemporarilyUnavailableError extends Error {
  constructor() {
    super("raft storage: snapshot temporarily unavailable");
    this.name = "SnapshotTemporarilyUnavailableError";
  }
}

/**
 * Read access to the persisted log. Raft only reads through this interface; the application
 * writes (append, hard state, snapshots) after each `ready()`.
 *
 * Invariant: entries in [firstIndex, lastIndex] are contiguous; term(firstIndex - 1) is the
 * snapshot's term.
 */
export interface Storage {
  /**
   * The persisted hard state and the membership as of the applied index the node restarts
   * from (normally the latest snapshot's ConfState).
   */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), at most `maxBytes` (but at least one if any).
   * Throws {@link CompactedError} if lo <= the snapshot index.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /**
   * Term of entry `i`, for i in [firstIndex - 1, lastIndex]. Throws {@link CompactedError}
   * below and {@link UnavailableError} above.
   */
  term(i: number): number;
  /** Index of the last entry (the snapshot index if there is none). */
  lastIndex(): number;
  /** Index of the first entry still available (snapshot index + 1). */
  firstIndex(): number;
  /** The latest snapshot; may throw {@link SnapshotTemporarilyUnavailableError}. */
  snapshot(): Snapshot;
}

/**
 * In-memory {@link Storage}. `ents[0]` is a dummy entry holding the snapshot's index and term.
 */
export class MemoryStorage implements Storage {
  #hardState: HardState = { ...EMPTY_HARD_STATE };
  #snapshot: Snapshot;
  #ents: Entry[];

  /** @param opts.confState initial membership, stored in an index-0 snapshot (for tests). */
  constructor(opts: { confState?: ConfState } = {}) {
    this.#snapshot = emptySnapshot(opts.confState);
    this.#ents = [{ term: 0, index: 0, type: "normal", data: new Uint8Array(0) }];
  }

  #dummy(): Entry {
    return this.#ents[0] as Entry;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.#hardState }, confState: this.#snapshot.metadata.confState };
  }

  /** The persisted hard state. */
  hardState(): HardState {
    return { ...this.#hardState };
  }

  /** Persists a hard state. */
  setHardState(hs: HardState): void {
    this.#hardState = { ...hs };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.#dummy().index;
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    invariant(hi <= this.lastIndex() + 1, () => `entries hi ${hi} > last ${this.lastIndex()}+1`);
    if (this.#ents.length === 1) throw new UnavailableError(lo);
    return limitSize(this.#ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(i: number): number {
    const offset = this.#dummy().index;
    if (i < offset) throw new CompactedError(i, offset + 1);
    const e = this.#ents[i - offset];
    if (e === undefined) throw new UnavailableError(i);
    return e.term;
  }

  lastIndex(): number {
    return this.#dummy().index + this.#ents.length - 1;
  }

  firstIndex(): number {
    return this.#dummy().index + 1;
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  /**
   * Replaces the storage contents with `snap` (a snapshot received from the leader).
   * Throws {@link SnapOutOfDateError} if it is not newer than the current one.
   */
  applySnapshot(snap: Snapshot): void {
    const have = this.#snapshot.metadata.index;
    if (have >= snap.metadata.index) throw new SnapOutOfDateError(snap.metadata.index, have);
    this.#snapshot = snap;
    this.#ents = [{
      term: snap.metadata.term,
      index: snap.metadata.index,
      type: "normal",
      data: new Uint8Array(0),
    }];
  }

  /**
   * Records a snapshot of the application state `data` as of applied index `i` with
   * membership `confState`. Does not compact; call {@link compact} afterwards.
   */
  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot {
    const have = this.#snapshot.metadata.index;
    if (i <= have) throw new SnapOutOfDateError(i, have);
    invariant(i <= this.lastIndex(), () => `snapshot ${i} is beyond last ${this.lastIndex()}`);
    const e = this.#ents[i - this.#dummy().index] as Entry;
    this.#snapshot = {
      metadata: {
        index: i,
        term: e.term,
        confState: { voters: [...confState.voters], learners: [...confState.learners] },
      },
      data,
    };
    return this.#snapshot;
  }

  /**
   * Discards entries up to and including `compactIndex`. The application must not compact
   * past its applied index. Throws {@link CompactedError} if already compacted there.
   */
  compact(compactIndex: number): void {
    const offset = this.#dummy().index;
    if (compactIndex <= offset) throw new CompactedError(compactIndex, offset + 1);
    invariant(
      compactIndex <= this.lastIndex(),
      () => `compact ${compactIndex} is beyond last ${this.lastIndex()}`,
    );
    const i = compactIndex - offset;
    const at = this.#ents[i] as Entry;
    this.#ents = [
      { term: at.term, index: at.index, type: "normal", data: new Uint8Array(0) },
      ...this.#ents.slice(i + 1),
    ];
  }

  /**
   * Appends entries, truncating any conflicting suffix first. Entries already compacted are
   * skipped. Invariant: entries are contiguous with the stored log (no gap).
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const e0 = entries[0] as Entry;
    const last = e0.index + entries.length - 1;
    if (last < first) return;
    let ents = entries;
    if (first > e0.index) ents = entries.slice(first - e0.index);
    const offset = (ents[0] as Entry).index - this.#dummy().index;
    invariant(
      offset <= this.#ents.length,
      () => `missing log entry [last: ${this.lastIndex()}, append at: ${(ents[0] as Entry).index}]`,
    );
    if (offset < this.#ents.length) this.#ents.length = offset;
    for (const e of ents) this.#ents.push(e);
  }
}
