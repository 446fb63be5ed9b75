/**
 * Compression (README "Middlewares: compress"): `berth.http.compress=true` (or `gzip`, `br`,
 * `gzip,br`) compresses a route's compressible responses with gzip or Brotli when the client
 * accepts them (compress_rules.ts decides which responses and which coding; Brotli when the
 * client weighs both the same). Works on every frontend: it wraps the response sink, whatever
 * writes it (HTTP/1.1, over TLS, HTTP/2).
 *
 * The body streams through `node:zlib` at moderate levels: gzip 4 gets 93–98% of gzip 6's
 * ratio in less time, Brotli 3 about gzip 6's ratio, and Brotli 4 costs 1.5–4× Brotli 3's time
 * for 2–4% more (`deno run -A scripts/compress_levels.ts`; README "Middlewares: compress").
 * Backpressure holds end to end: the compressor's input says `write() → false` and `drain` to
 * the proxy (which pauses the instance's connection), and its output pauses while the client's
 * sink is full. A response of unknown length (streamed: long polls, NDJSON, logs) is flushed
 * (`Z_SYNC_FLUSH`, Brotli's flush operation) whenever the instance's data pauses, i.e. once
 * after the writes of one event-loop turn, so what the instance sent reaches the client
 * without waiting for more; a response with a Content-Length is not (its ratio stays whole).
 * A client that goes away destroys the compressor. At most COMPRESSORS_MAX
 * compress at once per thread; a response beyond that goes out uncompressed (still with
 * `Vary`), so memory stays bounded.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import zlib from "node:zlib";
import type { ClientRequest } from "../client_conn.ts";
import type { DispatchSink } from "../conn_info.ts";
import { COMPRESS_META_KEY, type Encoding, parseCompress } from "../../store/mod.ts";
import { compressedHeaders, planCompression, responseFacts } from "./compress_rules.ts";
import { type MiddlewarePart, SinkWrapper } from "./pipeline.ts";

/** gzip level: 4 of 9 (see the module doc). */
export const GZIP_LEVEL = 4;
/** Brotli quality: 3 of 11, window 2^18 bytes (see the module doc). */
export const BROTLI_QUALITY = 3;
const BROTLI_WINDOW_BITS = 18;
/**
 * Compressors running at once in this thread. Each holds its window and tables: measured here
 * with a 50 KB body written, about 330 KiB for gzip and 660 KiB for Brotli, so at most ~41 MiB.
 */
export const COMPRESSORS_MAX = 64;

let running = 0;

/** Compressors running now in this thread (tests). */
export function compressorsRunning(): number {
  return running;
}

/** The value of request header `name` (lower case); several are joined by ", ". */
function requestHeader(req: ClientRequest, name: string): string | undefined {
  let v: string | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) {
      v = v === undefined ? raw[i + 1]! : `${v}, ${raw[i + 1]!}`;
    }
  }
  return v;
}

function createCompressor(encoding: Encoding, sizeHint: number): zlib.Gzip | zlib.BrotliCompress {
  if (encoding === "gzip") return zlib.createGzip({ level: GZIP_LEVEL });
  const params: Record<number, number> = {
    [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
    [zlib.constants.BROTLI_PARAM_LGWIN]: BROTLI_WINDOW_BITS,
  };
  if (sizeHint > 0) params[zlib.constants.BROTLI_PARAM_SIZE_HINT] = sizeHint;
  return zlib.createBrotliCompress({ params });
}

/**
 * The response sink of one request on a route with compression on: passes the head on with
 * the headers `planCompression` asks for and, when compressing, the body through a compressor.
 */
export class CompressSink extends SinkWrapper {
  readonly #offered: readonly Encoding[];
  readonly #method: string;
  readonly #accept: string | undefined;
  #z: zlib.Gzip | zlib.BrotliCompress | null = null;
  /** The proxy called `end()` (the compressor may still be flushing into `inner`). */
  #ended = false;
  #trailers: readonly string[] | null = null;
  #onAbort: (() => void) | null;
  /** Flush when the instance's data pauses (a response of unknown length). */
  #flushOnPause = false;
  /** A flush is scheduled for the end of this turn. */
  #flushQueued = false;

  constructor(inner: DispatchSink, req: ClientRequest, offered: readonly Encoding[]) {
    super(inner);
    this.#offered = offered;
    this.#method = req.method;
    this.#accept = requestHeader(req, "accept-encoding");
    this.#onAbort = inner.onAbort;
    inner.onAbort = this.#aborted;
    if (inner.writeTrailers !== undefined) {
      this.writeTrailers = (headers) => {
        if (this.#z === null) inner.writeTrailers!(headers);
        else this.#trailers = headers;
      };
    }
  }

  override get writableEnded(): boolean {
    return this.#ended || this.inner.writableEnded;
  }
  /** Called when the client goes away first (after the compressor is destroyed). */
  override get onAbort(): (() => void) | null {
    return this.#onAbort;
  }
  override set onAbort(fn: (() => void) | null) {
    this.#onAbort = fn;
  }

  /** Whether the body goes through a compressor (after `writeHead`). */
  get compressing(): boolean {
    return this.#z !== null;
  }

  override writeHead(status: number, reason: string, headers: readonly string[]): void {
    const facts = responseFacts(headers);
    const plan = planCompression(
      { method: this.#method, acceptEncoding: this.#accept },
      status,
      facts,
      this.#offered,
    );
    if (plan.encoding !== null && running >= COMPRESSORS_MAX) plan.encoding = null;
    if (plan.encoding === null && !plan.vary) return this.inner.writeHead(status, reason, headers);
    this.inner.writeHead(status, reason, compressedHeaders(headers, plan));
    if (plan.encoding === null || this.inner.destroyed) return;
    const z = this.#z = createCompressor(plan.encoding, Number(facts.contentLength ?? 0) || 0);
    this.#flushOnPause = facts.contentLength === undefined;
    running++;
    z.once("close", () => running--);
    z.on("data", (out: Buffer) => {
      if (!this.inner.write(out)) {
        z.pause();
        this.inner.once("drain", () => z.resume());
      }
    });
    z.once("end", () => {
      if (this.#trailers !== null) this.inner.writeTrailers?.(this.#trailers);
      this.inner.end();
    });
    z.once("error", () => this.inner.destroy());
  }

  override write(chunk: Uint8Array): boolean {
    const z = this.#z;
    if (z === null) return this.inner.write(chunk);
    if (this.#ended || z.destroyed) return true;
    if (this.#flushOnPause && !this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(this.#flush);
    }
    return z.write(chunk);
  }

  /** The writes of this turn are in: what they compressed to goes out now. */
  #flush = (): void => {
    this.#flushQueued = false;
    const z = this.#z;
    if (z !== null && !this.#ended && !z.destroyed) z.flush();
  };

  override end(chunk?: Uint8Array): void {
    if (this.#ended) return;
    this.#ended = true;
    const z = this.#z;
    if (z === null) return this.inner.end(chunk);
    if (z.destroyed) return;
    if (chunk !== undefined && chunk.length > 0) z.end(chunk);
    else z.end();
  }

  override destroy(): void {
    this.#z?.destroy();
    this.inner.destroy();
  }

  override once(event: "drain", fn: () => void): void {
    const z = this.#z;
    if (z === null || z.destroyed) this.inner.once(event, fn);
    else z.once(event, fn);
  }

  /** The client went away: the compressor goes, then whoever waits on the response is told. */
  #aborted = (): void => {
    this.#z?.destroy();
    const fn = this.#onAbort;
    this.#onAbort = null;
    fn?.();
  };
}

/** The compression middleware part (order.ts): on when `berth.http.compress` offers a coding. */
export const COMPRESS: MiddlewarePart = {
  name: "compress",
  build(s) {
    const text = s.get(COMPRESS_META_KEY);
    if (text === undefined) return null;
    let offered: Encoding[];
    try {
      offered = parseCompress(text);
    } catch {
      return null; // stored by another version and unreadable here: no compression
    }
    if (offered.length === 0) return null;
    return {
      name: "compress",
      response: (r, res) => new CompressSink(res, r.req, offered),
    };
  },
};
