/**
 * The write side of the Raft log's SQLite file (`raft.db`, WAL, synchronous=FULL): one
 * {@link LogWrite} is one transaction. Used on the main thread by the inline writer and inside
 * the log worker (log_worker.ts), which owns the file's only write connection in the agent.
 *
 * A write says what to change in rows, not why: the storage (raft_storage.ts) turns a ready
 * batch, a compaction, a bootstrap or an identity into one. State values arrive packed.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { rollback } from "../lib/sqlite_rollback.ts";

export const LOG_SCHEMA = `
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,
  type TEXT NOT NULL, data BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
`;

/** One entry row as it crosses to the writer. */
export interface LogRow {
  index: number;
  term: number;
  type: string;
  data: Uint8Array;
}

/** What one transaction changes, in this order. */
export interface LogWrite {
  /** State rows (key → msgpack bytes) to set. */
  state?: [string, Uint8Array][];
  /** Delete every entry (a snapshot from the leader replaces the log). */
  clear?: boolean;
  /** Delete the entries at or below this index (compaction). */
  compactTo?: number;
  /** Entries to append; every entry at or after the first one's index is deleted first. */
  entries?: LogRow[];
  /** Whether the commit must reach the disk (false: only a commit index moved). */
  sync: boolean;
}

export class LogDb {
  readonly db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();

  constructor(path: string) {
    this.db = new DatabaseSync(path);
    this.db.exec("PRAGMA journal_mode=WAL");
    this.db.exec("PRAGMA synchronous=FULL");
    this.db.exec(LOG_SCHEMA);
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  /** Runs `w` in one transaction; throws (rolled back) when it fails. */
  write(w: LogWrite): void {
    if (!w.sync) this.db.exec("PRAGMA synchronous=NORMAL");
    try {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        const set = this.#stmt(
          "INSERT INTO state VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        );
        for (const [k, v] of w.state ?? []) set.run(k, v);
        if (w.clear) this.#stmt("DELETE FROM entries").run();
        if (w.compactTo !== undefined) {
          this.#stmt("DELETE FROM entries WHERE idx <= ?").run(w.compactTo);
        }
        const ents = w.entries ?? [];
        if (ents.length > 0) {
          this.#stmt("DELETE FROM entries WHERE idx >= ?").run(ents[0]!.index);
          const ins = this.#stmt("INSERT INTO entries VALUES (?, ?, ?, ?)");
          for (const e of ents) ins.run(e.index, e.term, e.type, e.data);
        }
        this.db.exec("COMMIT");
      } catch (e) {
        rollback(this.db);
        throw e;
      }
    } finally {
      if (!w.sync) this.db.exec("PRAGMA synchronous=FULL");
    }
  }

  close(): void {
    this.db.close();
  }
}
