import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { compareCodePoints } from "./code_point_order.ts";

Deno.test("compareCodePoints() orders text as SQLite's BINARY collation does", () => {
  const words = [
    "",
    "a",
    "ab",
    "b",
    "B",
    "\u00e9",
    "\uffff",
    "\ue000",
    "\u{1f600}",
    "\u{10000}x",
    "z\u{1f600}",
    "z\uffff",
  ];
  const db = new DatabaseSync(":memory:");
  db.exec("CREATE TABLE t (s TEXT PRIMARY KEY)");
  for (const w of words) db.prepare("INSERT INTO t VALUES (?)").run(w);
  const sqlite = (db.prepare("SELECT s FROM t ORDER BY s").all() as { s: string }[]).map((r) =>
    r.s
  );
  db.close();
  assert.deepEqual([...words].sort(compareCodePoints), sqlite);
  // JavaScript's own order differs exactly there.
  assert.notDeepEqual([...words].sort(), sqlite);
});
