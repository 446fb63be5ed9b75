/**
 * The durable Raft log: entries, hard state and the latest snapshot in SQLite (`raft.db`, WAL,
 * synchronous=FULL). One ready() batch (entries, hard state, snapshot) is written in one
 * transaction, so it is on disk, synced, before any message that depends on it is sent.
 *
 * Memory holds the log's shape only (index, term, type and size of each entry): raft's reads of
 * entry data (to send, to apply) come from SQLite. A log of large entries (512 KiB values, 1 MiB
 * restore chunks) therefore costs no memory while a snapshot of a large store is being written
 * and the log cannot be compacted yet.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { pack, unpack } from "msgpackr";
import { rollback } from "../lib/sqlite_rollback.ts";
import {
  type ConfState,
  type Entry,
  ENTRY_OVERHEAD_BYTES,
  type HardState,
  isEmptyHardState,
  isEmptySnapshot,
  MemoryStorage,
  type Snapshot,
  type Storage,
} from "../../raft/mod.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,
  type TEXT NOT NULL, data BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
`;

type Row = Record<string, unknown>;

const NO_DATA = new Uint8Array(0);

/** What one ready() asks to persist. */
export interface PersistBatch {
  entries: readonly Entry[];
  hardState?: HardState;
  snapshot?: Snapshot;
  /**
   * Whether the write must reach the disk before returning (default true). Raft says false
   * when only the commit index moved: a commit index lost in a crash is learned again.
   */
  sync?: boolean;
}

/** Who this member is: kept beside the log, never replicated. */
export interface Identity {
  clusterId: string;
  id: number;
  /** Random token sent with the join request, so a retried join gets the same id back. */
  nonce: string;
}

export class SqliteRaftStorage implements Storage {
  readonly #db: DatabaseSync;
  /** The log's shape: entries with their data left out (read from SQLite when asked). */
  readonly #mem = new MemoryStorage();
  /** Index → data bytes of each entry in #mem. */
  readonly #sizes = new Map<number, number>();
  readonly #stmts = new Map<string, StatementSync>();
  readonly #confState: () => ConfState;

  private constructor(db: DatabaseSync, confState: () => ConfState) {
    this.#db = db;
    this.#confState = confState;
  }

  /**
   * Opens `path` (`:memory:` in tests) and loads the persisted log into memory. `confState`
   * reports the membership as of the state machine's applied index (the store keeps it in the
   * same transaction as that index), which is what raft restarts with.
   */
  static open(
    path: string,
    opts: {
      confState: () => ConfState;
      /**
       * Sees the persisted snapshot at open; data it returns replaces the snapshot's (persisted
       * before use), e.g. a snapshot of an older format rewritten.
       */
      upgradeSnapshot?: (s: Snapshot) => Uint8Array | undefined;
    },
  ): SqliteRaftStorage {
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("PRAGMA synchronous=FULL");
    db.exec(SCHEMA);
    const s = new SqliteRaftStorage(db, opts.confState);
    s.#load(opts.upgradeSnapshot);
    return s;
  }

  /**
   * Writes a new cluster's first entries, hard state and this member's identity in one
   * transaction, so a crash leaves either a bootstrapped member or an empty one.
   */
  bootstrap(entries: Entry[], hardState: HardState, identity: Identity): void {
    if (!this.isEmpty() || this.identity() !== undefined) {
      throw new Error("raft log: cannot bootstrap over an existing log");
    }
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const ins = this.#stmt("INSERT INTO entries VALUES (?, ?, ?, ?)");
      for (const e of entries) ins.run(e.index, e.term, e.type, e.data);
      this.#setState("hardState", hardState);
      this.#setState("identity", identity);
      this.#db.exec("COMMIT");
    } catch (e) {
      rollback(this.#db);
      throw e;
    }
    this.#remember(entries);
    this.#mem.setHardState(hardState);
  }

  /** Appends `entries` to the in-memory shape (a conflicting suffix is replaced). */
  #remember(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first <= this.#mem.lastIndex()) {
      for (const i of this.#sizes.keys()) if (i >= first) this.#sizes.delete(i);
    }
    for (const e of entries) this.#sizes.set(e.index, e.data.byteLength);
    this.#mem.append(entries.map((e) => ({ ...e, data: NO_DATA })));
  }

  /** Forgets the sizes of entries at or below `index` (compacted or replaced by a snapshot). */
  #forget(index: number): void {
    for (const i of this.#sizes.keys()) if (i <= index) this.#sizes.delete(i);
  }

  /**
   * The identity kept in the Raft log at `path`, read without loading the log; undefined when
   * there is no log there or it holds no identity (a member that never joined a cluster).
   */
  static readIdentity(path: string): Identity | undefined {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { readOnly: true });
    } catch {
      return undefined; // no file
    }
    try {
      const row = db.prepare("SELECT value FROM state WHERE key='identity'").get() as
        | Row
        | undefined;
      return row === undefined ? undefined : unpack(row.value as Uint8Array) as Identity;
    } catch {
      return undefined; // no state table: a log never written
    } finally {
      db.close();
    }
  }

  identity(): Identity | undefined {
    return this.#getState("identity") as Identity | undefined;
  }

  setIdentity(identity: Identity): void {
    this.#setState("identity", identity);
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (s === undefined) {
      s = this.#db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  #getState(key: string): unknown {
    const row = this.#stmt("SELECT value FROM state WHERE key=?").get(key) as Row | undefined;
    return row === undefined ? undefined : unpack(row.value as Uint8Array);
  }

  #setState(key: string, value: unknown): void {
    this.#stmt(
      "INSERT INTO state VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
    )
      .run(key, pack(value));
  }

  #load(upgrade?: (s: Snapshot) => Uint8Array | undefined): void {
    const stored = this.#getState("snapshot") as Snapshot | undefined;
    const upgraded = stored !== undefined && !isEmptySnapshot(stored)
      ? upgrade?.(stored)
      : undefined;
    const snap = upgraded === undefined ? stored : { metadata: stored!.metadata, data: upgraded };
    if (upgraded !== undefined) this.#setState("snapshot", snap);
    const compact = this.#getState("compact") as { index: number; term: number } | undefined;
    const hasSnap = snap !== undefined && !isEmptySnapshot(snap);
    // The log may reach back before the snapshot (a trailing window kept for slow followers):
    // then rebuild it from the compaction point and record the snapshot on top.
    const windowed = hasSnap && compact !== undefined && compact.index < snap.metadata.index;
    if (windowed && compact.index > 0) {
      this.#mem.applySnapshot({
        metadata: { index: compact.index, term: compact.term, confState: snap.metadata.confState },
        data: new Uint8Array(0),
      });
    } else if (hasSnap) {
      this.#mem.applySnapshot(snap);
    }
    const hs = this.#getState("hardState") as HardState | undefined;
    if (hs !== undefined) this.#mem.setHardState(hs);
    const first = this.#mem.firstIndex();
    const rows = this.#stmt(
      "SELECT idx, term, type, length(data) AS n FROM entries WHERE idx >= ? ORDER BY idx",
    ).all(first) as Row[];
    for (const r of rows) this.#sizes.set(Number(r.idx), Number(r.n));
    this.#mem.append(rows.map((r) => ({
      index: Number(r.idx),
      term: Number(r.term),
      type: r.type as Entry["type"],
      data: NO_DATA,
    })));
    if (windowed) this.#mem.createSnapshot(snap.metadata.index, snap.metadata.confState, snap.data);
  }

  /** Whether nothing was ever persisted (a brand-new member). */
  isEmpty(): boolean {
    return this.lastIndex() === 0 && isEmptyHardState(this.#mem.hardState());
  }

  /** Persists one ready() batch atomically: snapshot, then entries, then hard state. */
  persist(batch: PersistBatch): void {
    const { entries, hardState, snapshot } = batch;
    if (entries.length === 0 && hardState === undefined && isEmptySnapshot(snapshot)) return;
    const sync = batch.sync ?? true;
    if (!sync) this.#db.exec("PRAGMA synchronous=NORMAL");
    try {
      this.#write(entries, hardState, snapshot);
    } finally {
      if (!sync) this.#db.exec("PRAGMA synchronous=FULL");
    }
    if (snapshot !== undefined && !isEmptySnapshot(snapshot)) {
      this.#mem.applySnapshot(snapshot);
      this.#sizes.clear();
    }
    this.#remember(entries);
    if (hardState !== undefined) this.#mem.setHardState(hardState);
  }

  #write(entries: readonly Entry[], hardState?: HardState, snapshot?: Snapshot): void {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      if (snapshot !== undefined && !isEmptySnapshot(snapshot)) {
        this.#setState("snapshot", snapshot);
        this.#setState("compact", { index: snapshot.metadata.index, term: snapshot.metadata.term });
        // A snapshot from the leader replaces the whole log: entries after it may conflict.
        this.#stmt("DELETE FROM entries").run();
      }
      if (entries.length > 0) {
        // A conflicting suffix is replaced: drop everything from the first new index on.
        this.#stmt("DELETE FROM entries WHERE idx >= ?").run(entries[0]!.index);
        const ins = this.#stmt("INSERT INTO entries VALUES (?, ?, ?, ?)");
        for (const e of entries) ins.run(e.index, e.term, e.type, e.data);
      }
      if (hardState !== undefined) this.#setState("hardState", hardState);
      this.#db.exec("COMMIT");
    } catch (e) {
      rollback(this.#db);
      throw e;
    }
  }

  /**
   * Records a snapshot of the application's state at applied index `index` and discards the log
   * up to `index - keepEntries` (a trailing window lets slow followers catch up from the log).
   */
  snapshotAndCompact(index: number, confState: ConfState, data: Uint8Array, keepEntries: number) {
    const snap = this.#mem.createSnapshot(index, confState, data);
    const compactTo = index - keepEntries;
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      this.#setState("snapshot", snap);
      if (compactTo > this.#mem.firstIndex() - 1) {
        this.#setState("compact", { index: compactTo, term: this.#mem.term(compactTo) });
        this.#stmt("DELETE FROM entries WHERE idx <= ?").run(compactTo);
      }
      this.#db.exec("COMMIT");
    } catch (e) {
      rollback(this.#db);
      throw e;
    }
    if (compactTo > this.#mem.firstIndex() - 1) {
      this.#mem.compact(compactTo);
      this.#forget(compactTo);
    }
  }

  /** The persisted hard state. */
  hardState(): HardState {
    return this.#mem.hardState();
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.#mem.hardState(), confState: this.#confState() };
  }

  /**
   * Entries [lo, hi), at least one, at most `maxBytes` in all (raft's limitSize rule), their
   * data read from SQLite.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const shape = this.#mem.entries(lo, hi, Infinity);
    let n = 0;
    let bytes = 0;
    for (const e of shape) {
      bytes += (this.#sizes.get(e.index) ?? 0) + ENTRY_OVERHEAD_BYTES;
      if (n > 0 && bytes > maxBytes) break;
      n++;
    }
    if (n === 0) return [];
    const rows = this.#stmt("SELECT idx, data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx")
      .all(lo, lo + n) as Row[];
    return shape.slice(0, n).map((e, i) => {
      const r = rows[i];
      // Invariant: every entry in memory's shape is in the table.
      if (r === undefined || Number(r.idx) !== e.index) {
        throw new Error(`raft log: entry ${e.index} is missing from raft.db`);
      }
      return { ...e, data: r.data as Uint8Array };
    });
  }

  term(i: number): number {
    return this.#mem.term(i);
  }

  lastIndex(): number {
    return this.#mem.lastIndex();
  }

  firstIndex(): number {
    return this.#mem.firstIndex();
  }

  snapshot(): Snapshot {
    return this.#mem.snapshot();
  }

  close(): void {
    this.#db.close();
  }
}
