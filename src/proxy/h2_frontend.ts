/**
 * HTTP/2 to clients (a TLS connection that negotiated ALPN `h2`): each connection is a
 * `node:http2` server session, and each of its streams becomes a `ClientRequest` with an
 * `H2Reply`, handed to the proxy's `dispatch` — the same path as HTTP/1.1, so streams go to
 * the instances over the pooled HTTP/1.1 upstream connections, with the same routes, retries
 * and errors (502/503/504).
 *
 * Limits (README, "HTTP/2"):
 * - `streamsMax` concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS; more are
 *   refused with REFUSED_STREAM);
 * - `headerListBytesMax` per request (SETTINGS_MAX_HEADER_LIST_SIZE): a larger header list is
 *   answered 431 on its own stream (nghttp2 resets it with ENHANCE_YOUR_CALM once the client
 *   acknowledged the setting), the connection's other streams go on;
 * - rapid reset (CVE-2023-44487): a connection whose client cancels more than
 *   `rapidResetsMax` streams before their response began within `rapidResetWindowMs` gets
 *   GOAWAY ENHANCE_YOUR_CALM and is closed; every cancelled stream aborts its upstream attempt;
 * - a request body that sends nothing for `requestTimeoutMs` while the proxy reads it gets 408
 *   (a reset stream once the response began): idle time, not HTTP/1.1's whole-request time,
 *   since HTTP/2 carries long-lived streams (gRPC);
 * - a connection without streams closes after `idleTimeoutMs`;
 * - a response the client's window lets nothing out of for `sendStallMs` is reset (CANCEL),
 *   freeing the instance's connection it held (h2_reply.ts).
 *
 * Flow control both ways: a request body is read only as fast as the instance takes it (a
 * paused stream sends no WINDOW_UPDATE), and a response is read from the instance only as fast
 * as the client's window lets it out (`H2Reply.write` returns false, the upstream read pauses).
 * `close()` sends GOAWAY to every connection: streams under way finish, within a grace time.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import type { Duplex } from "node:stream";
import { type ClientRequest, RequestBody } from "./client_conn.ts";
import type { ConnInfo, DispatchSink } from "./conn_info.ts";
import { readH2RequestHead } from "./h2_headers.ts";
import { H2Reply } from "./h2_reply.ts";
import { RapidResetMeter } from "./rapid_reset.ts";
import { GoawayGuard } from "./goaway_guard.ts";
import { sendPlain } from "./exchange.ts";
import type { ConnEnds } from "./proxy_protocol_in.ts";

/** Concurrent streams per connection (nginx: 128, h2o: 100). */
export const H2_STREAMS_MAX = 100;
/** A connection with no stream open closes after this. */
export const H2_IDLE_TIMEOUT_MS = 60_000;
/** A request body idle this long while read times out (HTTP/1.1's REQUEST_TIMEOUT_MS). */
const REQUEST_TIMEOUT_MS = 300_000;
/** How long `close()` lets streams under way finish after its GOAWAY. */
export const H2_CLOSE_GRACE_MS = 10_000;
/**
 * Between `close()`'s two GOAWAYs: the first (last-stream-id 2^31-1) says no new stream will be
 * taken; streams the client sent meanwhile still arrive and are served; the second names the
 * last one (RFC 9113 §6.8). Roughly a round trip, more than one on loopback.
 */
const GOAWAY_NOTICE_MS = 200;
/** How long streams reset on shutdown get to leave before the connection is closed. */
const RESET_LINGER_MS = 50;

/** How long a connection told to go away for rapid reset lingers before it is closed. */
const CALM_LINGER_MS = 200;

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants;

/** The proxy's entry point for a request (`HttpProxy.dispatch`). */
export type Dispatch = (req: ClientRequest, res: DispatchSink, conn: ConnInfo) => void;

export interface H2FrontendOptions {
  dispatch: Dispatch;
  /** Default H2_STREAMS_MAX. */
  streamsMax?: number;
  /** Request header list bytes (name + value + 32 per field). Default 16 KiB. */
  headerListBytesMax?: number;
  /** Default RAPID_RESETS_MAX (see rapid_reset.ts). */
  rapidResetsMax?: number;
  /** Default RAPID_RESET_WINDOW_MS. */
  rapidResetWindowMs?: number;
  /** Default H2_IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
  /** A request body idle this long (while read) times out. Default 300000. */
  requestTimeoutMs?: number;
  /** Default H2_CLOSE_GRACE_MS. */
  closeGraceMs?: number;
  /** A response stuck behind the client's window this long is reset. Default H2_SEND_STALL_MS. */
  sendStallMs?: number;
  log?: (line: string) => void;
  now?: () => number;
  /**
   * A request the frontend answered itself (400, 405, 431 from its header list): method, path
   * and host as far as it had them, `bodyBytes` of the answer (the access log and metrics).
   */
  onRefused?(req: ClientRequest, status: number, bodyBytes: number, conn: ConnInfo): void;
}

/** One client connection. */
interface Session {
  readonly session: http2.ServerHttp2Session;
  /** The client's connection (under the session's GoawayGuard). */
  readonly socket: Duplex;
  readonly conn: ConnInfo;
  readonly remoteAddress: string;
  readonly resets: RapidResetMeter;
  /** Streams open (dispatched or answered by the frontend, not closed yet). */
  streams: number;
  /** Their replies. */
  readonly replies: Set<H2Reply>;
  /** Told to go away for rapid reset. */
  calmed: boolean;
  closed: Promise<void>;
}

/** HTTP/2 server side of the proxy: `serve` each h2 connection, `close` them all. */
export class H2Frontend {
  readonly #opts: H2FrontendOptions;
  readonly #headerListBytesMax: number;
  readonly #idleTimeoutMs: number;
  readonly #log: (line: string) => void;
  readonly #sessionOptions: http2.ServerSessionOptions;
  readonly #sessions = new Set<Session>();
  #closing = false;
  /** Connections closed for rapid reset since the last log line, and when that was. */
  #calmed = 0;
  #calmLoggedAt = -Infinity;

  constructor(opts: H2FrontendOptions) {
    this.#opts = opts;
    this.#headerListBytesMax = opts.headerListBytesMax ?? 16 * 1024;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? H2_IDLE_TIMEOUT_MS;
    this.#log = opts.log ?? console.error;
    this.#sessionOptions = {
      settings: {
        maxConcurrentStreams: opts.streamsMax ?? H2_STREAMS_MAX,
        maxHeaderListSize: this.#headerListBytesMax,
      },
      // Repeated fields from an instance pass as they came (as over HTTP/1.1).
      strictSingleValueFields: false,
    } as http2.ServerSessionOptions;
  }

  /** Connections open. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Streams open on all connections. */
  get streams(): number {
    let n = 0;
    for (const s of this.#sessions) n += s.streams;
    return n;
  }

  /** Serves HTTP/2 on `socket` (a TLS connection that negotiated `h2`). */
  serve(socket: Duplex & { remoteAddress?: string }, conn: ConnInfo): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    let session: http2.ServerHttp2Session;
    try {
      // Through GoawayGuard: a client's GOAWAY could abort Deno (goaway_guard.ts); the session
      // closes itself instead, as node:http2 would on the client's GOAWAY.
      const guarded = new GoawayGuard(
        socket as Duplex & { setTimeout(ms: number): unknown },
        () => {
          if (!session.closed) session.close();
        },
        () => this.#calm(s, "sent too many PING/SETTINGS frames"),
      );
      session = http2.performServerHandshake(guarded, this.#sessionOptions);
    } catch (e) {
      this.#log(`proxy: h2: cannot start a session: ${(e as Error).message}`);
      socket.destroy();
      return;
    }
    let closed!: () => void;
    const s: Session = {
      session,
      socket,
      // One object per connection: its streams share a cap on instance connections (ConnInfo).
      conn: { ...conn, multiplexed: true },
      remoteAddress: socket.remoteAddress ?? "",
      resets: new RapidResetMeter({
        resetsMax: this.#opts.rapidResetsMax,
        windowMs: this.#opts.rapidResetWindowMs,
        now: this.#opts.now,
      }),
      streams: 0,
      replies: new Set(),
      calmed: false,
      closed: new Promise<void>((resolve) => closed = resolve),
    };
    this.#sessions.add(s);
    session.on("error", () => {}); // the session closes; nothing to tell anyone
    session.on("frameError", () => {});
    session.once("close", () => {
      this.#sessions.delete(s);
      closed();
    });
    // The client ended its side (its process went away): nothing more can come, not even the
    // WINDOW_UPDATEs a response needs. Listeners keep TLS sockets half-open for HTTP/1.1.
    socket.once("end", () => {
      if (!session.closed) session.close();
    });
    session.setTimeout(this.#idleTimeoutMs, () => {
      if (s.streams === 0) session.close();
    });
    session.on(
      "stream",
      (stream: http2.ServerHttp2Stream, _h: unknown, _f: number, raw: string[]) =>
        this.#onStream(s, stream, raw),
    );
  }

  /**
   * GOAWAY to every connection, in two steps (GOAWAY_NOTICE_MS apart): no new stream is taken,
   * those under way finish within `closeGraceMs`; then streams still open are reset
   * (REFUSED_STREAM when no instance got the request, so the client retries it; else CANCEL)
   * and the connections closed. `graceMs` (default `closeGraceMs`): the proxy's drain passes
   * its timeout. Resolves with the number of streams reset.
   */
  async close(graceMs = this.#opts.closeGraceMs ?? H2_CLOSE_GRACE_MS): Promise<number> {
    this.#closing = true;
    const open = [...this.#sessions];
    if (open.length === 0) return 0;
    for (const s of open) {
      if (!s.session.closed && !s.session.destroyed) {
        s.session.goaway(NGHTTP2_NO_ERROR, 2 ** 31 - 1);
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const within = (ms: number, done: Promise<unknown>) =>
      Promise.race([done, new Promise<void>((resolve) => timer = setTimeout(resolve, ms))])
        .finally(() => clearTimeout(timer));
    const allClosed = Promise.all(open.map((s) => s.closed));
    await within(GOAWAY_NOTICE_MS, allClosed);
    for (const s of open) if (!s.session.closed && !s.session.destroyed) s.session.close();
    await within(graceMs, allClosed);
    const left = [...this.#sessions];
    let reset = 0;
    for (const s of left) {
      for (const reply of [...s.replies]) {
        reply.shutDown();
        reset++;
      }
    }
    if (left.length > 0) await within(RESET_LINGER_MS, new Promise(() => {}));
    for (const s of left) {
      s.session.destroy();
      s.socket.destroy();
    }
    await Promise.all(left.map((s) => s.closed));
    return reset;
  }

  #onStream(s: Session, stream: http2.ServerHttp2Stream, raw: string[]): void {
    s.streams++;
    stream.on("error", () => {}); // a reset stream; its close follows
    const head = readH2RequestHead(raw, this.#headerListBytesMax);
    const body = stream.endAfterHeaders ? null : new RequestBody(stream);
    const reply = new H2Reply(stream, {
      head: !("status" in head) && head.method === "HEAD",
      trailers: !("status" in head) && head.trailers,
      body,
      sendStallMs: this.#opts.sendStallMs,
    });
    s.replies.add(reply);
    stream.once("close", () => {
      s.streams--;
      s.replies.delete(reply);
      body?.destroy();
      const early = !reply.headersSent && reply.resetByClient;
      reply.closed();
      if (early && s.resets.reset()) {
        this.#calm(s, "cancelled too many streams before their response (rapid reset)");
      }
    });
    if ("status" in head) {
      sendPlain(reply, head.status, head.text);
      const req: ClientRequest = {
        method: pseudo(raw, ":method"),
        url: pseudo(raw, ":path"),
        rawHeaders: hostOf(raw),
        remoteAddress: s.remoteAddress,
        ends: s.socket as ConnEnds,
        body: null,
        proto: "HTTP/2",
      };
      this.#opts.onRefused?.(req, head.status, Buffer.byteLength(`${head.text}\n`), s.conn);
      return;
    }
    if (body !== null) {
      const timeoutMs = this.#opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
      let lastDataAt = Date.now();
      stream.on("data", (chunk) => {
        lastDataAt = Date.now();
        if (!body.push(chunk)) stream.pause();
      });
      const check = () => {
        const idleMs = Date.now() - lastDataAt;
        // Paused: the proxy is not reading (a slow instance), the client is not to blame.
        if (idleMs < timeoutMs || stream.isPaused()) {
          if (stream.isPaused()) lastDataAt = Date.now();
          timer = setTimeout(check, timeoutMs - Math.min(idleMs, timeoutMs - 1));
        } else this.#bodyTimedOut(reply);
      };
      let timer = setTimeout(check, timeoutMs);
      stream.once("close", () => clearTimeout(timer));
      stream.once("end", () => {
        clearTimeout(timer);
        body.complete = true;
        body.push(null);
      });
    }
    const req: ClientRequest = {
      method: head.method,
      url: head.url,
      rawHeaders: head.rawHeaders,
      remoteAddress: s.remoteAddress,
      ends: s.socket as ConnEnds,
      body,
      proto: "HTTP/2",
    };
    try {
      this.#opts.dispatch(req, reply, s.conn);
    } catch (e) {
      // A bug must cost this stream, never the connection or the agent.
      this.#log(`proxy: h2: request failed: ${(e as Error).message}`);
      reply.destroy();
    }
  }

  /** A request body idle for requestTimeoutMs: 408 (or a reset), its try dropped. */
  #bodyTimedOut(reply: H2Reply): void {
    if (reply.headersSent || reply.destroyed) return reply.destroy();
    const abort = reply.onAbort;
    reply.onAbort = null;
    abort?.(); // the instance got part of the body and waits for the rest
    sendPlain(reply, 408, "request timeout");
  }

  /** Rapid reset or a control-frame flood: GOAWAY ENHANCE_YOUR_CALM, the connection closes. */
  #calm(s: Session, why: string): void {
    if (s.session.destroyed || s.calmed) return;
    s.calmed = true;
    // GOAWAY first; the connection closes a moment later, so that the client reads the GOAWAY
    // before the close (destroying at once can lose it to the TCP reset). nghttp2 takes no new
    // stream after a GOAWAY.
    s.session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
    const timer = setTimeout(() => {
      s.session.destroy();
      s.socket.destroy(); // Deno's session.destroy() can leave its socket open (h2_flood_test.ts)
    }, CALM_LINGER_MS);
    s.session.once("close", () => clearTimeout(timer));
    this.#calmed++;
    const now = (this.#opts.now ?? Date.now)();
    if (now - this.#calmLoggedAt < 60_000) return;
    this.#calmLoggedAt = now;
    this.#log(
      `proxy: h2: closed ${this.#calmed} abusive connection(s) (last from ${s.remoteAddress}: ` +
        `${why})`,
    );
    this.#calmed = 0;
  }
}

/** The first value of pseudo-header `name` in [name, value, …], or "". */
function pseudo(raw: readonly string[], name: string): string {
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i] === name) return raw[i + 1]!;
  return "";
}

/** `["host", name]` from `:authority` or the first Host; [] without either. */
function hostOf(raw: readonly string[]): string[] {
  const name = pseudo(raw, ":authority") || pseudo(raw, "host");
  return name === "" ? [] : ["host", name];
}
