/**
 * Snapshot streams out of and into the store's SQLite tables (format: snapshot_format.ts).
 * Out: a SnapshotSource reads the tables inside one read transaction and hands back one frame at
 * a time (about SNAPSHOT_CHUNK_BYTES). In: insertFrames() puts checked rows into tables inside the
 * caller's transaction. Neither ever holds more than one frame of rows.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  encodeFrame,
  encodeHeader,
  RAFT_TABLES,
  type SnapshotFrame,
  type SnapshotKind,
  USER_TABLES,
} from "./snapshot_format.ts";
import { SNAPSHOT_CHUNK_BYTES } from "./snapshot_limits.ts";

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

  /** `owned`: the connection is this source's (closed with it); otherwise read eagerly. */
  constructor(db: DatabaseSync, kind: SnapshotKind, owned: boolean) {
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
    const gen = pieces(db, kind, this.index);
    this.#pieces = owned ? gen : [...gen][Symbol.iterator]();
  }

  /** The next frame of the stream (about SNAPSHOT_CHUNK_BYTES at most), or null at its end. */
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

function* pieces(db: DatabaseSync, kind: SnapshotKind, index: number): Generator<Uint8Array> {
  yield encodeHeader({ kind, index });
  let total = 0;
  const tables: [string, string][] = (kind === "raft" ? RAFT_TABLES : USER_TABLES).map((t) => [
    t,
    `SELECT * FROM ${t}`,
  ]);
  if (kind === "raft") tables.unshift(["meta", "SELECT * FROM meta WHERE key != 'schema'"]);
  for (const [table, sql] of tables) {
    let rows: Row[] = [];
    let bytes = 0;
    for (const r of db.prepare(sql).iterate() as Iterable<Row>) {
      rows.push({ ...r });
      bytes += rowBytes(r);
      if (bytes >= SNAPSHOT_CHUNK_BYTES) {
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

/** Roughly a row's encoded size (to cut frames near SNAPSHOT_CHUNK_BYTES). */
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
  if ("end" in f) return;
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
      stmt = db.prepare(sql);
    }
    stmt!.run(...(Object.values(r) as (string | number | Uint8Array)[]));
  }
}
