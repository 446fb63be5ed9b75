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
 * kills it every time). A GOAWAY the server sends itself is fine. A client's GOAWAY tells the
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
 * @module
 */
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";

const PREFACE_BYTES = 24;
const FRAME_HEADER_BYTES = 9;
const GOAWAY = 7;
/** Bytes the session wrote that go to the socket at once rather than at the turn's end. */
const COALESCE_BYTES_MAX = 64 * 1024;

/** Takes GOAWAY frames out of a client's byte stream (module doc). */
export class GoawayFilter {
  readonly #onGoaway: () => void;
  #preface = PREFACE_BYTES;
  readonly #header = Buffer.alloc(FRAME_HEADER_BYTES);
  #headerBytes = 0;
  /** Payload bytes of the current frame still to pass (or drop). */
  #payload = 0;
  #dropping = false;

  constructor(onGoaway: () => void) {
    this.#onGoaway = onGoaway;
  }

  /** The bytes of `chunk` nghttp2 should see (`chunk` itself when nothing was held or dropped). */
  scan(chunk: Uint8Array): Uint8Array {
    const pieces: Uint8Array[] = [];
    let whole = true;
    let i = 0;
    while (i < chunk.length) {
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
        this.#dropping = this.#header[3] === GOAWAY;
        if (this.#dropping) {
          whole = false;
          this.#onGoaway();
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

  /** `onGoaway`: the client sent GOAWAY (called after the bytes before it went to the session). */
  constructor(socket: ClientSocket, onGoaway: () => void) {
    super({ allowHalfOpen: true });
    this.#socket = socket;
    let goaway = false;
    this.#filter = new GoawayFilter(() => goaway = true);
    socket.on("data", (d: Buffer) => {
      const bytes = this.#filter.scan(d);
      if (bytes.length > 0 && !this.push(bytes)) socket.pause();
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
    this.#socket.resume();
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
