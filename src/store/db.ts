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

/** node:sqlite's StatementSync.setReturnArrays (Deno 2.9 has it; its types do not yet). */
type ArrayStatement = StatementSync & { setReturnArrays(on: boolean): void };

export class StoreDb {
  readonly db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();
  readonly #arrayStmts = new Map<string, StatementSync>();

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

  /**
   * The prepared statement for `sql` returning each row as an array of its columns, in the
   * order selected: no object with column names per row (hot reads of many rows).
   */
  arrays(sql: string): StatementSync {
    let s = this.#arrayStmts.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      (s as ArrayStatement).setReturnArrays(true);
      this.#arrayStmts.set(sql, s);
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
