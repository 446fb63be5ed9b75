/**
 * The store's SQLite connection with its cache of prepared statements and the `meta` counters
 * (applied index, per-table indexes, highest member id). Every part of the store reads and
 * writes through one `StoreDb`.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

/** A row as node:sqlite returns it. */
export type Row = Record<string, unknown>;

export class StoreDb {
  readonly db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.db = db;
  }

  /** The prepared statement for `sql`, prepared once. */
  stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  /** A `meta` counter; 0 when it was never set. */
  metaGet(key: string): number {
    const row = this.stmt("SELECT value FROM meta WHERE key=?").get(key) as Row | undefined;
    return row === undefined ? 0 : Number(row.value);
  }

  metaSet(key: string, value: number): void {
    this.stmt("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value")
      .run(key, value);
  }
}
