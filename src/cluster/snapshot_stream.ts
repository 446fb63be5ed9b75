/**
 * A Raft snapshot streamed from a file on one member to a file on another, under backpressure
 * (hashicorp/raft's InstallSnapshot with an io.Reader is the model). Neither side holds more than
 * SNAPSHOT_WINDOW_CHUNKS chunks of SNAPSHOT_CHUNK_BYTES in memory.
 *
 * The sender reads the file chunk by chunk and sends each as a request
 * `{t: "snap.chunk", key, seq, bytes, sha256, data}` over the transport; at most
 * SNAPSHOT_WINDOW_CHUNKS are unacknowledged at a time, and the next chunk leaves when one is
 * acknowledged. The receiver appends chunks in order to a temp file (a duplicate is acknowledged
 * again, a gap is refused), and after the last one syncs it and checks its size and SHA-256
 * before the transfer counts as complete; only then may the caller install it. Any failure ends
 * the transfer (raft sends the snapshot again, with a new key). A new key replaces an unfinished
 * transfer (the sender restarted); a transfer that hears nothing for SNAPSHOT_STALE_MS is given
 * up and its temp file removed.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import {
  SNAPSHOT_BYTES_MAX,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_STALE_MS,
  SNAPSHOT_WINDOW_CHUNKS,
} from "../store/mod.ts";

/** One chunk request. */
export interface ChunkRequest {
  t: "snap.chunk";
  /** Names one transfer (random per attempt). */
  key: string;
  seq: number;
  /** Size and SHA-256 (hex) of the whole file. */
  bytes: number;
  sha256: string;
  data: Uint8Array;
}

/** How long one chunk waits for its acknowledgement. */
export const SNAPSHOT_CHUNK_TIMEOUT_MS = 30_000;

export interface SendOptions {
  /** Sends one chunk request and resolves with the receiver's answer (rejects on failure). */
  request: (body: ChunkRequest) => Promise<unknown>;
  /** Names the transfer. */
  key: string;
  bytes: number;
  sha256: string;
  /** Chunks in flight at most (default SNAPSHOT_WINDOW_CHUNKS). */
  window?: number;
  chunkBytes?: number;
}

/**
 * Streams the file at `path` under a window of unacknowledged chunks; resolves when the
 * receiver acknowledged the last one (it has checked the whole file), rejects on the first failure.
 */
export async function sendSnapshotFile(path: string, o: SendOptions): Promise<void> {
  const window = o.window ?? SNAPSHOT_WINDOW_CHUNKS;
  const chunkBytes = o.chunkBytes ?? SNAPSHOT_CHUNK_BYTES;
  using file = await Deno.open(path, { read: true });
  const inflight = new Set<Promise<unknown>>();
  let failure: unknown = undefined;
  let sent = 0;
  if (o.bytes <= 0) throw new Error(`snapshot file ${path} is empty`);
  for (let seq = 0; sent < o.bytes; seq++) {
    const data = await readChunk(file, Math.min(chunkBytes, o.bytes - sent));
    if (data.byteLength === 0) throw new Error(`snapshot file ${path} is short`);
    sent += data.byteLength;
    const p: Promise<unknown> = o.request({
      t: "snap.chunk",
      key: o.key,
      seq,
      bytes: o.bytes,
      sha256: o.sha256,
      data,
    }).catch((e) => failure ??= e).finally(() => inflight.delete(p));
    inflight.add(p);
    while (inflight.size >= window && failure === undefined) await Promise.race(inflight);
    if (failure !== undefined) break;
  }
  await Promise.all(inflight);
  if (failure !== undefined) throw failure;
}

async function readChunk(file: Deno.FsFile, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await file.read(buf.subarray(off));
    if (got === null) break;
    off += got;
  }
  return buf.subarray(0, off);
}

/** A transfer being received. */
interface Incoming {
  key: string;
  from: number;
  bytes: number;
  sha256: string;
  tmp: string;
  file: Deno.FsFile;
  hash: Hash;
  next: number;
  written: number;
  heardAt: number;
  /** Chunks are handled one after another, in arrival order. */
  chain: Promise<unknown>;
  done: boolean;
}

export interface ReceiverOptions {
  /** Directory for temp files (`<data-dir>/snapshots`). */
  dir: string;
  now?: () => number;
  staleMs?: number;
  log?: (line: string) => void;
}

/** A checked, complete file a MsgSnap may now refer to. */
export interface ReceivedSnapshot {
  key: string;
  from: number;
  path: string;
  bytes: number;
  sha256: string;
}

export class SnapshotReceiver {
  readonly #o: Required<ReceiverOptions>;
  #cur: Incoming | undefined;
  #complete: ReceivedSnapshot | undefined;

  constructor(o: ReceiverOptions) {
    this.#o = {
      now: () => Date.now(),
      staleMs: SNAPSHOT_STALE_MS,
      log: (line: string) => console.error(line),
      ...o,
    };
  }

  /** The temp file of the transfer under way (tests). */
  get receivingPath(): string | undefined {
    return this.#cur?.tmp;
  }

  /**
   * Handles one chunk from member `from`; resolves with `{next}` (the next seq expected) or
   * `{done: true}` once the whole file is checked; rejects with one line otherwise.
   */
  onChunk(from: number, body: unknown): Promise<{ next: number } | { done: true }> {
    let c: ChunkRequest;
    try {
      c = checkChunk(body);
    } catch (e) {
      return Promise.reject(e);
    }
    this.sweep();
    let t = this.#cur;
    if (t === undefined || t.key !== c.key) {
      if (c.seq !== 0) {
        return Promise.reject(new Error(`snapshot transfer ${c.key} is unknown here; start over`));
      }
      this.#drop("replaced by a new transfer");
      t = this.#start(from, c);
    }
    if (t.from !== from || t.bytes !== c.bytes || t.sha256 !== c.sha256) {
      return Promise.reject(new Error(`snapshot transfer ${c.key}: chunk does not match`));
    }
    t.heardAt = this.#o.now();
    const cur = t;
    const p = cur.chain.then(() => this.#write(cur, c));
    cur.chain = p.catch(() => {});
    return p;
  }

  /** Takes the complete file of transfer `key` (then the caller owns the file). */
  take(key: string, from: number): ReceivedSnapshot | undefined {
    const c = this.#complete;
    if (c === undefined || c.key !== key || c.from !== from) return undefined;
    this.#complete = undefined;
    return c;
  }

  /** Gives up a transfer that heard nothing for staleMs; the caller may call it on a timer. */
  sweep(): void {
    const t = this.#cur;
    if (t !== undefined && !t.done && this.#o.now() - t.heardAt > this.#o.staleMs) {
      this.#drop(`no chunk for ${this.#o.staleMs} ms`);
    }
  }

  /** Drops any transfer under way and any complete file nobody took. */
  close(): void {
    this.#drop("closing");
    if (this.#complete !== undefined) removeQuietly(this.#complete.path);
    this.#complete = undefined;
  }

  #start(from: number, c: ChunkRequest): Incoming {
    const tmp = `${this.#o.dir}/receiving-${crypto.randomUUID()}.tmp`;
    const file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o600 }); // CA key inside
    const t: Incoming = {
      key: c.key,
      from,
      bytes: c.bytes,
      sha256: c.sha256,
      tmp,
      file,
      hash: createHash("sha256"),
      next: 0,
      written: 0,
      heardAt: this.#o.now(),
      chain: Promise.resolve(),
      done: false,
    };
    this.#cur = t;
    return t;
  }

  async #write(t: Incoming, c: ChunkRequest): Promise<{ next: number } | { done: true }> {
    if (this.#cur !== t) throw new Error(`snapshot transfer ${t.key} was given up`);
    if (c.seq < t.next) return t.done ? { done: true } : { next: t.next }; // a duplicate
    if (c.seq > t.next) {
      const msg = `snapshot transfer ${t.key}: chunk ${c.seq} arrived, chunk ${t.next} expected`;
      this.#drop(msg);
      throw new Error(msg);
    }
    if (t.written + c.data.byteLength > t.bytes) {
      this.#drop("more bytes than announced");
      throw new Error(`snapshot transfer ${t.key}: more bytes than the ${t.bytes} announced`);
    }
    for (let off = 0; off < c.data.byteLength;) off += await t.file.write(c.data.subarray(off));
    if (this.#cur !== t) throw new Error(`snapshot transfer ${t.key} was given up`);
    t.hash.update(c.data);
    t.written += c.data.byteLength;
    t.next++;
    if (t.written < t.bytes) return { next: t.next };
    await t.file.sync();
    t.file.close();
    t.done = true;
    const sum = t.hash.digest("hex");
    this.#cur = undefined;
    if (sum !== t.sha256) {
      removeQuietly(t.tmp);
      throw new Error(`snapshot transfer ${t.key}: checksum ${sum} differs from ${t.sha256}`);
    }
    if (this.#complete !== undefined) removeQuietly(this.#complete.path);
    this.#complete = { key: t.key, from: t.from, path: t.tmp, bytes: t.bytes, sha256: sum };
    return { done: true };
  }

  #drop(why: string): void {
    const t = this.#cur;
    if (t === undefined) return;
    this.#cur = undefined;
    if (!t.done) {
      try {
        t.file.close();
      } catch { /* already closed */ }
      this.#o.log(`cluster: gave up snapshot transfer ${t.key} from member ${t.from}: ${why}`);
    }
    removeQuietly(t.tmp);
  }
}

function checkChunk(body: unknown): ChunkRequest {
  const b = body as Record<string, unknown> | null;
  if (
    typeof b?.key !== "string" || b.key.length > 64 || !Number.isSafeInteger(b.seq) ||
    (b.seq as number) < 0 || !Number.isSafeInteger(b.bytes) || (b.bytes as number) < 0 ||
    typeof b.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(b.sha256) ||
    !(b.data instanceof Uint8Array) || b.data.byteLength > SNAPSHOT_CHUNK_BYTES
  ) {
    throw new Error("malformed snapshot chunk");
  }
  if ((b.bytes as number) > SNAPSHOT_BYTES_MAX) {
    throw new Error(`snapshot of ${b.bytes} bytes is over the ${SNAPSHOT_BYTES_MAX}-byte limit`);
  }
  return b as unknown as ChunkRequest;
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* already gone */ }
}
