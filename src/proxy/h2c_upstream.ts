/**
 * Forwarding one request of an `h2c` / `grpc` service over HTTP/2 cleartext (`H2cAttempt`, one
 * try on one target, on a stream of a pooled session from h2c_sessions.ts; with
 * `berth.proxy-protocol`, of a session private to the client connection), and the retries across
 * targets (`forwardH2c`).
 *
 * - The request goes as one HTTP/2 stream: `:authority` is the client's Host, its end-to-end
 *   headers as the HTTP/1.1 path sends them (X-Forwarded-* included), `te: trailers` when the
 *   client asked for trailers or speaks gRPC. The body streams both ways at once (a gRPC
 *   bidirectional call), each direction with backpressure.
 * - The response's headers, body and trailers go to the client's sink; trailers only reach
 *   clients whose sink can send them (`ResponseSink.writeTrailers`: HTTP/2 clients). A gRPC
 *   trailers-only response (`grpc-status` in its headers) reaches such clients as headers
 *   plus trailers (grpc_status.ts `splitTrailersOnly`).
 * - Before any response: a target that cannot be reached (connect error or timeout) counts
 *   towards its ejection, as on the HTTP/1.1 path, and the request goes to another target; a
 *   stream the instance refused unprocessed (REFUSED_STREAM, above a GOAWAY's last stream id, or
 *   on a session that closed under it) goes again, once on a new session to the same instance,
 *   then to another. Either needs the whole request body: the first `REPLAY_BYTES_MAX` bytes
 *   sent are kept until the response begins (a gRPC call's messages usually fit). Other failures
 *   follow `classifyFailure` (attempt.ts).
 * - Errors the proxy answers itself are plain text (502, 504), or gRPC statuses for gRPC
 *   requests (grpc_status.ts): 14 UNAVAILABLE when no instance could be reached, 4
 *   DEADLINE_EXCEEDED when none answered within the response timeout.
 * - Timeouts on the shared coarse clock: the wait for a stream when the target's sessions are
 *   full (the UpstreamPool's queue timeout, or the service's shorter timeout: then 503), the
 *   response (from the end of the request to the response headers), then stream idle (no byte
 *   either way).
 *
 * @module
 */
import http2 from "node:http2";
import type { Buffer } from "node:buffer";
import type { RequestBody } from "./client_conn.ts";
import type { Target } from "./balancer.ts";
import type { CoarseClock, Deadline } from "./coarse_clock.ts";
import { classifyFailure, type Failure } from "./attempt.ts";
import { type Exchange, TimeoutError } from "./exchange.ts";
import {
  GRPC_UNAVAILABLE,
  hasGrpcStatus,
  sendGrpcStatus,
  sendProxyError,
  splitTrailersOnly,
  wantsGrpcErrors,
} from "./grpc_status.ts";
import { lbSettings } from "./lb_settings.ts";
import { ensureStickyCookie, pickTarget } from "./sticky_cookie.ts";
import { responseHeaders } from "./headers.ts";
import { flatHeaders, h2RequestHeaders } from "./h2c_headers.ts";
import type { H2cSession, H2cSessions } from "./h2c_sessions.ts";
import { privateConnFor } from "./proxy_protocol_out.ts";
import type { Upstream, UpstreamPool } from "./upstream_pool.ts";
import { errorText } from "../lib/error_text.ts";

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** Request body bytes kept to send again after a refused stream or a failed connect. */
export const REPLAY_BYTES_MAX = 64 * 1024;

/** The request body sent so far, while it fits in REPLAY_BYTES_MAX (module doc). */
interface Replay {
  chunks: Buffer[];
  bytes: number;
  /** Every byte consumed from the client's body is in `chunks`. */
  whole: boolean;
  /** The client's body ended (all of it is in `chunks` when `whole`). */
  ended: boolean;
}

export interface H2cContext {
  pool: UpstreamPool;
  sessions: H2cSessions;
  clock: CoarseClock;
  retriesMax: number;
  responseTimeoutMs: number;
  streamIdleTimeoutMs: number;
  /** Longest wait for a stream (the UpstreamPool's `queueTimeoutMs`): then 503. */
  queueTimeoutMs: number;
}

/** Forwards an exchange of an h2c/grpc route: the first try, then retries (module doc). */
export function forwardH2c(ctx: H2cContext, x: Exchange): void {
  const grpc = wantsGrpcErrors(x.route, x.req.rawHeaders);
  if (x.route.balancer.policy === "sticky_cookie") ensureStickyCookie(x);
  tryNext(ctx, x, grpc, { chunks: [], bytes: 0, whole: true, ended: false }, null);
}

function tryNext(
  ctx: H2cContext,
  x: Exchange,
  grpc: boolean,
  replay: Replay,
  lastError: string | null,
): void {
  const target = pickTarget(ctx.pool, x, x.client);
  if (target === null) {
    x.req.body?.resume();
    return sendProxyError(
      x.res,
      grpc,
      502,
      `bad gateway: service ${x.route.service}: ${lastError ?? "no instance to try"}`,
    );
  }
  x.tried.push(target);
  x.attempts++;
  const attempt = new H2cAttempt(ctx, x, target, grpc, replay, (why, outcome) => {
    if (x.res.destroyed || x.res.writableEnded) return; // the client left or got a 413
    const lb = lbSettings(x.route);
    if (outcome === "response timeout") {
      x.req.body?.resume();
      return sendProxyError(
        x.res,
        grpc,
        504,
        `gateway timeout: service ${x.route.service}: instance ${target.id} sent no ` +
          `response within ${lb.timeoutMs ?? ctx.responseTimeoutMs} ms`,
      );
    }
    if (outcome === "stale" && !x.staleRetried) {
      // The session it went on had died: once more on a new session to the same instance.
      x.staleRetried = true;
      x.tried.pop();
      x.req.body?.pause(); // the next attempt sends what is kept, then reads on
      return tryNext(ctx, x, grpc, replay, null);
    }
    if (outcome !== "final" && x.attempts <= (lb.retries ?? ctx.retriesMax)) {
      x.req.body?.pause();
      return tryNext(ctx, x, grpc, replay, `instance ${target.id}: ${why}`);
    }
    x.req.body?.resume();
    sendProxyError(
      x.res,
      grpc,
      502,
      `bad gateway: service ${x.route.service}: instance ${target.id}: ${why}`,
    );
  });
  x.current = attempt;
  attempt.start();
}

/** One try at forwarding an exchange to one target over an h2c stream. */
export class H2cAttempt implements Deadline {
  readonly #ctx: H2cContext;
  readonly #x: Exchange;
  readonly #target: Target;
  readonly #grpc: boolean;
  readonly #up: Upstream;
  readonly #replay: Replay;
  readonly #failed: (why: string, outcome: Failure) => void;
  /** Removes this attempt's listeners from the request body. */
  #unlisten: (() => void) | null = null;
  #withdraw: (() => void) | null = null;
  #session: H2cSession | null = null;
  /** Waiting for a session with room (its deadline is the queue timeout). */
  #queued = false;
  #stream: http2.ClientHttp2Stream | null = null;
  /** The session carried streams before this one. */
  #reused = false;
  #sent = false;
  #responded = false;
  #done = false;
  #trailers: http2.IncomingHttpHeaders | null = null;
  /** A trailers-only response's fields, sent as trailers (see #onResponse). */
  #trailersOnly: string[] | null = null;
  #error: Error | null = null;
  expiresAt = 0;

  constructor(
    ctx: H2cContext,
    x: Exchange,
    target: Target,
    grpc: boolean,
    replay: Replay,
    failed: (why: string, outcome: Failure) => void,
  ) {
    this.#ctx = ctx;
    this.#x = x;
    this.#target = target;
    this.#grpc = grpc;
    this.#replay = replay;
    this.#up = ctx.pool.get(target);
    this.#failed = failed;
  }

  start(): void {
    this.#up.active++;
    // A service that asks for the PROXY protocol gets sessions private to the client connection.
    const x = this.#x;
    const client = x.req.ends ?? x.req;
    const conn = x.route.settings.size === 0 ? undefined : privateConnFor(x.route, client);
    this.#withdraw = this.#ctx.sessions.acquire(
      this.#target,
      (s) => this.#open(s),
      conn === undefined ? undefined : { conn, client },
    );
    if (this.#session !== null || this.#done) return;
    // No room for a stream yet: it waits as long as an HTTP/1.1 request waits for a connection
    // (the queue timeout, or the service's shorter timeout), then gets 503.
    this.#queued = true;
    const timeoutMs = lbSettings(x.route).timeoutMs ?? Infinity;
    this.expiresAt = this.#ctx.clock.after(Math.min(this.#ctx.queueTimeoutMs, timeoutMs));
    this.#ctx.clock.arm(this);
  }

  /** The client went away: cancel the stream unless the exchange is complete. */
  abort(): void {
    if (this.#done) return;
    this.#withdraw?.();
    this.#finish();
    cancel(this.#stream);
    this.#x.req.body?.resume(); // nobody reads it any more: let it drain
  }

  /** Whether the whole request can be sent again (none of its body lost). */
  get #resendable(): boolean {
    return !this.#x.bodyStarted || this.#replay.whole;
  }

  expire(): void {
    if (this.#done) return;
    if (this.#queued) return this.#queueTimedOut();
    const responded = this.#responded;
    this.#finish();
    cancel(this.#stream);
    if (!responded) {
      this.#ctx.pool.failed(this.#up, "response timeout");
      return this.#failed("response timeout", "response timeout");
    }
    // The response stalled: end the call as cut off.
    this.#cutOff(`went silent for the stream idle timeout (${this.#ctx.streamIdleTimeoutMs} ms)`);
  }

  #open(s: H2cSession): void {
    this.#withdraw = null;
    if (this.#queued) {
      this.#queued = false;
      this.#ctx.clock.disarm(this);
    }
    const x = this.#x;
    if (this.#done) return this.#ctx.sessions.release(this.#target, s);
    this.#session = s;
    this.#reused = s.started > 1;
    let stream: http2.ClientHttp2Stream;
    try {
      // A session can be closed (a GOAWAY) before its events told the pool.
      if (s.session.closed || s.session.destroyed) throw new SessionGone();
      stream = s.session.request(h2RequestHeaders(x, this.#target, this.#grpc), {
        endStream: !x.withBody,
      });
    } catch (e) {
      this.#ctx.sessions.release(this.#target, s);
      this.#finish();
      if (e instanceof SessionGone || s.session.closed || s.session.destroyed) {
        this.#ctx.sessions.retire(this.#target, s);
        return this.#failed("session closed", this.#resendable ? "stale" : "final");
      }
      // node:http2 refuses header names or values HTTP/2 forbids: the client's request is bad.
      x.req.body?.resume();
      return sendProxyError(x.res, false, 400, `bad request: ${errorText(e)}`);
    }
    this.#stream = stream;
    x.res.forwarded = true;
    stream.on("error", (e: Error) => this.#error ??= e);
    stream.on("response", (h) => this.#onResponse(h));
    stream.on("trailers", (t) => this.#trailers = t);
    stream.once("close", () => {
      this.#ctx.sessions.release(this.#target, s);
      if (!this.#done) this.#onClose();
    });
    if (!x.withBody) return this.#requestSent();
    // The body waits for the connection (the instance's SETTINGS): a connect that fails leaves
    // all of it to send again.
    if (s.connected) return this.#sendBody(stream, x.req.body!);
    s.session.once("remoteSettings", () => {
      if (!this.#done) this.#sendBody(stream, x.req.body!);
    });
  }

  /** Streams the request body: what an earlier attempt kept first, then the rest as it comes. */
  #sendBody(stream: http2.ClientHttp2Stream, body: RequestBody): void {
    const replay = this.#replay;
    for (const chunk of replay.chunks) stream.write(chunk);
    if (replay.ended) {
      stream.end();
      return this.#requestSent();
    }
    this.#x.bodyStarted = true;
    const onData = (chunk: Buffer) => {
      if (this.#responded) this.expiresAt = this.#ctx.clock.after(this.#ctx.streamIdleTimeoutMs);
      else if (replay.whole) this.#keep(chunk);
      if (!stream.write(chunk)) body.pause();
    };
    const onEnd = () => {
      replay.ended = true;
      stream.end();
      this.#requestSent();
    };
    stream.on("drain", () => {
      if (!this.#done) body.resume();
    });
    body.on("data", onData);
    body.once("end", onEnd);
    this.#unlisten = () => {
      body.off("data", onData);
      body.off("end", onEnd);
    };
    body.resume(); // paused until a stream could take the body
  }

  /** Keeps a body chunk for a possible resend while the kept bytes fit. */
  #keep(chunk: Buffer): void {
    const replay = this.#replay;
    if (replay.bytes + chunk.length > REPLAY_BYTES_MAX) {
      replay.whole = false;
      replay.chunks = [];
      replay.bytes = 0;
      return;
    }
    replay.chunks.push(chunk);
    replay.bytes += chunk.length;
  }

  /** The response timeout runs from when the whole request has been sent. */
  #requestSent(): void {
    this.#sent = true;
    if (this.#responded || this.#done) return;
    const timeoutMs = lbSettings(this.#x.route).timeoutMs ?? this.#ctx.responseTimeoutMs;
    this.expiresAt = this.#ctx.clock.after(timeoutMs);
    this.#ctx.clock.arm(this);
  }

  #onResponse(h: http2.IncomingHttpHeaders): void {
    if (this.#done) return;
    this.#responded = true;
    this.#ctx.pool.succeeded(this.#up);
    // A response began: the request will not go again.
    this.#replay.chunks = [];
    this.#replay.whole = false;
    const res = this.#x.res;
    const stream = this.#stream!;
    if (res.destroyed || res.headersSent) return this.abort();
    let head = responseHeaders(flatHeaders(h), this.#x.requestId);
    if (res.writeTrailers !== undefined && hasGrpcStatus(head)) {
      // A trailers-only response: the sink's headers go out without END_STREAM, so the status
      // must reach the client as trailers.
      const split = splitTrailersOnly(head);
      head = split.headers;
      this.#trailersOnly = split.trailers;
    }
    this.#x.answeredBy = this.#target;
    try {
      res.writeHead(Number(h[":status"]), "", head);
    } catch (e) {
      this.#x.answeredBy = undefined; // the proxy answers instead
      this.#finish();
      cancel(stream);
      return this.#cutOff(`sent an invalid response (${errorText(e)})`);
    }
    this.expiresAt = this.#ctx.clock.after(this.#ctx.streamIdleTimeoutMs);
    this.#ctx.clock.arm(this);
    // Listening for data only now: Deno's node:http2 can emit data before "response".
    stream.on("data", (chunk: Buffer) => {
      if (this.#done) return;
      this.expiresAt = this.#ctx.clock.after(this.#ctx.streamIdleTimeoutMs);
      if (!res.write(chunk)) {
        stream.pause();
        res.once("drain", () => stream.resume());
      }
    });
    stream.once("end", () => {
      if (this.#done) return;
      // A body the instance did not read whole (it answered early): let it drain.
      if (!this.#sent) this.#x.req.body?.resume();
      this.#finish();
      if (res.destroyed) return;
      const t = this.#trailers;
      const moved = this.#trailersOnly;
      if ((t !== null || moved !== null) && res.writeTrailers !== undefined) {
        const trailers = t === null ? [] : responseHeaders(flatHeaders(t));
        res.writeTrailers(moved === null ? trailers : [...moved, ...trailers]);
      }
      res.end();
    });
  }

  /** The stream closed before the exchange completed. */
  #onClose(): void {
    const stream = this.#stream!;
    const e = this.#error;
    if (this.#responded) {
      this.#finish();
      return this.#cutOff(`reset the stream mid-response (${resetText(stream, e)})`);
    }
    this.#finish();
    const cause = e?.cause instanceof Error ? e.cause : e;
    const timeout = cause instanceof TimeoutError ? cause.code : null;
    const x = this.#x;
    const session = this.#session!;
    if (timeout === "ECONNECTTIMEOUT" || !session.connected) {
      // Never reached the instance: nothing was sent.
      const why = timeout !== null ? "connect timeout" : errorText(cause ?? "ECONNRESET", {
        preferCode: true,
      });
      this.#ctx.pool.failed(this.#up, why);
      return this.#failed(why, this.#resendable ? "retryable" : "final");
    }
    const goaway = (e as { code?: string } | null)?.code === "ERR_HTTP2_GOAWAY_SESSION";
    if (stream.rstCode === NGHTTP2_REFUSED_STREAM || goaway) {
      // The instance did not process it (RFC 9113 §8.7): safe to send again, body whole.
      if (goaway) this.#ctx.sessions.retire(this.#target, session);
      return this.#failed("refused the stream", this.#resendable ? "stale" : "final");
    }
    const why = resetText(stream, e);
    const outcome = classifyFailure({
      method: x.req.method,
      reused: this.#reused,
      wrote: true,
      bodyStarted: x.bodyStarted,
      responseStarted: false,
      timeout: null,
    });
    if (outcome !== "stale") this.#ctx.pool.failed(this.#up, why);
    this.#failed(why, outcome);
  }

  /** Waited the queue timeout for a stream without getting one: 503, as on the HTTP/1.1 path. */
  #queueTimedOut(): void {
    this.#queued = false;
    this.#withdraw?.();
    this.#withdraw = null;
    this.#finish();
    const x = this.#x;
    if (x.res.destroyed || x.res.writableEnded || x.res.headersSent) return;
    x.req.body?.resume();
    sendProxyError(
      x.res,
      this.#grpc,
      503,
      `service unavailable: service ${x.route.service}: instance ${this.#target.id} has all ` +
        `its connections busy`,
    );
  }

  /** The response began and cannot complete: a gRPC status in the trailers, else cut off. */
  #cutOff(why: string): void {
    const x = this.#x;
    x.req.body?.resume(); // nobody reads the rest of it
    if (this.#grpc && x.res.headersSent && x.res.writeTrailers !== undefined) {
      return sendGrpcStatus(
        x.res,
        GRPC_UNAVAILABLE,
        `service ${x.route.service}: instance ${this.#target.id} ${why}`,
      );
    }
    if (!x.res.headersSent) {
      return sendProxyError(
        x.res,
        this.#grpc,
        502,
        `bad gateway: service ${x.route.service}: instance ${this.#target.id} ${why}`,
      );
    }
    x.res.destroy();
  }

  /** Ends the attempt; whoever decides what comes next drains or pauses the request body. */
  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#unlisten?.();
    this.#unlisten = null;
    this.#up.active--;
    this.#ctx.clock.disarm(this);
  }
}

/** Cancels a stream still open (RST_STREAM CANCEL); a closed one is left alone. */
function cancel(stream: http2.ClientHttp2Stream | null): void {
  if (stream !== null && !stream.closed && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
}

/** The session was found closed when a stream was to be opened on it. */
class SessionGone extends Error {
  constructor() {
    super("session closed");
  }
}

/** Why a stream ended: its RST code, or the error node:http2 gave. */
function resetText(stream: http2.ClientHttp2Stream, e: Error | null): string {
  if (stream.rstCode !== undefined && stream.rstCode !== 0) return `RST_STREAM ${stream.rstCode}`;
  return e === null ? "stream closed" : errorText(e, { preferCode: true });
}
