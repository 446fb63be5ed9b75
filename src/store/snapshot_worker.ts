/**
 * The snapshot thread's code (a Deno Worker started by snapshot_thread.ts): one job per worker,
 * through a connection of its own to the store's file, so the main thread's event loop goes on
 * serving meanwhile. In WAL mode the main connection keeps reading the last committed state
 * while this one writes.
 *
 * - `install`: replaces the store's state with a "raft" snapshot file's in one transaction
 *   (snapshot_file.ts installSnapshotFile), answering the applied index and services it changed;
 * - `write`: writes a snapshot file of the store at its applied index (one read transaction),
 *   answering its SnapshotFileInfo.
 *
 * It answers `{ok: true, result}` or `{ok: false, error}` (one line) once, never leaving a
 * transaction open, then ends itself.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { errorText } from "../lib/error_text.ts";
import { installSnapshotFile, writeSnapshotFile } from "./snapshot_file.ts";
import { SnapshotSource } from "./snapshot_io.ts";
import type { SnapshotJob, SnapshotReply } from "./snapshot_thread.ts";

/** How long the worker's connection waits for the store's write lock (SQLite busy_timeout). */
const BUSY_TIMEOUT_MS = 5_000;

/** Small objects allocated (and dropped) per piece written: see {@link nudgeCollector}. */
const NUDGE_OBJECTS = 4096;

/**
 * Allocates NUDGE_OBJECTS small objects and drops them, so the young generation fills and V8
 * scavenges, which frees the dead buffers of the pieces written and row values read. This thread
 * allocates little else, so they piled up until some 64 MiB of them were dead (no gc() here):
 * writing a 205 MiB store on this thread peaked +90…+91 MiB of process RSS, +49…+50 with the
 * nudge (scripts run against a store of 410 values of 512 KiB; 16,384 objects did worse), and a
 * follower taking in a restore with `--snapshot-entries 64` writes one snapshot after another.
 */
function nudgeCollector(): number {
  const objs: { i: number }[] = [];
  for (let i = 0; i < NUDGE_OBJECTS; i++) objs.push({ i });
  return objs.length;
}

/** Runs `job`, answers through `reply` as soon as its result stands, then tidies up. */
async function run(job: SnapshotJob, reply: (r: SnapshotReply) => void): Promise<void> {
  if (job.op === "install") {
    const db = new DatabaseSync(job.db);
    try {
      db.exec(`PRAGMA busy_timeout=${BUSY_TIMEOUT_MS}`);
      db.exec(`PRAGMA synchronous=${job.synchronous}`);
      // Checkpointed below, after the answer: from the commit on, the main thread reads the new
      // state, so it should learn of it at once, not after the checkpoint of every new page.
      db.exec("PRAGMA wal_autocheckpoint=0");
      reply({ ok: true, result: installSnapshotFile(db, job.file) });
      // Passive: never waits for, nor holds up, the main connection's readers and writers.
      db.exec("PRAGMA wal_checkpoint(PASSIVE)");
    } finally {
      db.close();
    }
    return;
  }
  const db = new DatabaseSync(job.db, { readOnly: true });
  let src: SnapshotSource;
  try {
    db.exec(`PRAGMA busy_timeout=${BUSY_TIMEOUT_MS}`);
    src = new SnapshotSource(db, job.kind, true);
  } catch (e) {
    db.close();
    throw e;
  }
  reply({ ok: true, result: await writeSnapshotFile(src, job.file, nudgeCollector) });
}

self.onmessage = async (e: MessageEvent<SnapshotJob>) => {
  let answered = false;
  const reply = (r: SnapshotReply) => {
    answered = true;
    self.postMessage(r);
  };
  try {
    await run(e.data, reply);
  } catch (err) {
    if (!answered) reply({ ok: false, error: errorText(err) });
  }
  self.close();
};
