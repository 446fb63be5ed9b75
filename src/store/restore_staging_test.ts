import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { SNAPSHOT_CHUNK_BYTES, Store } from "./mod.ts";
import { concatBytes } from "../lib/bytes.ts";
import { apiInstanceSpec } from "../../test/fixtures.ts";

/** Restores `bytes` through the restore.* commands at the next indexes; the commit's result. */
function restore(s: Store, bytes: Uint8Array, id: string) {
  let index = s.appliedIndex() + 1;
  s.apply(index++, { type: "restore.begin", id });
  let seq = 0;
  for (let off = 0; off < bytes.byteLength; off += SNAPSHOT_CHUNK_BYTES, seq++) {
    const data = bytes.subarray(off, off + SNAPSHOT_CHUNK_BYTES);
    assert.deepEqual(s.apply(index++, { type: "restore.chunk", id, seq, data }), { ok: true });
  }
  return s.apply(index, { type: "restore.commit", id, chunks: seq, bytes: bytes.byteLength });
}

function userSnapshot(s: Store): Uint8Array {
  const src = s.snapshotSource("user");
  const parts: Uint8Array[] = [];
  for (let p = src.next(); p !== null; p = src.next()) parts.push(p);
  return concatBytes(parts);
}

/** Index name → "table(column)" for the instances tables, read through a connection of its own. */
function indexesOf(path: string): Record<string, string> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const rows = db.prepare(
      "SELECT name, tbl_name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL " +
        "AND tbl_name IN ('instances', 'restore_instances') ORDER BY name",
    ).all();
    return Object.fromEntries(rows.map((r) => {
      const col = /\(([^)]+)\)$/.exec(String(r.sql))![1];
      return [String(r.name), `${r.tbl_name}(${col})`];
    }));
  } finally {
    db.close();
  }
}

Deno.test("RestoreStaging.commit() swaps in the staged instances with the indexes they were staged with, building none", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = Store.open(":memory:");
    for (let i = 0; i < 50; i++) {
      src.apply(i + 1, {
        type: "register",
        instance: apiInstanceSpec({ id: `n1:s${i}:80`, service: `s${i % 5}`, node: `n${i % 3}` }),
      });
    }
    const bytes = userSnapshot(src);
    const path = `${dir}/store.db`;
    const s = Store.open(path);
    const fresh = {
      instances_node_service: "instances(node, service)",
      instances_service: "instances(service)",
      restore_instances_node_service: "restore_instances(node, service)",
      restore_instances_service: "restore_instances(service)",
    };
    assert.deepEqual(indexesOf(path), fresh);
    assert.deepEqual(restore(s, bytes, "r1"), { ok: true });
    // The live table has the staged table's indexes (the names moved with it); the new staging
    // table got the freed names.
    assert.deepEqual(indexesOf(path), {
      instances_node_service: "restore_instances(node, service)",
      instances_service: "restore_instances(service)",
      restore_instances_node_service: "instances(node, service)",
      restore_instances_service: "instances(service)",
    });
    assert.equal(s.instances("s1").length, 10);
    assert.equal(s.instancesOfNode("n2").length, 16);
    assert.deepEqual(restore(s, bytes, "r2"), { ok: true });
    assert.deepEqual(indexesOf(path), fresh);
    assert.deepEqual(restore(s, bytes, "r3"), { ok: true });
    s.close();
    // Opening the store again adds no index of its own beside the moved ones, and drops the
    // node index an older store had (node, service serves it).
    const raw = new DatabaseSync(path);
    raw.exec("CREATE INDEX restore_instances_node ON instances(node)");
    raw.close();
    const again = Store.open(path);
    assert.equal(Object.keys(indexesOf(path)).length, 4);
    assert.equal(again.instances("s4").length, 10);
    again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
