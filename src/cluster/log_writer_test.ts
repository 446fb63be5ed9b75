import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { LogDb } from "./log_db.ts";
import { WorkerLogWriter } from "./log_writer.ts";

Deno.test("WorkerLogWriter.write: entry data given as views of one buffer is written and stays the caller's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-log-writer-" });
  const path = `${dir}/raft.db`;
  new LogDb(path).close();
  const w = new WorkerLogWriter(path);
  try {
    const shared = new Uint8Array(64).map((_, i) => i);
    const a = shared.subarray(0, 16);
    const b = shared.subarray(16, 48);
    await w.write({
      entries: [
        { index: 1, term: 1, type: "normal", data: a },
        { index: 2, term: 1, type: "normal", data: b },
      ],
      sync: true,
    });
    // The copies went to the worker and came back; the caller's buffer was never moved.
    assert.equal(shared.buffer.byteLength, 64);
    assert.deepEqual([...a], [...Array(16).keys()]);
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const rows = db.prepare("SELECT idx, data FROM entries ORDER BY idx").all();
      assert.deepEqual(rows.map((r) => [...(r.data as Uint8Array)]), [[...a], [...b]]);
    } finally {
      db.close();
    }
  } finally {
    await w.close();
    await Deno.remove(dir, { recursive: true });
  }
});
