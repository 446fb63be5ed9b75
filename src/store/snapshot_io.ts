/**
 * Snapshot streams out of and into the store's SQLite tables (format: snapshot_format.ts).
 * Out: a SnapshotSource reads the tables inside one read transaction and hands back one frame at
 * a time (about SNAPSHOT_FRAME_TARGET_BYTES). In: insertFrames() puts checked rows into tables inside the
 * caller's transaction. Neither ever holds more than one frame of rows.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { concatBytes } from "../lib/bytes.ts";
import { SECRET_TABLES } from "./table_classes.ts";
import {
  encodeFrame,
  encodeHeader,
  RAFT_TABLES,
  SEALED_BYTES_MAX,
  SNAPSHOT_COLUMNS,
  type SnapshotFrame,
  type SnapshotKind,
  USER_TABLES,
} from "./snapshot_format.ts";
import { SNAPSHOT_CHUNK_BYTES, SNAPSHOT_FRAME_TARGET_BYTES } from "./snapshot_limits.ts";

type Row = Record<string, unknown>;

/**
 * A consistent read of the store as a snapshot stream. On a file-backed store it reads through
 * its own read-only connection (one WAL read transaction), so applies go on meanwhile; on an
 * in-memory store (tests) it reads everything at once through the store's connection.
 */
export class SnapshotSource {
  /** Applied index the snapshot is consistent at. */
  readonly index: number;
  /** Raft membership at `index`. */
  readonly confState: { voters: number[]; learners: number[] };
  readonly #db: DatabaseSync;
  readonly #owned: boolean;
  #pieces: Iterator<Uint8Array>;
  #closed = false;

  /**
   * `owned`: the connection is this source's (closed with it); otherwise read eagerly.
   * `seal`: a "user" snapshot then carries the secret tables, sealed by it (see
   * snapshot_format.ts).
   */
  constructor(db: DatabaseSync, kind: SnapshotKind, owned: boolean, seal?: Seal) {
    this.#db = db;
    this.#owned = owned;
    if (owned) db.exec("BEGIN");
    const applied = db.prepare("SELECT value FROM meta WHERE key='applied'").get() as
      | Row
      | undefined;
    this.index = applied === undefined ? 0 : Number(applied.value);
    const conf = db.prepare("SELECT value FROM cluster WHERE key='conf'").get() as Row | undefined;
    this.confState = conf === undefined
      ? { voters: [], learners: [] }
      : JSON.parse(String(conf.value));
    const gen = pieces(db, kind, this.index, seal);
    this.#pieces = owned ? gen : [...gen][Symbol.iterator]();
  }

  /** The next frame of the stream (about SNAPSHOT_FRAME_TARGET_BYTES), or null at its end. */
  next(): Uint8Array | null {
    if (this.#closed) return null;
    const r = this.#pieces.next();
    if (r.done) {
      this.close();
      return null;
    }
    return r.value;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pieces.return?.();
    if (this.#owned) {
      try {
        this.#db.exec("COMMIT");
      } finally {
        this.#db.close();
      }
    }
  }
}

/** Encrypts a "secrets" snapshot's bytes (src/pki sealWithPassphrase, bound to a passphrase). */
export type Seal = (plain: Uint8Array) => Uint8Array;

/** The tables a snapshot of `kind` carries, in order. */
function tablesOf(db: DatabaseSync, kind: SnapshotKind): readonly string[] {
  if (kind === "raft") return RAFT_TABLES;
  if (kind === "user") return USER_TABLES;
  // Secret tables another part has not created yet (an older store) are left out.
  const present = new Set(
    (db.prepare("SELECT name FROM sqlite_master WHERE type='table'").all() as Row[])
      .map((r) => String(r.name)),
  );
  return SECRET_TABLES.filter((t) => present.has(t) && t in SNAPSHOT_COLUMNS);
}

function* pieces(
  db: DatabaseSync,
  kind: SnapshotKind,
  index: number,
  seal?: Seal,
): Generator<Uint8Array> {
  yield encodeHeader({ kind, index });
  if (kind === "user" && seal !== undefined) yield* sealedSection(db, index, seal);
  let total = 0;
  const tables: [string, string][] = tablesOf(db, kind).map((t) => [t, `SELECT * FROM ${t}`]);
  if (kind === "raft") tables.unshift(["meta", "SELECT * FROM meta WHERE key != 'schema'"]);
  for (const [table, sql] of tables) {
    let rows: Row[] = [];
    let bytes = 0;
    for (const r of db.prepare(sql).iterate() as Iterable<Row>) {
      rows.push({ ...r });
      bytes += rowBytes(r);
      if (bytes >= SNAPSHOT_FRAME_TARGET_BYTES) {
        total += rows.length;
        yield encodeFrame({ t: table, rows });
        rows = [];
        bytes = 0;
      }
    }
    if (rows.length > 0) {
      total += rows.length;
      yield encodeFrame({ t: table, rows });
    }
  }
  yield encodeFrame({ end: true, rows: total });
}

/** The secret tables as a "secrets" snapshot, sealed, in frames of SNAPSHOT_CHUNK_BYTES. */
function* sealedSection(db: DatabaseSync, index: number, seal: Seal): Generator<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const piece of pieces(db, "secrets", index)) {
    size += piece.byteLength;
    if (size > SEALED_BYTES_MAX - 1024) {
      throw new Error(`snapshot: the secret tables are over ${SEALED_BYTES_MAX} bytes`);
    }
    parts.push(piece);
  }
  const sealed = seal(concatBytes(parts, size));
  for (let off = 0; off < sealed.byteLength; off += SNAPSHOT_CHUNK_BYTES) {
    yield encodeFrame({ sealed: sealed.subarray(off, off + SNAPSHOT_CHUNK_BYTES) });
  }
}

/** Roughly a row's encoded size (to cut frames near SNAPSHOT_FRAME_TARGET_BYTES). */
export function rowBytes(r: Row): number {
  let n = 0;
  for (const v of Object.values(r)) {
    n += 8 + (typeof v === "string" ? v.length * 3 : v instanceof Uint8Array ? v.byteLength : 0);
  }
  return n;
}

/**
 * Inserts a table frame's rows (already checked) into table `prefix + table`, unless `only`
 * leaves its table out.
 */
export function insertFrame(
  db: DatabaseSync,
  f: SnapshotFrame,
  opts: { only?: readonly string[]; prefix?: string } = {},
): void {
  if ("end" in f || "sealed" in f) return;
  if (opts.only !== undefined && !opts.only.includes(f.t)) return;
  const table = (opts.prefix ?? "") + f.t;
  let sql = "";
  let stmt: StatementSync | undefined;
  for (const r of f.rows) {
    const cols = Object.keys(r);
    const want = `INSERT INTO ${table} (${cols.join(",")}) VALUES (${
      cols.map(() => "?").join(",")
    })`;
    if (want !== sql) {
      sql = want;
      stmt = insertStatement(db, sql);
    }
    stmt!.run(...(Object.values(r) as (string | number | Uint8Array)[]));
  }
}

/** The insert statements of each connection, by their SQL (see insertStatement). */
const inserts = new WeakMap<DatabaseSync, Map<string, StatementSync>>();

/**
 * `db`'s prepared statement for `sql`, prepared once per connection. A statement keeps a copy
 * of the values it last ran with until it is finalized, which node:sqlite leaves to the garbage
 * collector: a statement per frame held a row per frame (installing 200 MiB of 512 KiB values
 * grew RSS by ~210 MiB); one per table holds one.
 */
function insertStatement(db: DatabaseSync, sql: string): StatementSync {
  let byDb = inserts.get(db);
  if (byDb === undefined) inserts.set(db, byDb = new Map());
  let stmt = byDb.get(sql);
  if (stmt === undefined) byDb.set(sql, stmt = db.prepare(sql));
  return stmt;
}
