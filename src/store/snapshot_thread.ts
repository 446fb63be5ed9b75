/**
 * Runs a snapshot job (install a "raft" snapshot file, or write one) on a thread of its own
 * (snapshot_worker.ts), so that the seconds it takes at 100,000 instances never stall the event
 * loop that serves DNS, the proxy and the API. One worker per job: it answers as soon as the
 * result stands and ends itself after tidying up (an install's WAL checkpoint). Starting a
 * worker blocks the calling thread briefly (tens of ms here), much less than a job.
 *
 * The worker file is part of the compiled binary (scripts/compile.sh `--include`).
 *
 * @module
 */
import type { SnapshotKind } from "./snapshot_format.ts";

/** A job for the snapshot thread; `db` is the store's file. */
export type SnapshotJob =
  | { op: "install"; db: string; file: string; synchronous: "FULL" | "NORMAL" | "OFF" }
  | { op: "write"; db: string; file: string; kind: SnapshotKind };

/** The worker's one answer. */
export type SnapshotReply = { ok: true; result: unknown } | { ok: false; error: string };

/** Where the worker's code is (what compile.sh includes). */
export const SNAPSHOT_WORKER_URL = new URL("./snapshot_worker.ts", import.meta.url).href;

/** Runs `job` on a new worker; resolves with its result, rejects with its one-line error. */
export function runSnapshotJob<T>(job: SnapshotJob): Promise<T> {
  const worker = new Worker(SNAPSHOT_WORKER_URL, { type: "module" });
  return new Promise<T>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<SnapshotReply>) => {
      const r = e.data;
      if (r.ok) resolve(r.result as T);
      else reject(new Error(r.error));
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      reject(new Error(`snapshot thread failed: ${e.message}`));
    };
    worker.postMessage(job);
  });
}
