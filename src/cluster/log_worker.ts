/**
 * The log worker's entry point (a Deno Worker started by WorkerLogWriter, log_writer.ts): owns
 * the write connection of the Raft log's file, runs each write as one transaction (committed and
 * fsynced here, off the main event loop) and answers each message with its sequence number, in
 * order. After a failed write it answers every later one with the same error: the main thread
 * stops the member.
 *
 * It also checkpoints the WAL of other SQLite files (the store's, whose own connection has
 * automatic checkpoints off) from a connection of its own, PASSIVE every CHECKPOINT_EVERY_MS
 * (a failure there is answered on its own and never fails a raft write):
 * the copy into the database file and its fsync happen here, not on the event loop, and the
 * WAL, checkpointed in full, starts over at the main connection's next commit.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { DatabaseSync } from "node:sqlite";
import { LogDb } from "./log_db.ts";
import { CHECKPOINT_EVERY_MS, type FromLogWorker, type ToLogWorker } from "./log_writer.ts";

let db: LogDb | undefined;
let failed: string | undefined;
const checkpointed: { db?: DatabaseSync; timer: ReturnType<typeof setInterval> }[] = [];

/**
 * Checkpoints `path` every CHECKPOINT_EVERY_MS. Whether its connection opens is answered on
 * `seq` without touching raft writes (`failed`): a store WAL this thread cannot checkpoint is
 * no reason to stop the log. Opening is tried again every round until it works.
 */
function checkpointEvery(seq: number, path: string): void {
  const open = (): DatabaseSync => {
    const c = new DatabaseSync(path);
    c.exec("PRAGMA busy_timeout=0");
    return c;
  };
  const entry: { db?: DatabaseSync; timer: ReturnType<typeof setInterval> } = {
    timer: setInterval(() => {
      try {
        entry.db ??= open();
        entry.db.exec("PRAGMA wal_checkpoint(PASSIVE)");
      } catch { /* busy, gone or not openable: the next round tries again */ }
    }, CHECKPOINT_EVERY_MS),
  };
  checkpointed.push(entry);
  try {
    entry.db = open();
    answer(seq);
  } catch (e) {
    answer(seq, e instanceof Error ? e.message : String(e), [], true);
  }
}

function answer(
  seq: number,
  error?: string,
  spent: ArrayBuffer[] = [],
  checkpoint = false,
): void {
  const a: FromLogWorker = error === undefined ? { seq } : { seq, error };
  if (spent.length > 0) a.spent = spent;
  if (checkpoint) a.checkpoint = true;
  // The write's entry buffers go back to the main thread (log_writer.ts write()).
  self.postMessage(a, spent);
}

self.onmessage = (ev: MessageEvent<ToLogWorker>) => {
  const m = ev.data;
  if (m.t === "checkpoint") return checkpointEvery(m.seq, m.path);
  if (failed !== undefined) return answer(m.seq, failed);
  try {
    if (m.t === "open") db = new LogDb(m.path);
    else if (m.t === "write") {
      if (db === undefined) throw new Error("not open");
      db.write(m.w);
      return answer(m.seq, undefined, m.w.entries?.map((e) => e.data.buffer as ArrayBuffer));
    } else {
      db?.close();
      db = undefined;
      for (const c of checkpointed.splice(0)) {
        clearInterval(c.timer);
        c.db?.close();
      }
    }
    answer(m.seq);
  } catch (e) {
    failed = e instanceof Error ? e.message : String(e);
    answer(m.seq, failed);
  }
};
