/**
 * Who writes the Raft log's file: the ready loop (_core.ts) posts one {@link LogWrite} per
 * ready batch and waits for its acknowledgement before anything that depends on it (etcd-raft's
 * asynchronous storage writes). Two writers share the interface, so the loop is the same code:
 *
 * - {@link InlineLogWriter}: the write runs on the calling thread before `write()` returns
 *   (`:memory:` logs, and tests that want everything on one thread);
 * - {@link WorkerLogWriter}: a Deno Worker (log_worker.ts) owns the file's write connection,
 *   commits and fsyncs there, and acknowledges each write by its sequence number; the event
 *   loop meanwhile serves DNS, the proxy and the API.
 *
 * Writes complete in the order they were posted. A failed write rejects its promise and every
 * later one (the member stops: its log on disk no longer matches memory).
 *
 * @module
 */
import type { LogDb, LogWrite } from "./log_db.ts";

export type { LogWrite } from "./log_db.ts";

/** How often the log worker checkpoints the WALs it was given (`checkpoint()`). */
export const CHECKPOINT_EVERY_MS = 250;

/** Which writer a log uses. */
export type LogWriterKind = "inline" | "worker";

export interface LogWriter {
  /** Queues `w` after every earlier write; resolves once it is committed (synced if asked). */
  write(w: LogWrite): Promise<void>;
  /** Finishes the queued writes, then releases the file. */
  close(): Promise<void>;
  /**
   * Checkpoints the WAL of the SQLite file at `path` (whose own connection has automatic
   * checkpoints off) every CHECKPOINT_EVERY_MS, off the event loop; false when this writer
   * cannot (inline: the caller leaves automatic checkpoints on). When `path` does not open,
   * `onError` hears it once and raft writes go on; opening is tried again every round.
   */
  checkpoint?(path: string, onError?: (e: Error) => void): boolean;
}

/** Writes on the calling thread: done (or failed) when `write()` returns. */
export class InlineLogWriter implements LogWriter {
  readonly #db: LogDb;
  #failed: Error | undefined;

  constructor(db: LogDb) {
    this.#db = db;
  }

  write(w: LogWrite): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    try {
      this.#db.write(w);
      return Promise.resolve();
    } catch (e) {
      this.#failed = e as Error;
      return Promise.reject(e);
    }
  }

  close(): Promise<void> {
    this.#db.close();
    return Promise.resolve();
  }
}

/** What the main thread posts to the log worker. */
export type ToLogWorker =
  | { t: "open"; seq: number; path: string }
  | { t: "write"; seq: number; w: LogWrite }
  | { t: "checkpoint"; seq: number; path: string }
  | { t: "close"; seq: number };

/** The worker's answer to the message with sequence number `seq`. */
export interface FromLogWorker {
  seq: number;
  error?: string;
  /** A write's entry buffers, handed back (see WorkerLogWriter.write). */
  spent?: ArrayBuffer[];
  /** The error is a checkpoint's (its file would not open): raft writes go on. */
  checkpoint?: true;
}

interface Waiting {
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Writes in a Deno Worker that owns the file's write connection (log_worker.ts). */
export class WorkerLogWriter implements LogWriter {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, Waiting>();
  #seq = 0;
  #failed: Error | undefined;
  #closed: Promise<void> | undefined;

  /** Starts the worker on the log at `path` (its schema already made by the caller). */
  constructor(path: string) {
    this.#worker = new Worker(new URL("./log_worker.ts", import.meta.url).href, {
      type: "module",
      name: "berth-raft-log",
    });
    this.#worker.onmessage = (ev: MessageEvent<FromLogWorker>) => this.#ack(ev.data);
    this.#worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      this.#fail(new Error(`raft log worker: ${ev.message}`));
    };
    this.#worker.onmessageerror = () => this.#fail(new Error("raft log worker: bad message"));
    this.#post({ t: "open", seq: this.#next(), path }).catch(() => {});
  }

  #next(): number {
    return ++this.#seq;
  }

  #post(msg: ToLogWorker, transfer: ArrayBuffer[] = []): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      this.#waiting.set(msg.seq, { resolve, reject });
      this.#worker.postMessage(msg, transfer);
    });
  }

  #ack(a: FromLogWorker): void {
    const w = this.#waiting.get(a.seq);
    if (w === undefined) return;
    this.#waiting.delete(a.seq);
    if (a.error === undefined) w.resolve();
    else if (a.checkpoint) w.reject(new Error(a.error));
    else {
      const e = new Error(`raft log write failed: ${a.error}`);
      w.reject(e);
      this.#fail(e);
    }
  }

  /** Every write waiting or to come fails with `e`; the worker ends. */
  #fail(e: Error): void {
    this.#failed ??= e;
    for (const w of this.#waiting.values()) w.reject(this.#failed);
    this.#waiting.clear();
    this.#worker.terminate();
  }

  /**
   * Entry data goes over as copies whose buffers are transferred, and the worker hands them back
   * with its answer: a cloned buffer would become garbage of the worker's own heap, which V8
   * collects only once some 64 MiB of such buffers piled up there, on top of the main thread's
   * (820 writes of a 256 KiB entry each: the process peaked +134 MiB over its start with clones,
   * +77 MiB handed back, +70 MiB with no writes at all). Handed back, they are the main thread's
   * garbage, collected with its own.
   */
  write(w: LogWrite): Promise<void> {
    if (this.#closed !== undefined) return Promise.reject(new Error("raft log is closed"));
    const transfer: ArrayBuffer[] = [];
    const entries = w.entries?.map((e) => {
      const data = new Uint8Array(e.data); // a copy in a buffer of its own, also of a Buffer view
      transfer.push(data.buffer);
      return { ...e, data };
    });
    const msg: LogWrite = entries === undefined ? w : { ...w, entries };
    return this.#post({ t: "write", seq: this.#next(), w: msg }, transfer);
  }

  checkpoint(path: string, onError?: (e: Error) => void): boolean {
    this.#post({ t: "checkpoint", seq: this.#next(), path }).catch((e) => {
      if (this.#failed === undefined) onError?.(e);
    });
    return true;
  }

  close(): Promise<void> {
    this.#closed ??= this.#post({ t: "close", seq: this.#next() })
      .catch(() => {})
      .finally(() => this.#worker.terminate());
    return this.#closed;
  }
}
