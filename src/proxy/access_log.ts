/**
 * The access log (README "Access log"): a request observer that formats one line per finished
 * request (access_log_format.ts) into a bounded buffer, which a writer flushes to stdout or a
 * file in batches, off the request path.
 *
 * - The buffer holds at most `bufferBytesMax` of lines (default 1 MiB); a line that does not
 *   fit is dropped and counted (`dropped`): a slow disk never blocks or slows a request, and
 *   memory stays bounded. Lines a failed write lost count there too (one log line a minute).
 * - The writer takes up to `batchBytesMax` bytes of whole lines per write (64 KiB; 4096 on
 *   stdout, PIPE_BUF, so that a batch is one atomic write on a pipe shared with other threads;
 *   a single line longer than that is one larger write, which POSIX does not keep whole on a
 *   pipe: README says so): at once
 *   when a whole batch is waiting, else `FLUSH_DELAY_MS` (20 ms) after the first line of one
 *   arrived, so that lines go out together instead of one write per request.
 * - A file is opened `O_APPEND`: every write lands at the file's end, so several writers (the
 *   proxy workers, each with an `AccessLog` of its own) append whole batches side by side, never
 *   overwriting or splitting each other's lines (see workers/proxy_worker.ts for why they do
 *   not ship lines to the main thread).
 * - `reopen()` (SIGUSR1, after a rotation moved the file away) opens the path again once the
 *   write under way is done; later lines go to the new file. A file that cannot be opened
 *   (`FileSink.openLazy`: a proxy worker restarted while its directory is gone) costs lines,
 *   never requests: they are dropped and counted until a reopen (or the retry a minute after
 *   the last try) opens it.
 * - `close()` writes what is left, but waits at most CLOSE_TIMEOUT_MS for a stuck sink (a pipe
 *   nobody reads, a hung disk); what is still buffered then is dropped and counted, so that
 *   the agent's stop always ends.
 * - A write that failed after a part of its batch went out (a short write, then ENOSPC) leaves
 *   a partial line; the next batch starts with a newline so that its lines stay whole.
 *
 * @module
 */
import type { RequestObserver, RequestRecord } from "./request_record.ts";
import { type AccessLogFormat, formatRecord } from "./access_log_format.ts";
import { errorText } from "../lib/error_text.ts";

/** Lines waiting for the writer, in UTF-8 bytes. */
export const BUFFER_BYTES_MAX = 1024 * 1024;
/** A batch (one write) to a file. */
export const BATCH_BYTES_MAX = 64 * 1024;
/** A batch to stdout: PIPE_BUF, the size up to which a write to a pipe is atomic (Linux). */
export const PIPE_BATCH_BYTES_MAX = 4096;
/**
 * How long lines wait for more before a write smaller than a batch: a write (and its hop to a
 * thread) per request would cost more than the line itself; lines reach the file this late.
 */
export const FLUSH_DELAY_MS = 20;
/** Longest wait in close() for the sink to take what is buffered. */
export const CLOSE_TIMEOUT_MS = 2_000;
/** A file that could not be opened is tried again on a write this long after the last try. */
export const OPEN_RETRY_MS = 60_000;
/** At most one log line per this about failed writes. */
const FAILURE_LOG_INTERVAL_MS = 60_000;

/** Where the access log's batches go. */
export interface LogSink {
  /** Names it in log lines: `stdout` or the file's path. */
  readonly name: string;
  /** Largest batch to write at once. */
  readonly batchBytesMax: number;
  /**
   * Writes all of `bytes`. A failure after some of them were written throws a
   * PartialWriteError (its line is cut).
   */
  write(bytes: Uint8Array): Promise<void>;
  /** Opens the file again by its path (a no-op for stdout). */
  reopen(): Promise<void>;
  close(): void;
}

/** A write failed after `written` bytes of its batch went out. */
export class PartialWriteError extends Error {
  constructor(readonly written: number, cause: unknown) {
    super(errorText(cause));
  }
}

/** Writes all of `bytes` to `w` (a regular file takes them in one write). */
export async function writeAll(
  w: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    try {
      off += await w.write(bytes.subarray(off));
    } catch (e) {
      throw off === 0 ? e : new PartialWriteError(off, e);
    }
  }
}

/** The process's standard output. */
export class StdoutSink implements LogSink {
  readonly name = "stdout";
  readonly batchBytesMax = PIPE_BATCH_BYTES_MAX;
  write(bytes: Uint8Array): Promise<void> {
    return writeAll(Deno.stdout, bytes);
  }
  reopen(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {}
}

/** A file opened for appending (created if absent, mode 0644). */
export class FileSink implements LogSink {
  readonly name: string;
  readonly batchBytesMax = BATCH_BYTES_MAX;
  /** null: not open (openLazy could not open it); writes fail until it opens. */
  #file: Deno.FsFile | null;
  #triedAt: number;
  readonly #now: () => number;

  private constructor(path: string, file: Deno.FsFile | null, now: () => number) {
    this.name = path;
    this.#file = file;
    this.#now = now;
    this.#triedAt = now();
  }

  /** Opens `path`; throws (one line naming it) when it cannot. */
  static async open(path: string): Promise<FileSink> {
    return new FileSink(path, await openAppend(path), Date.now);
  }

  /**
   * Opens `path`; when it cannot, the sink is made anyway with `error` (one line): its writes
   * fail (lines dropped and counted) until reopen(), or a write OPEN_RETRY_MS after the last
   * try, opens it.
   */
  static async openLazy(
    path: string,
    now: () => number = Date.now,
  ): Promise<{ sink: FileSink; error: string | null }> {
    try {
      return { sink: new FileSink(path, await openAppend(path), now), error: null };
    } catch (e) {
      return { sink: new FileSink(path, null, now), error: errorText(e) };
    }
  }

  /** The file is open. */
  get isOpen(): boolean {
    return this.#file !== null;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#file === null && this.#now() - this.#triedAt >= OPEN_RETRY_MS) {
      await this.reopen().catch(() => {});
    }
    if (this.#file === null) throw new Error(`access log ${this.name}: not open`);
    return await writeAll(this.#file, bytes);
  }

  async reopen(): Promise<void> {
    this.#triedAt = this.#now();
    const next = await openAppend(this.name); // the old one stays when this throws
    const old = this.#file;
    this.#file = next;
    old?.close();
  }

  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}

async function openAppend(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { write: true, append: true, create: true, mode: 0o644 });
  } catch (e) {
    throw new Error(`access log ${path}: ${errorText(e)}`);
  }
}

export interface AccessLogOptions {
  format: AccessLogFormat;
  /** Default BUFFER_BYTES_MAX. */
  bufferBytesMax?: number;
  /** How long lines wait for more before a write of less than a batch. Default 20. */
  flushDelayMs?: number;
  /** Failed writes and reopens. Default console.error. */
  log?: (line: string) => void;
  now?: () => number;
  /** Longest wait in close() for the sink. Default CLOSE_TIMEOUT_MS. */
  closeTimeoutMs?: number;
}

/** The access log: a request observer writing one line per request (module doc). */
export class AccessLog implements RequestObserver {
  readonly #sink: LogSink;
  readonly #format: AccessLogFormat;
  readonly #bufferBytesMax: number;
  readonly #log: (line: string) => void;
  readonly #now: () => number;
  #lines: Uint8Array[] = [];
  #bytes = 0;
  #dropped = 0;
  /** The writer runs (or is scheduled to). */
  #busy = false;
  #reopenWanted: PromiseWithResolvers<void> | null = null;
  #idle: PromiseWithResolvers<void> | null = null;
  #closed = false;
  /** close() was called: write what is left at once. */
  #closing = false;
  readonly #flushDelayMs: number;
  readonly #closeTimeoutMs: number;
  #failedLoggedAt = -Infinity;
  #failedSinceLog = 0;
  /** The last write stopped inside a line: the next batch starts with a newline. */
  #midLine = false;
  /** Lines of the write under way. */
  #inFlight = 0;

  constructor(sink: LogSink, opts: AccessLogOptions) {
    this.#sink = sink;
    this.#format = opts.format;
    this.#bufferBytesMax = opts.bufferBytesMax ?? BUFFER_BYTES_MAX;
    this.#log = opts.log ?? console.error;
    this.#now = opts.now ?? Date.now;
    this.#flushDelayMs = opts.flushDelayMs ?? FLUSH_DELAY_MS;
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
  }

  /** Lines lost: the buffer was full, or a write failed. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Lines waiting for the writer. */
  get pending(): number {
    return this.#lines.length;
  }

  end(r: RequestRecord): void {
    if (this.#closed) return;
    // A full buffer (a stuck disk) drops the line before it costs the formatting.
    if (this.#bytes >= this.#bufferBytesMax) {
      this.#dropped++;
      return;
    }
    const line = ENCODER.encode(formatRecord(r, this.#format) + "\n");
    if (this.#bytes + line.length > this.#bufferBytesMax) {
      this.#dropped++;
      return;
    }
    this.#lines.push(line);
    this.#bytes += line.length;
    this.#wake();
  }

  /** Opens the file again once the write under way is done (later lines go to it). */
  reopen(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const wanted = this.#reopenWanted ??= Promise.withResolvers<void>();
    this.#wake();
    return wanted.promise;
  }

  /** Resolves when every line given so far was written (or dropped). */
  flushed(): Promise<void> {
    if (!this.#busy) return Promise.resolve();
    return (this.#idle ??= Promise.withResolvers<void>()).promise;
  }

  /**
   * Writes what is buffered, then closes the sink; later records are ignored. Waits at most
   * `closeTimeoutMs` for a stuck sink: the lines still buffered then are dropped and counted.
   */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#lines.length > 0) this.#wake();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = await Promise.race([
      this.flushed().then(() => false),
      new Promise<boolean>((resolve) =>
        timer = setTimeout(() => resolve(true), this.#closeTimeoutMs)
      ),
    ]);
    clearTimeout(timer);
    if (this.#closed) return;
    this.#closed = true;
    if (late) {
      // The write under way too (counted lost even if it ends after all).
      const lost = this.#lines.length + this.#inFlight;
      this.#dropped += lost;
      this.#lines = [];
      this.#bytes = 0;
      this.#log(
        `proxy: access log ${this.#sink.name}: not written within ${this.#closeTimeoutMs} ms ` +
          `at close; ${lost} line(s) lost`,
      );
    }
    this.#sink.close();
  }

  #wake(): void {
    if (this.#busy) return;
    this.#busy = true;
    const now = this.#closing || this.#reopenWanted !== null ||
      this.#bytes >= this.#sink.batchBytesMax;
    setTimeout(this.#run, now ? 0 : this.#flushDelayMs);
  }

  #run = async (): Promise<void> => {
    const sink = this.#sink;
    while (!this.#closed) {
      const reopen = this.#reopenWanted;
      if (reopen !== null) {
        this.#reopenWanted = null;
        try {
          await sink.reopen();
          reopen.resolve();
        } catch (e) {
          reopen.reject(e);
        }
        continue;
      }
      if (this.#lines.length === 0) break;
      const lines = this.#take(sink.batchBytesMax);
      this.#inFlight = lines.length;
      try {
        await sink.write(concat(lines, this.#midLine));
        this.#midLine = false;
      } catch (e) {
        if (e instanceof PartialWriteError) this.#midLine = true;
        if (!this.#closed) this.#failed(lines.length, e); // else close() counted them
      }
      this.#inFlight = 0;
      // Less than a batch came meanwhile: it waits for more (one write per line would cost
      // a write and a thread-pool hop per request).
      if (this.#bytes < sink.batchBytesMax && !this.#closing) break;
    }
    this.#busy = false;
    if (!this.#closed && (this.#lines.length > 0 || this.#reopenWanted !== null)) {
      return this.#wake();
    }
    const idle = this.#idle;
    this.#idle = null;
    idle?.resolve();
  };

  /** Whole lines from the front of the buffer, up to `max` bytes (at least one). */
  #take(max: number): Uint8Array[] {
    const lines = this.#lines;
    let n = 0;
    let bytes = 0;
    while (n < lines.length && (n === 0 || bytes + lines[n]!.length <= max)) {
      bytes += lines[n]!.length;
      n++;
    }
    this.#bytes -= bytes;
    return n === lines.length ? (this.#lines = [], lines) : lines.splice(0, n);
  }

  #failed(lines: number, e: unknown): void {
    this.#dropped += lines;
    this.#failedSinceLog += lines;
    const now = this.#now();
    if (now - this.#failedLoggedAt < FAILURE_LOG_INTERVAL_MS) return;
    this.#failedLoggedAt = now;
    this.#log(
      `proxy: access log ${this.#sink.name}: write failed (${errorText(e)}); ` +
        `${this.#failedSinceLog} line(s) lost`,
    );
    this.#failedSinceLog = 0;
  }
}

const ENCODER = new TextEncoder();

/** The lines as one buffer; `newline` first (the last write cut a line). */
function concat(lines: readonly Uint8Array[], newline: boolean): Uint8Array {
  let n = newline ? 1 : 0;
  for (const l of lines) n += l.length;
  const out = new Uint8Array(n);
  let off = 0;
  if (newline) out[off++] = 0x0a;
  for (const l of lines) {
    out.set(l, off);
    off += l.length;
  }
  return out;
}

/** The access log for `--access-log` (`stdout` or a file path). */
export async function openAccessLog(
  target: string,
  opts: AccessLogOptions,
): Promise<AccessLog> {
  const sink = target === "stdout" ? new StdoutSink() : await FileSink.open(target);
  return new AccessLog(sink, opts);
}
