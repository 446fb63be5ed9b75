/**
 * Ends a failed SQLite transaction without hiding why it failed.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";

/**
 * Rolls back `db`'s open transaction, if one is still open: SQLite itself rolls the whole
 * transaction back on some errors (SQLITE_FULL: a full disk), and a ROLLBACK then threw
 * "cannot rollback - no transaction is active" in place of the error that mattered.
 */
export function rollback(db: DatabaseSync): void {
  if (db.isTransaction) db.exec("ROLLBACK");
}
