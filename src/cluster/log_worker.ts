/**
 * The log worker's entry point (a Deno Worker started by WorkerLogWriter, log_writer.ts): owns
 * the write connection of the Raft log's file, runs each write as one transaction (committed and
 * fsynced here, off the main event loop) and answers each message with its sequence number, in
 * order. After a failed write it answers every later one with the same error: the main thread
 * stops the member.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { LogDb } from "./log_db.ts";
import type { FromLogWorker, ToLogWorker } from "./log_writer.ts";

let db: LogDb | undefined;
let failed: string | undefined;

function answer(seq: number, error?: string): void {
  const a: FromLogWorker = error === undefined ? { seq } : { seq, error };
  self.postMessage(a);
}

self.onmessage = (ev: MessageEvent<ToLogWorker>) => {
  const m = ev.data;
  if (failed !== undefined) return answer(m.seq, failed);
  try {
    if (m.t === "open") db = new LogDb(m.path);
    else if (m.t === "write") {
      if (db === undefined) throw new Error("not open");
      db.write(m.w);
    } else {
      db?.close();
      db = undefined;
    }
    answer(m.seq);
  } catch (e) {
    failed = e instanceof Error ? e.message : String(e);
    answer(m.seq, failed);
  }
};
