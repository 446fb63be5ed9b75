/**
 * A guard between an HTTP/2 client's socket and Deno's `node:http2` server session
 * (`GoawayGuard`): bytes pass both ways unchanged, except GOAWAY frames from the client, which
 * are taken out before nghttp2 reads them and reported instead (`onGoaway`); the frontend then
 * closes the session itself (its own GOAWAY; streams under way finish).
 *
 * Why: Deno 2.9.6's `node:http2` server aborts the whole process (an nghttp2 assertion in
 * `find_stream_on_goaway_func`, or `free(): invalid pointer`) when it receives a valid GOAWAY
 * on a connection that carried a few hundred streams — what `h2load`, and any nghttp2-based
 * client, sends when it is done (`h2load -n 300 -c 1 -m 1` against a bare `node:http2` server
 * kills it in most runs here, and always within three: h2_goaway_crash_test.ts). A GOAWAY the
 * server sends itself is fine (measured: two-phase GOAWAYs after 250 streams, six rounds). A client's GOAWAY tells the
 * server nothing it needs besides "no new streams": its last-stream-id names streams the server
 * opened, and the proxy opens none (no server push).
 *
 * The scan reads frame headers (9 bytes each) and skips payloads; the connection preface
 * (24 bytes) comes first. A frame header split across reads is held back until it is whole.
 *
 * The other way, what the session writes in one event-loop turn goes to the socket in one write
 * (`#queue`): one TLS record and system call per turn instead of one per frame (measured with
 * scripts/h2_profile.ts: 2 socket writes per small response before, ~0.16 after).
 *
 * It also counts the frames that make the server answer (PING and SETTINGS without ACK): over
 * `CONTROL_FRAMES_MAX` in a `CONTROL_WINDOW_MS` window (CVE-2019-9512/9515: a client floods
 * them and never reads the ACKs) the rest of the input is dropped and `onFlood` is called (the
 * frontend answers GOAWAY ENHANCE_YOUR_CALM and closes). Behind this guard nghttp2's own
 * outbound-ACK limit never fires: measured on Deno 2.9.6, the session queued the ACKs of 2.2
 * million PINGs (RSS +500 MB) instead (h2_flood_test.ts).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";

const PREFACE_BYTES = 24;
const FRAME_HEADER_BYTES = 9;
const SETTINGS = 4;
const PING = 6;
const GOAWAY = 7;
/** Bytes the session wrote that go to the socket at once rather than at the turn's end. */
const COALESCE_BYTES_MAX = 64 * 1024;
const ACK = 1;

/** PING and SETTINGS frames (without ACK) a client may send per window (nghttp2: 1000 ACKs queued). */
export const CONTROL_FRAMES_MAX = 1000;
/** The counting window for CONTROL_FRAMES_MAX. */
export const CONTROL_WINDOW_MS = 10_000;

export interface GoawayFilterOptions {
  /** The client sent GOAWAY (the frame is taken out). */
  onGoaway: () => void;
  /** The client sent over `controlFramesMax` PING/SETTINGS in one window; input stops here. */
  onFlood?: () => void;
  /** Default CONTROL_FRAMES_MAX. */
  controlFramesMax?: number;
  /** Default CONTROL_WINDOW_MS. */
  controlWindowMs?: number;
  /** Default Date.now. */
  now?: () => number;
}

/** Takes GOAWAY frames out of a client's byte stream, stops a control-frame flood (module doc). */
export class GoawayFilter {
  readonly #opts: GoawayFilterOptions;
  readonly #now: () => number;
  readonly #controlMax: number;
  #windowStart = -Infinity;
  #control = 0;
  /** Over the control-frame budget: nothing more passes. */
  #flooded = false;
  #preface = PREFACE_BYTES;
  readonly #header = Buffer.alloc(FRAME_HEADER_BYTES);
  #headerBytes = 0;
  /** Payload bytes of the current frame still to pass (or drop). */
  #payload = 0;
  #dropping = false;

  constructor(opts: GoawayFilterOptions | (() => void)) {
    this.#opts = typeof opts === "function" ? { onGoaway: opts } : opts;
    this.#now = this.#opts.now ?? Date.now;
    this.#controlMax = this.#opts.controlFramesMax ?? CONTROL_FRAMES_MAX;
  }

  /** Whether the client went over its control-frame budget (its input is dropped since). */
  get flooded(): boolean {
    return this.#flooded;
  }

  /** The bytes of `chunk` nghttp2 should see (`chunk` itself when nothing was held or dropped). */
  scan(chunk: Uint8Array): Uint8Array {
    const pieces: Uint8Array[] = [];
    let whole = true;
    let i = 0;
    while (i < chunk.length) {
      if (this.#flooded) {
        whole = false;
        break;
      }
      if (this.#preface > 0) {
        const n = Math.min(this.#preface, chunk.length - i);
        pieces.push(chunk.subarray(i, i + n));
        this.#preface -= n;
        i += n;
      } else if (this.#payload > 0) {
        const n = Math.min(this.#payload, chunk.length - i);
        if (this.#dropping) whole = false;
        else pieces.push(chunk.subarray(i, i + n));
        this.#payload -= n;
        i += n;
      } else {
        const n = Math.min(FRAME_HEADER_BYTES - this.#headerBytes, chunk.length - i);
        this.#header.set(chunk.subarray(i, i + n), this.#headerBytes);
        const started = this.#headerBytes;
        this.#headerBytes += n;
        i += n;
        if (this.#headerBytes < FRAME_HEADER_BYTES) {
          whole = false; // held back until whole
          continue;
        }
        this.#headerBytes = 0;
        this.#payload = this.#header.readUIntBE(0, 3);
        const type = this.#header[3];
        this.#dropping = type === GOAWAY;
        if ((type === PING || type === SETTINGS) && (this.#header[4]! & ACK) === 0) {
          this.#countControl();
          if (this.#flooded) {
            whole = false;
            break;
          }
        }
        if (this.#dropping) {
          whole = false;
          this.#opts.onGoaway();
        } else if (started === 0) pieces.push(chunk.subarray(i - n, i));
        else {
          whole = false; // the header began in an earlier chunk
          pieces.push(Uint8Array.from(this.#header));
        }
      }
    }
    if (whole) return chunk;
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }

  #countControl(): void {
    const now = this.#now();
    if (now - this.#windowStart >= (this.#opts.controlWindowMs ?? CONTROL_WINDOW_MS)) {
      this.#windowStart = now;
      this.#control = 0;
    }
    if (++this.#control <= this.#controlMax) return;
    this.#flooded = true;
    this.#opts.onFlood?.();
  }
}

/** The socket-like face `node:http2` reads from a connection. */
interface ClientSocket extends Duplex {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly alpnProtocol?: string | false | null;
  setTimeout(ms: number, cb?: () => void): unknown;
  setNoDelay?(noDelay?: boolean): unknown;
}

/** A client's connection as the HTTP/2 session sees it: without GOAWAY frames (module doc). */
export class GoawayGuard extends Duplex {
  readonly #socket: ClientSocket;
  readonly #filter: GoawayFilter;
  /** Written by the session, not yet by the socket (`#queue`). */
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  /** The socket's write buffer is full: the session's next write waits in `#waiting`. */
  #socketFull = false;
  #waiting: ((e?: Error | null) => void) | null = null;

  /**
   * `onGoaway`: the client sent GOAWAY; `onFlood`: it went over its control-frame budget (both
   * called after the bytes before went to the session).
   */
  constructor(socket: ClientSocket, onGoaway: () => void, onFlood: () => void = () => {}) {
    super({ allowHalfOpen: true });
    this.#socket = socket;
    let goaway = false;
    let flood = false;
    this.#filter = new GoawayFilter({ onGoaway: () => goaway = true, onFlood: () => flood = true });
    socket.on("data", (d: Buffer) => {
      const bytes = this.#filter.scan(d);
      if (bytes.length > 0 && !this.push(bytes)) socket.pause();
      if (flood) {
        flood = false;
        socket.pause(); // nothing more is read from it
        setImmediate(onFlood);
      }
      if (!goaway) return;
      goaway = false;
      setImmediate(onGoaway); // once the session read what came before
    });
    socket.once("end", () => this.push(null));
    socket.once("close", () => this.destroy());
    socket.on("error", (e: Error) => this.destroy(e));
  }

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }

  get alpnProtocol(): string | false | null | undefined {
    return this.#socket.alpnProtocol;
  }

  /** Over TLS (the session reports it as `encrypted`). */
  get encrypted(): boolean {
    return true;
  }

  setNoDelay(noDelay?: boolean): this {
    this.#socket.setNoDelay?.(noDelay);
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.#socket.setTimeout(ms, cb);
    return this;
  }

  override _read(): void {
    if (!this.#filter.flooded) this.#socket.resume();
  }

  override _write(chunk: Buffer, _e: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#queue(chunk);
    this.#after(cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    for (const c of chunks) this.#queue(c.chunk);
    this.#after(cb);
  }

  /**
   * Bytes from the session wait for the end of this event-loop turn and go to the socket in one
   * write: the session writes each frame on its own (a small response is a HEADERS and a DATA
   * write), and every socket write is a TLS record and a system call of its own.
   */
  #queue(chunk: Buffer): void {
    this.#out.push(chunk);
    this.#outBytes += chunk.length;
    if (this.#outBytes >= COALESCE_BYTES_MAX) this.#flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flushSoon);
    }
  }

  /** The session may write on unless the socket's buffer is full (then: once it drained). */
  #after(cb: (e?: Error | null) => void): void {
    if (this.#socketFull) this.#waiting = cb;
    else cb();
  }

  #flushSoon = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  #flush(): void {
    if (this.#out.length === 0 || this.#socket.destroyed) return;
    const bytes = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out);
    this.#out = [];
    this.#outBytes = 0;
    if (this.#socket.write(bytes) || this.#socketFull) return;
    this.#socketFull = true;
    this.#socket.once("drain", () => {
      this.#socketFull = false;
      const cb = this.#waiting;
      this.#waiting = null;
      cb?.();
    });
  }

  override _final(cb: () => void): void {
    this.#flush();
    this.#socket.end(cb);
  }

  override _destroy(e: Error | null, cb: (e: Error | null) => void): void {
    this.#socket.destroy();
    cb(e);
  }
}
