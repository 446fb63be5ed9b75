/**
 * One client connection of the HTTP proxy, served without `node:http`'s server: llhttp (see
 * `_llhttp.ts`) parses requests, `Reply` writes responses, and the connection's timeouts live on
 * the proxy's shared coarse clock. In a profile of the proxy at full load, `node:http`'s
 * `IncomingMessage`/`ServerResponse` machinery and its per-request socket timers cost about as
 * much as the proxying itself.
 *
 * Behaviour, as `node:http`'s server had it:
 * - keep-alive (HTTP/1.1 unless `Connection: close`; HTTP/1.0 with `Connection: keep-alive`);
 *   pipelined requests answered in order (at most `PIPELINE_MAX` parsed ahead, then reading
 *   pauses);
 * - `Expect: 100-continue` answered `100 Continue` when the proxy first reads the body, i.e.
 *   once the request is routed and past the middlewares (allow, auth, ratelimit), never
 *   after a response head; a request answered without its body closes the connection
 *   (other expectations: 417);
 * - request bodies (length or chunked) streamed with backpressure;
 * - responses framed by their Content-Length, else chunked (HTTP/1.1) or by closing (HTTP/1.0);
 *   a `Date` header added when the instance sent none;
 * - parse errors: 400 (431 for a head over `headerBytesMax`), then close; so does an HTTP/1.1
 *   request without a Host header, or any with more than one (`onRefused`; an answer before a
 *   whole head, `onHeadRefused`);
 * - timeouts: the head within `headersTimeoutMs`, the whole request within `requestTimeoutMs`
 *   (408 and close), an idle keep-alive connection closes after `keepAliveTimeoutMs`;
 * - `Upgrade` requests hand the socket and the bytes after the head to `onUpgrade`;
 * - a client that half-closes after its requests still gets their responses, then the
 *   connection closes (the server must be created with `allowHalfOpen: true`), unless the
 *   proxy withdraws the request under way (`Reply.onClientEnd`);
 * - `drain()` (graceful shutdown): an idle connection closes at once; one with a request under
 *   way answers it with `Connection: close` (when its head is not sent yet) and then closes,
 *   dropping requests pipelined behind it unanswered (RFC 9112 §9.6: the client retries them).
 *
 * About 780 lines: the connection and its `Reply` share the phase, queue and keep-alive state
 * that every rule above reads; split apart, each would reach into the other's.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { STATUS_CODES } from "node:http";
import type net from "node:net";
import { Readable } from "node:stream";
import { createRequestParser, type ParsedHead, type RequestParser } from "./_llhttp.ts";
import type { CoarseClock, Deadline } from "./coarse_clock.ts";
import type { ConnEnds } from "./proxy_protocol_in.ts";

/** Requests parsed ahead of the one being answered before the connection stops reading. */
export const PIPELINE_MAX = 16;

/** A request read from a client connection. */
export interface ClientRequest {
  readonly method: string;
  /** The request target as sent (path and query). */
  readonly url: string;
  /** [name, value, …] as received. */
  readonly rawHeaders: string[];
  readonly remoteAddress: string;
  /**
   * Both ends of the client's connection (its socket; the PROXY header's when a trusted
   * balancer sent one): what a PROXY header to an instance names. Absent in tests.
   */
  readonly ends?: ConnEnds;
  /** The body while it streams in; null when the request has none. */
  readonly body: RequestBody | null;
  /** `HTTP/1.0`, `HTTP/1.1` or `HTTP/2` (default `HTTP/1.1`). */
  readonly proto?: string;
}

/**
 * A request body: a byte stream that ends with the request; `complete` once all arrived. Its
 * source (the client's socket, or an HTTP/2 stream) is paused when the body's buffer is full
 * and resumed when the body is read again.
 */
export class RequestBody extends Readable {
  complete = false;
  /** Bytes received so far (the access log's bytes in). */
  bytes = 0;
  readonly #source: { resume(): void };
  /** Called when the body is first read (the connection's `100 Continue`). */
  onFirstRead: (() => void) | null = null;

  constructor(source: { resume(): void }) {
    super();
    this.#source = source;
  }

  override push(chunk: Uint8Array | string | null, encoding?: BufferEncoding): boolean {
    if (chunk !== null) this.bytes += chunk.length;
    return super.push(chunk, encoding);
  }

  override _read(): void {
    const first = this.onFirstRead;
    if (first !== null) {
      this.onFirstRead = null;
      first();
    }
    this.#source.resume();
  }
}

/** What the proxy writes a response to (the subset of `ServerResponse` it uses). */
export interface ResponseSink {
  readonly destroyed: boolean;
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  /** Close the connection after this response. */
  shouldKeepAlive: boolean;
  writeHead(status: number, reason: string, headers: readonly string[]): void;
  write(chunk: Uint8Array): boolean;
  end(chunk?: Uint8Array): void;
  destroy(): void;
  once(event: "drain", fn: () => void): void;
  /**
   * Trailer fields [name, value, …] sent with the end of the body (call before `end()`); absent
   * on sinks that cannot send trailers (HTTP/1.1 replies here), which then drop them.
   */
  writeTrailers?(headers: readonly string[]): void;
  /**
   * Set by the proxy once a byte of the request went to an instance: a request not forwarded
   * may be refused as unprocessed (HTTP/2 REFUSED_STREAM on shutdown; the client retries it).
   */
  forwarded?: boolean;
}

/** Told once by a client's sink that its response is over (request_meter.ts). */
export interface SinkMeter {
  /**
   * `status`: the status sent when the response ended; when the proxy cut it (`destroy`), that
   * status or 502 if none went out; 499 when the client left first. `bytesOut`: the body bytes
   * written (none for HEAD, 1xx, 204, 304).
   */
  done(status: number, bytesOut: number): void;
}

export interface ClientConnOptions {
  clock: CoarseClock;
  headerBytesMax: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Answers a request; `reply.onAbort` is called if the client goes away first. */
  onRequest(req: ClientRequest, reply: Reply): void;
  /** Takes over the connection after an Upgrade request head. */
  onUpgrade(req: ClientRequest, socket: net.Socket, head: Buffer): void;
  /**
   * A request with a whole head the connection answered itself (400: no Host or more than
   * one; 417): `bodyBytes` of the answer's body (the access log and metrics count it).
   */
  onRefused?(req: ClientRequest, status: number, bodyBytes: number): void;
  /**
   * An answer before a whole head (400 malformed, 431 too large, 408 too slow), given only when
   * bytes of that head arrived: a connection that sends nothing, or an idle keep-alive one,
   * closes without a word (as nginx logs a 400 only when bytes came).
   */
  onHeadRefused?(r: HeadRefusal): void;
}

/** An answer the connection sent before it had a whole request head (`onHeadRefused`). */
export interface HeadRefusal {
  status: number;
  /** Bytes of the answer's body. */
  bodyBytes: number;
  /** When the head's first bytes arrived (ms since the epoch). */
  startedMs: number;
  durationMs: number;
  /** From the request line, when it arrived whole at the start of a read; else "". */
  method: string;
  url: string;
}

/** RFC 9110 §5.6.7 date, recomputed at most once a second. */
let dateText = "";
let dateSecond = -1;
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

const CRLF = Buffer.from("\r\n");
const LAST_CHUNK = Buffer.from("0\r\n\r\n");

const enum Phase {
  /** Waiting for the first bytes of a request head (keep-alive timeout). */
  Idle,
  /** Reading a head (headers timeout) or a body (request timeout). */
  Reading,
  /** A request is being answered; the proxy's own timeouts apply. */
  Answering,
}

interface Pending {
  req: ClientRequest;
  keepAlive: boolean;
  http10: boolean;
  head: boolean;
  /** The client waits for `100 Continue` before it sends the body, and got none yet. */
  continueOwed?: boolean;
}

/** One client connection. */
export class ClientConn implements Deadline {
  readonly socket: net.Socket;
  readonly #opts: ClientConnOptions;
  readonly #parser: RequestParser;
  /** Parsed requests not answered yet, oldest first; the first is being answered. */
  readonly #queue: Pending[] = [];
  #current: Reply | null = null;
  /** The request whose body is being parsed. */
  #reading: ClientRequest | null = null;
  #upgrade: ClientRequest | null = null;
  #closing = false;
  /** The client half-closed: answer what it sent, then close. */
  #readEnded = false;
  #phase = Phase.Idle;
  /** Bytes of a request head arrived since the connection was last idle. */
  #bytesIn = false;
  /**
   * When the bytes of the head being read began to arrive (ms; with `onHeadRefused` only); 0:
   * not known (a head behind a request that ended within a read), taken at the next read.
   */
  #headAt = 0;
  /** The read the head being read began with, when it began at that read's start. */
  #headRead: Buffer | null = null;
  /** The parser holds part of a head (its first byte came; the head is not whole yet). */
  #headBegun = false;
  /** drain() was called: no more keep-alive. */
  #draining = false;
  expiresAt = 0;

  constructor(socket: net.Socket, opts: ClientConnOptions) {
    this.socket = socket;
    this.#opts = opts;
    this.#parser = createRequestParser(opts.headerBytesMax, {
      onBegin: () => this.#onBegin(),
      onHead: (h) => this.#onHead(h),
      onBody: (chunk) => {
        const body = this.#reading?.body;
        if (body && !body.push(chunk)) socket.pause();
      },
      onComplete: () => this.#onComplete(),
    });
    socket.on("data", this.#onData);
    socket.on("error", () => socket.destroy());
    socket.once("close", this.#onClose);
    socket.once("end", this.#onEnd);
    this.#setPhase(Phase.Reading, opts.headersTimeoutMs);
  }

  /** Closes the connection now. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Requests received and not answered yet (the one being answered included). */
  get requests(): number {
    return this.#queue.length;
  }

  /**
   * Graceful shutdown: closes the connection now when it is idle (no request, no byte of one),
   * else after the response under way, which says `Connection: close` when its head is not sent
   * yet. Requests pipelined behind it are not answered.
   */
  drain(): void {
    if (this.#closing || this.#draining) return;
    this.#draining = true;
    const current = this.#current;
    if (current === null && this.#reading === null && !this.#bytesIn) {
      this.#closing = true;
      this.#opts.clock.disarm(this);
      this.socket.end();
      return;
    }
    if (current !== null && !current.headersSent) current.shouldKeepAlive = false;
  }

  /** Deadline: a timeout of the current phase passed. */
  expire(): void {
    if (this.#phase === Phase.Reading && this.#current === null) {
      this.#refuseHead(408, "request timeout", this.#bytesIn);
    } else this.socket.destroy();
  }

  #setPhase(phase: Phase, timeoutMs: number): void {
    this.#phase = phase;
    const clock = this.#opts.clock;
    if (phase === Phase.Answering) clock.disarm(this);
    else {
      this.expiresAt = clock.after(timeoutMs);
      clock.arm(this);
    }
  }

  #onData = (d: Buffer): void => {
    if (this.#closing) return;
    try {
      this.#read(d);
    } catch {
      // A bug must cost this connection, never the agent.
      this.socket.destroy();
    }
  };

  #read(d: Buffer): void {
    // Empty lines before a request line are ignored (RFC 9112 §2.2; the parser skips them): an
    // idle connection that gets only those stays idle, with its keep-alive timeout.
    if (this.#phase !== Phase.Idle || !lineEndsOnly(d)) this.#heard(d);
    const r = this.#parser.execute(d);
    if (typeof r !== "number") {
      const status = r.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
      const text = status === 431 ? "request header fields too large" : "bad request";
      // An error in a body (of a request answered already) is no head's refusal.
      if (this.#reading === null) this.#refuseHead(status, text, true);
      else this.#answerAndClose(status, text);
      return;
    }
    const up = this.#upgrade;
    if (up !== null) {
      this.#upgrade = null;
      this.#detach();
      this.#opts.onUpgrade(up, this.socket, d.subarray(r));
    }
  }

  /** Bytes of a request came: the headers timeout, the start of a head that may be refused. */
  #heard(d: Buffer): void {
    if (!this.#bytesIn) {
      this.#bytesIn = true;
      if (this.#reading === null && this.#opts.onHeadRefused !== undefined) {
        this.#headAt = Date.now();
        this.#headRead = d;
      }
    } else if (this.#headAt === 0 && this.#reading === null && this.#opts.onHeadRefused) {
      this.#headAt = Date.now(); // a pipelined head's next read: no clock read per request
    }
    if (this.#phase === Phase.Idle) this.#setPhase(Phase.Reading, this.#opts.headersTimeoutMs);
  }

  #onBegin(): void {
    this.#headBegun = true;
    // Pipelined behind a response that ended within this read: a head's bytes came, not idle.
    if (this.#phase === Phase.Idle) {
      this.#bytesIn = true;
      this.#setPhase(Phase.Reading, this.#opts.headersTimeoutMs);
    }
  }

  #onHead(h: ParsedHead): void {
    this.#headBegun = false;
    if (this.#closing) return; // answered already (a 400 to an earlier head in this read)
    this.#headRead = null;
    const socket = this.socket;
    let body: RequestBody | null = null;
    let expect: string | null = null;
    let framed = false;
    let hosts = 0;
    const raw = h.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.length === 14 || name.length === 17) {
        const lower = name.toLowerCase();
        if (
          lower === "transfer-encoding" || (lower === "content-length" && raw[i + 1] !== "0")
        ) framed = true;
      } else if (name.length === 6 && name.toLowerCase() === "expect") expect = raw[i + 1]!;
      else if (name.length === 4 && name.toLowerCase() === "host") hosts++;
    }
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0.
    if (hosts > 1 || (hosts === 0 && h.versionMinor !== 0)) {
      this.#refuse(
        h,
        400,
        hosts > 1 ? "bad request: more than one Host" : "bad request: no Host",
      );
      return;
    }
    if (framed) body = new RequestBody(socket);
    const req: ClientRequest = {
      method: h.method,
      url: h.url,
      rawHeaders: raw,
      remoteAddress: socket.remoteAddress ?? "",
      ends: socket,
      body,
      proto: h.versionMinor === 0 ? "HTTP/1.0" : "HTTP/1.1",
    };
    // An upgrade to h2c only is served as a plain request (headers.ts drops Upgrade and
    // HTTP2-Settings): a tunnel would carry its later streams past the middlewares. llhttp reads
    // nothing after it, so the connection closes after the answer.
    const h2c = h.upgrade && h.method !== "CONNECT" && upgradesToH2cOnly(raw);
    if (h.upgrade && !h2c) {
      // CONNECT is not proxied; an upgrade behind pipelined requests is not either.
      if (h.method === "CONNECT" || this.#queue.length > 0) {
        this.#closing = true;
        socket.destroy();
        return;
      }
      this.#upgrade = req;
      return;
    }
    this.#reading = req;
    const p: Pending = {
      req,
      keepAlive: h.shouldKeepAlive && !h2c,
      http10: h.versionMinor === 0,
      head: h.method === "HEAD",
    };
    if (expect !== null) {
      if (expect.toLowerCase() !== "100-continue") {
        this.#queue.push(p);
        if (this.#current === null) this.#refuse(h, 417, "expectation failed");
        return;
      }
      if (!p.http10 && body !== null) {
        p.continueOwed = true;
        body.onFirstRead = () => this.#sendContinue(p);
      }
    }
    this.#queue.push(p);
    if (this.#queue.length > PIPELINE_MAX) socket.pause();
    if (this.#current === null) this.#next();
    else if (body !== null) this.#setPhase(Phase.Reading, this.#opts.requestTimeoutMs);
  }

  #onComplete(): void {
    const req = this.#reading;
    this.#reading = null;
    // A head pipelined behind this request starts in this read or a later one (no request line).
    this.#headAt = 0;
    if (req?.body) {
      req.body.complete = true;
      req.body.push(null);
    }
    if (this.#current !== null) this.#setPhase(Phase.Answering, 0);
  }

  #next(): void {
    const p = this.#queue[0];
    if (p === undefined) {
      // A head that came in part during the response: its bytes came (the headers timeout).
      if (this.#headBegun) return this.#setPhase(Phase.Reading, this.#opts.headersTimeoutMs);
      this.#bytesIn = false;
      this.#setPhase(Phase.Idle, this.#opts.keepAliveTimeoutMs);
      return;
    }
    const reply = new Reply(this, p.keepAlive && !this.#draining, p.http10, p.head);
    this.#current = reply;
    // The request timeout covers a body still arriving; the proxy's own timeouts the rest.
    if (p.req === this.#reading) this.#setPhase(Phase.Reading, this.#opts.requestTimeoutMs);
    else this.#setPhase(Phase.Answering, 0);
    this.#opts.onRequest(p.req, reply);
  }

  /** `reply` ended: close, or go on with the next request. */
  replied(reply: Reply): void {
    if (reply !== this.#current) return;
    this.#current = null;
    const p = this.#queue.shift()!;
    // A body the proxy did not read (an early answer): drain it so the next request parses;
    // unless the client waits for a 100 Continue it never got: then it may never send it.
    if (p.req.body !== null && !p.req.body.complete) {
      if (p.continueOwed) {
        this.#closing = true;
        this.#opts.clock.disarm(this);
        this.socket.end();
        return;
      }
      p.req.body.resume();
    }
    if (
      !reply.shouldKeepAlive || this.#draining || (this.#readEnded && this.#queue.length === 0)
    ) {
      this.#closing = true;
      this.#opts.clock.disarm(this);
      this.socket.end();
      return;
    }
    if (this.socket.isPaused() && this.#queue.length <= PIPELINE_MAX) this.socket.resume();
    this.#next();
  }

  /** `100 Continue` for `p`, when it is the request being answered and no head went out yet. */
  #sendContinue(p: Pending): void {
    const current = this.#current;
    if (!p.continueOwed || this.#queue[0] !== p || current === null || current.headersSent) return;
    if (this.#closing || this.socket.destroyed) return;
    p.continueOwed = false;
    this.socket.write("HTTP/1.1 100 Continue\r\n\r\n");
  }

  /** Answers a request with a whole head itself (#answerAndClose) and says so (onRefused). */
  #refuse(h: ParsedHead, status: number, text: string): void {
    const answered = this.#current === null;
    this.#answerAndClose(status, text);
    if (!answered) return; // cut instead: a response was under way
    this.#opts.onRefused?.(
      {
        method: h.method,
        url: h.url,
        rawHeaders: h.rawHeaders,
        remoteAddress: this.socket.remoteAddress ?? "",
        ends: this.socket,
        body: null,
        proto: h.versionMinor === 0 ? "HTTP/1.0" : "HTTP/1.1",
      },
      status,
      Buffer.byteLength(`${text}\n`),
    );
  }

  /**
   * Answers a head that never became whole (#answerAndClose) and says so (onHeadRefused) when
   * bytes of it arrived (`heard`) and no response was under way.
   */
  #refuseHead(status: number, text: string, heard: boolean): void {
    const answered = this.#current === null;
    this.#answerAndClose(status, text);
    const told = this.#opts.onHeadRefused;
    if (!answered || !heard || told === undefined) return;
    const now = Date.now();
    const startedMs = this.#headAt === 0 ? now : this.#headAt;
    const line = this.#headRead === null ? null : requestLine(this.#headRead);
    told({
      status,
      bodyBytes: Buffer.byteLength(`${text}\n`),
      startedMs,
      durationMs: Math.max(0, now - startedMs),
      method: line?.[0] ?? "",
      url: line?.[1] ?? "",
    });
  }

  /** Answers a protocol error with a short plain response and closes. */
  #answerAndClose(status: number, text: string): void {
    this.#closing = true;
    this.#opts.clock.disarm(this);
    if (this.#current !== null) {
      // A response is under way: it cannot be interleaved with another.
      this.socket.destroy();
      return;
    }
    const body = `${text}\n`;
    this.socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n` +
        `content-type: text/plain; charset=utf-8\r\ncontent-length: ${
          Buffer.byteLength(body)
        }\r\n` +
        `connection: close\r\n\r\n${body}`,
    );
  }

  #detach(): void {
    this.#closing = true;
    this.#opts.clock.disarm(this);
    this.socket.off("data", this.#onData);
    this.socket.off("close", this.#onClose);
    this.socket.off("end", this.#onEnd);
    // Bytes after the head wait, buffered, for whoever takes the connection over.
    this.socket.pause();
    this.#parser.free();
  }

  /** The client half-closed: finish the requests it sent, then close; a cut-off one: close. */
  #onEnd = (): void => {
    this.#readEnded = true;
    if (this.#closing) return;
    if (this.#reading !== null) {
      // The body of a request stopped short: it can never be complete.
      this.#closing = true;
      this.socket.destroy();
      return;
    }
    if (this.#current === null && this.#queue.length === 0) {
      this.#closing = true;
      this.#opts.clock.disarm(this);
      this.socket.end();
      return;
    }
    this.#current?.clientEnded();
  };

  #onClose = (): void => {
    this.#opts.clock.disarm(this);
    const current = this.#current;
    this.#current = null;
    for (const p of this.#queue) p.req.body?.destroy();
    this.#queue.length = 0;
    this.#parser.free();
    current?.aborted();
  };
}

/** The response to one request on a `ClientConn`. */
export class Reply implements ResponseSink {
  readonly #conn: ClientConn;
  readonly #http10: boolean;
  readonly #noBodyRequest: boolean;
  /** The head, written with the first body bytes (one write for a small response). */
  #head: string | null = null;
  #chunked = false;
  #noBody = false;
  headersSent = false;
  writableEnded = false;
  shouldKeepAlive: boolean;
  /** Called if the connection closes before the response ended. */
  onAbort: (() => void) | null = null;
  /**
   * Called if the client half-closes while this response is under way; true: the proxy
   * withdrew the request (still waiting for an instance's connection: http_proxy.ts), so the
   * client gave up: the connection closes and the meter counts 499.
   */
  onClientEnd: (() => boolean) | null = null;
  /** Declared so the proxy setting it does not change every reply's shape. */
  forwarded = false;
  /** Told once when the response is over (set by the proxy: the metrics). */
  meter: SinkMeter | null = null;
  /** The status sent (0: none yet) and the body bytes written, for `meter`. */
  #status = 0;
  #bytesOut = 0;

  constructor(conn: ClientConn, keepAlive: boolean, http10: boolean, head: boolean) {
    this.#conn = conn;
    this.shouldKeepAlive = keepAlive;
    this.#http10 = http10;
    this.#noBodyRequest = head;
  }

  get destroyed(): boolean {
    return this.#conn.socket.destroyed;
  }

  writeHead(status: number, reason: string, headers: readonly string[]): void {
    if (this.headersSent) throw new Error("headers already sent");
    let text = `HTTP/1.1 ${status} ${reason || (STATUS_CODES[status] ?? "")}\r\n`;
    let length = false;
    let date = false;
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = headers[i]!;
      const value = headers[i + 1]!;
      if (/[\r\n]/.test(value) || /[\s:]/.test(name) || name === "") {
        throw new Error(`invalid header ${JSON.stringify(name.slice(0, 40))}`);
      }
      if (name.length === 14 && name.toLowerCase() === "content-length") length = true;
      else if (name.length === 4 && name.toLowerCase() === "date") date = true;
      text += `${name}: ${value}\r\n`;
    }
    if (!date) text += `date: ${httpDate()}\r\n`;
    this.#noBody = this.#noBodyRequest || status === 204 || status === 304 || status < 200;
    if (!this.#noBody && !length) {
      if (this.#http10) this.shouldKeepAlive = false; // framed by closing
      else {
        this.#chunked = true;
        text += "transfer-encoding: chunked\r\n";
      }
    }
    if (!this.shouldKeepAlive) text += "connection: close\r\n";
    else if (this.#http10) text += "connection: keep-alive\r\n";
    this.#head = text + "\r\n";
    this.headersSent = true;
    this.#status = status;
  }

  write(chunk: Uint8Array): boolean {
    if (!this.#noBody) this.#bytesOut += chunk.length;
    return this.#write(chunk);
  }

  #write(chunk: Uint8Array): boolean {
    const socket = this.#conn.socket;
    if (this.writableEnded || socket.destroyed) return true;
    if (this.#noBody || chunk.length === 0) {
      this.#flushHead();
      return true;
    }
    socket.cork();
    this.#flushHead();
    let ok: boolean;
    if (this.#chunked) {
      socket.write(`${chunk.length.toString(16)}\r\n`, "latin1");
      socket.write(chunk);
      ok = socket.write(CRLF);
    } else ok = socket.write(chunk);
    socket.uncork();
    return ok;
  }

  end(chunk?: Uint8Array): void {
    if (this.writableEnded) return;
    const socket = this.#conn.socket;
    if (chunk !== undefined && !this.#noBody) this.#bytesOut += chunk.length;
    if (!socket.destroyed) {
      socket.cork();
      if (chunk !== undefined && chunk.length > 0) this.#write(chunk);
      else this.#flushHead();
      if (this.#chunked && !this.#noBody) socket.write(LAST_CHUNK);
      socket.uncork();
    }
    this.writableEnded = true;
    this.#metered(this.#status);
    this.#conn.replied(this);
  }

  destroy(): void {
    this.#conn.socket.destroy();
    // Cut by the proxy: what the client saw began with the status sent, if any.
    this.#metered(this.#status === 0 ? 502 : this.#status);
  }

  /** Tells the meter, once. */
  #metered(status: number): void {
    const meter = this.meter;
    if (meter === null) return;
    this.meter = null;
    meter.done(status, this.#bytesOut);
  }

  once(event: "drain", fn: () => void): void {
    this.#conn.socket.once(event, fn);
  }

  /** The client half-closed before the response ended. */
  clientEnded(): void {
    if (this.writableEnded) return;
    const fn = this.onClientEnd;
    this.onClientEnd = null;
    if (fn?.() !== true) return;
    this.#metered(499); // the client left (not a cut by the proxy: destroy() would say 502)
    this.#conn.socket.destroy();
  }

  /** The connection closed first. */
  aborted(): void {
    if (this.writableEnded) return;
    this.#metered(499);
    const fn = this.onAbort;
    this.onAbort = null;
    fn?.();
  }

  #flushHead(): void {
    if (this.#head === null) return;
    this.#conn.socket.write(this.#head, "latin1");
    this.#head = null;
  }
}

/** Whether `d` holds CR and LF bytes only (empty lines). */
function lineEndsOnly(d: Buffer): boolean {
  for (let i = 0; i < d.length; i++) if (d[i] !== 13 && d[i] !== 10) return false;
  return true;
}

/** `METHOD SP TARGET SP HTTP/1.x CRLF` at the start of `d`: [method, target]; else null. */
export function requestLine(d: Buffer): [string, string] | null {
  const m = REQUEST_LINE.exec(d.subarray(0, LINE_MAX).toString("latin1"));
  return m === null ? null : [m[1]!, m[2]!];
}

/** The request line the log takes from a refused head: a token, a visible-ASCII target. */
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}) ([\x21-\x7e]+) HTTP\/1\.[01]\r?\n/;
/** Longest request line read for it (longer: none). */
const LINE_MAX = 8192;

/** Whether the Upgrade headers of `raw` ask for `h2c` and nothing else (RFC 9113 §3.1). */
export function upgradesToH2cOnly(raw: readonly string[]): boolean {
  let h2c = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.length !== 7 || raw[i]!.toLowerCase() !== "upgrade") continue;
    for (const token of raw[i + 1]!.split(",")) {
      const t = token.trim().toLowerCase();
      if (t === "") continue;
      if (t !== "h2c") return false;
      h2c = true;
    }
  }
  return h2c;
}
