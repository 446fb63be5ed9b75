import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { rollback } from "./sqlite_rollback.ts";

/** Inserts 512 KiB rows in one transaction into a database capped at 20 pages, as a caller would. */
function fillTooFull(db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const ins = db.prepare("INSERT INTO t VALUES (?)");
    for (let i = 0; i < 8; i++) ins.run(new Uint8Array(512 * 1024));
    db.exec("COMMIT");
  } catch (e) {
    rollback(db);
    throw e;
  }
}

Deno.test("rollback() after a full disk (SQLite rolled back itself) lets the full-disk error through", () => {
  const db = new DatabaseSync(":memory:");
  db.exec("CREATE TABLE t (v BLOB)");
  db.exec("PRAGMA max_page_count = 20");
  assert.throws(() => fillTooFull(db), /database or disk is full/);
  assert.equal(db.isTransaction, false);
  db.close();
});

Deno.test("rollback() undoes an open transaction's writes", () => {
  const db = new DatabaseSync(":memory:");
  db.exec("CREATE TABLE t (v INTEGER)");
  db.exec("BEGIN IMMEDIATE");
  db.exec("INSERT INTO t VALUES (1)");
  rollback(db);
  assert.equal(db.isTransaction, false);
  assert.equal(db.prepare("SELECT count(*) AS n FROM t").get()?.n, 0);
  db.close();
});
