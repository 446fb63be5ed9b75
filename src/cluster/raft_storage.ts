/**
 * The durable Raft log: entries, hard state and the latest snapshot in SQLite (`raft.db`, WAL,
 * synchronous=FULL). One ready() batch (entries, hard state, snapshot) is one transaction, done
 * by a log writer (log_writer.ts: a worker thread in the agent, inline for `:memory:`); memory
 * follows a write once the writer acknowledged it, so raft reads from here only what is durable
 * (what is in flight, raft still holds in its unstable tail).
 *
 * Memory holds the log's shape only (index, term, type and size of each entry): raft's reads of
 * entry data (to send, to apply) come from a bounded cache of recent entries, else from SQLite
 * through a read-only connection (WAL: it sees what the worker committed). A log of large
 * entries (512 KiB values, 1 MiB restore chunks) therefore costs no memory while a snapshot of a
 * large store is being written and the log cannot be compacted yet.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { pack as packShared, unpack } from "msgpackr";
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
import { EntryCache } from "./entry_cache.ts";
import { LogDb, type LogWrite } from "./log_db.ts";
import {
  InlineLogWriter,
  type LogWriter,
  type LogWriterKind,
  WorkerLogWriter,
} from "./log_writer.ts";

type Row = Record<string, unknown>;

/**
 * msgpackr's `pack()` returns a view into its process-wide output buffer, which grows to the
 * largest value ever packed; posting such a view to the log worker would copy that whole buffer.
 * A state value therefore gets its own bytes.
 */
function pack(value: unknown): Uint8Array {
  // A copy: the result is a Node Buffer, whose slice() is another view of the same memory.
  return new Uint8Array(packShared(value));
}

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

/** How a log is opened (see {@link SqliteRaftStorage.open}). */
export interface RaftStorageOptions {
  /**
   * Reports the membership as of the state machine's applied index (the store keeps it in the
   * same transaction as that index), which is what raft restarts with.
   */
  confState: () => ConfState;
  /**
   * Sees the persisted snapshot at open; data it returns replaces the snapshot's (persisted
   * before use), e.g. a snapshot of an older format rewritten.
   */
  upgradeSnapshot?: (s: Snapshot) => Uint8Array | undefined;
  /** Who writes: "worker" (default for a file) or "inline" (always for `:memory:`). */
  writer?: LogWriterKind;
  /** Tests: wraps the writer (to hold acknowledgements back). */
  wrapWriter?: (w: LogWriter) => LogWriter;
}

export class SqliteRaftStorage implements Storage {
  /** Reads entry data: read-only beside a worker, the writer's own connection inline. */
  #reader: DatabaseSync;
  #writer: LogWriter;
  /** The log's shape: entries with their data left out (read from SQLite when asked). */
  readonly #mem = new MemoryStorage();
  /** Index → data bytes of each entry in #mem. */
  readonly #sizes = new Map<number, number>();
  readonly #cache = new EntryCache();
  readonly #stmts = new Map<string, StatementSync>();
  readonly #confState: () => ConfState;
  #identity: Identity | undefined;
  /** Newest snapshot index written or being written (compactions below it are stale). */
  #snapIndex = 0;
  /** Whether a write that empties the log or sets the identity is in flight. */
  #bootstrapping = false;
  #closing = false;
  #onFailure: ((e: Error) => void) | undefined;

  private constructor(reader: DatabaseSync, writer: LogWriter, confState: () => ConfState) {
    this.#reader = reader;
    this.#writer = writer;
    this.#confState = confState;
  }

  /** Opens `path` (`:memory:` in tests) and loads the persisted log into memory. */
  static open(path: string, opts: RaftStorageOptions): SqliteRaftStorage {
    // The schema and anything rewritten at open are written here, before a worker starts.
    const db = new LogDb(path);
    if (path === ":memory:" || opts.writer === "inline") {
      const w = new InlineLogWriter(db);
      const s = new SqliteRaftStorage(db.db, opts.wrapWriter?.(w) ?? w, opts.confState);
      s.#load(db, opts.upgradeSnapshot);
      return s;
    }
    let s: SqliteRaftStorage;
    try {
      s = new SqliteRaftStorage(db.db, new InlineLogWriter(db), opts.confState);
      s.#load(db, opts.upgradeSnapshot);
    } finally {
      db.close();
    }
    const w = new WorkerLogWriter(path);
    s.#reader = new DatabaseSync(path, { readOnly: true });
    s.#stmts.clear();
    s.#writer = opts.wrapWriter?.(w) ?? w;
    return s;
  }

  /**
   * Writes a new cluster's first entries, hard state and this member's identity in one
   * transaction, so a crash leaves either a bootstrapped member or an empty one.
   */
  async bootstrap(entries: Entry[], hardState: HardState, identity: Identity): Promise<void> {
    if (!this.isEmpty() || this.#identity !== undefined || this.#bootstrapping) {
      throw new Error("raft log: cannot bootstrap over an existing log");
    }
    this.#bootstrapping = true;
    await this.#write({
      state: [["hardState", pack(hardState)], ["identity", pack(identity)]],
      entries: entries.map(row),
      sync: true,
    });
    this.#remember(entries);
    this.#mem.setHardState(hardState);
    this.#identity = identity;
  }

  /** Appends `entries` to the in-memory shape (a conflicting suffix is replaced). */
  #remember(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first <= this.#mem.lastIndex()) {
      for (const i of this.#sizes.keys()) if (i >= first) this.#sizes.delete(i);
      this.#cache.dropFrom(first);
    }
    for (const e of entries) this.#sizes.set(e.index, e.data.byteLength);
    this.#cache.put(entries);
    this.#mem.append(entries.map((e) => ({ ...e, data: NO_DATA })));
  }

  /** Forgets the sizes of entries at or below `index` (compacted or replaced by a snapshot). */
  #forget(index: number): void {
    for (const i of this.#sizes.keys()) if (i <= index) this.#sizes.delete(i);
    this.#cache.dropTo(index);
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
    return this.#identity;
  }

  /** Records this member's identity (durable when the promise resolves). */
  async setIdentity(identity: Identity): Promise<void> {
    await this.#write({ state: [["identity", pack(identity)]], sync: true });
    this.#identity = identity;
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (s === undefined) {
      s = this.#reader.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  #getState(key: string): unknown {
    const row = this.#stmt("SELECT value FROM state WHERE key=?").get(key) as Row | undefined;
    return row === undefined ? undefined : unpack(row.value as Uint8Array);
  }

  #load(db: LogDb, upgrade?: (s: Snapshot) => Uint8Array | undefined): void {
    const stored = this.#getState("snapshot") as Snapshot | undefined;
    const upgraded = stored !== undefined && !isEmptySnapshot(stored)
      ? upgrade?.(stored)
      : undefined;
    const snap = upgraded === undefined ? stored : { metadata: stored!.metadata, data: upgraded };
    if (upgraded !== undefined) db.write({ state: [["snapshot", pack(snap)]], sync: true });
    this.#identity = this.#getState("identity") as Identity | undefined;
    const compact = this.#getState("compact") as { index: number; term: number } | undefined;
    const hasSnap = snap !== undefined && !isEmptySnapshot(snap);
    if (hasSnap) this.#snapIndex = snap.metadata.index;
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

  /**
   * Persists one ready() batch atomically (snapshot, entries, hard state) through the writer;
   * memory follows once it is durable. Resolves then; rejects when the write failed.
   */
  async persist(batch: PersistBatch): Promise<void> {
    const { entries, hardState, snapshot } = batch;
    const snap = snapshot !== undefined && !isEmptySnapshot(snapshot) ? snapshot : undefined;
    if (entries.length === 0 && hardState === undefined && snap === undefined) return;
    const w: LogWrite = { state: [], sync: batch.sync ?? true };
    if (snap !== undefined) {
      w.state!.push(["snapshot", pack(snap)]);
      w.state!.push(["compact", pack({ index: snap.metadata.index, term: snap.metadata.term })]);
      // A snapshot from the leader replaces the whole log: entries after it may conflict.
      w.clear = true;
      this.#snapIndex = Math.max(this.#snapIndex, snap.metadata.index);
    }
    if (entries.length > 0) w.entries = entries.map(row);
    if (hardState !== undefined) w.state!.push(["hardState", pack(hardState)]);
    await this.#write(w);
    if (snap !== undefined) {
      this.#mem.applySnapshot(snap);
      this.#sizes.clear();
      this.#cache.clear();
    }
    this.#remember(entries);
    if (hardState !== undefined) this.#mem.setHardState(hardState);
  }

  /**
   * Records a snapshot of the application's state at applied index `index` and discards the log
   * up to `index - keepEntries` (a trailing window lets slow followers catch up from the log).
   * Memory changes at once (raft reads no entry the write will delete); resolves once durable,
   * false (nothing done) when a newer snapshot is already written or being written.
   */
  async snapshotAndCompact(
    index: number,
    confState: ConfState,
    data: Uint8Array,
    keepEntries: number,
  ): Promise<boolean> {
    if (index <= this.#snapIndex) return false;
    this.#snapIndex = index;
    const snap = this.#mem.createSnapshot(index, confState, data);
    const compactTo = index - keepEntries;
    const w: LogWrite = { state: [["snapshot", pack(snap)]], sync: true };
    if (compactTo > this.#mem.firstIndex() - 1) {
      w.state!.push(["compact", pack({ index: compactTo, term: this.#mem.term(compactTo) })]);
      w.compactTo = compactTo;
      this.#mem.compact(compactTo);
      this.#forget(compactTo);
    }
    await this.#write(w);
    return true;
  }

  /**
   * Raises the persisted commit index to `applied`, the state machine's applied index, when it
   * is behind. A commit-only hard state is written without fsync, while the store's file is
   * checkpointed (fsynced) on its own: after a power loss the store can have applied entries
   * past the commit raft.db kept. Whatever was applied was committed, and its entries were
   * appended (synced) before it was applied, so they are in this log and the commit may move up.
   * Throws when the log does not reach `applied` (raft.db lost synced writes).
   */
  async commitAtLeast(applied: number): Promise<void> {
    const hs = this.#mem.hardState();
    if (applied <= hs.commit) return;
    if (applied > this.lastIndex()) {
      throw new Error(
        `raft log: the store applied up to ${applied}, past the log's last index ` +
          `${this.lastIndex()}: raft.db lost writes; remove this member's data directory and join again`,
      );
    }
    const raised = { ...hs, commit: applied };
    await this.#write({ state: [["hardState", pack(raised)]], sync: true });
    this.#mem.setHardState(raised);
  }

  /**
   * Calls `f` once, on the first write that fails (whoever started it: a ready, a snapshot, a
   * compaction, the identity). Memory may already be ahead of the disk (a compaction changes it
   * before its write) and the writer refuses every later write: the member must stop.
   */
  onWriteFailure(f: (e: Error) => void): void {
    this.#onFailure = f;
  }

  async #write(w: LogWrite): Promise<void> {
    try {
      await this.#writer.write(w);
    } catch (e) {
      const f = this.#onFailure;
      if (!this.#closing && f !== undefined) {
        this.#onFailure = undefined;
        f(e as Error);
      }
      throw e;
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
   * data from the cache of recent entries, else read from SQLite.
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
    const out: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const data = this.#cache.get(lo + i);
      if (data === undefined) break;
      out.push({ ...shape[i]!, data });
    }
    if (out.length === n) return out;
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

  /**
   * Has the writer checkpoint the WAL of `path` off the event loop; false when it cannot.
   * `onError`: `path` did not open there (raft writes go on; it is tried again).
   */
  checkpoint(path: string, onError?: (e: Error) => void): boolean {
    return this.#writer.checkpoint?.(path, onError) ?? false;
  }

  /** Finishes the writes under way, then closes the file. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#writer.close();
    if (this.#reader.isOpen) this.#reader.close();
  }
}

function row(e: Entry): { index: number; term: number; type: string; data: Uint8Array } {
  return { index: e.index, term: e.term, type: e.type, data: e.data };
}
