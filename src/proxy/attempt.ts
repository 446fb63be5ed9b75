/**
 * One try at forwarding a request to one target (`Attempt`): over a connection leased from the
 * upstream pool it writes the request (the body chunked when the client's was), parses the
 * response with `ResponseParser` and streams it to the client. Failures before the response
 * begins go back to the proxy, which retries or answers.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Target } from "./balancer.ts";
import type { CoarseClock, Deadline } from "./coarse_clock.ts";
import { answer, type Exchange, IDEMPOTENT, TimeoutError } from "./exchange.ts";
import { responseHeaders } from "./headers.ts";
import { lbSettings } from "./lb_settings.ts";
import { type ResponseHead, ResponseParser } from "./response_parser.ts";
import type { ConnCap, Lease, Upstream, UpstreamConn, UpstreamPool } from "./upstream_pool.ts";
import { errorText } from "../lib/error_text.ts";
import { privateConnFor } from "./proxy_protocol_out.ts";

/**
 * How an attempt failed before its response began: "stale" (a reused pooled connection the
 * instance had closed: try once more on a new connection to the same instance), "retryable"
 * (try another instance), "final" (answer 502) or "response timeout" (answer 504).
 */
export type Failure = "stale" | "retryable" | "final" | "response timeout";

/** What `classifyFailure` needs to know about a failed attempt. */
export interface FailedAttempt {
  method: string;
  /** The connection had carried a request before (taken from the idle pool). */
  reused: boolean;
  /** Request bytes were handed to a writable connection (the instance may have them). */
  wrote: boolean;
  /** The request body began streaming (it cannot be sent again). */
  bodyStarted: boolean;
  /** Bytes of a response arrived. */
  responseStarted: boolean;
  /** The proxy's own connect or response timeout ended the attempt. */
  timeout: "ECONNECTTIMEOUT" | "ERESPONSETIMEOUT" | null;
}

/**
 * Whether and where a request that got no byte of response may be sent again. Safe to send
 * again: no byte of the request reached a connection, or the method is idempotent (RFC 9110
 * §9.2.2) and no body was consumed; a non-idempotent request the instance may have received is
 * never replayed (RFC 9112 §9.3.1). A reused connection failing this way is most likely one
 * the instance closed while idle (its keep-alive timeout) just as it was taken: that is no
 * sign the instance is down, so the retry goes to the same instance on a new connection, as
 * nginx, HAProxy and Go's http.Transport do.
 */
export function classifyFailure(f: FailedAttempt): Failure {
  if (f.timeout === "ERESPONSETIMEOUT") return "response timeout";
  const replayable = !f.wrote || (!f.bodyStarted && IDEMPOTENT.has(f.method));
  if (!replayable) return "final";
  return foundClosed(f) ? "stale" : "retryable";
}

/**
 * A reused connection that failed with no byte of response and no timeout: most likely the
 * instance closed it while idle. It does not count as a failure of the instance.
 */
export function foundClosed(f: FailedAttempt): boolean {
  return f.reused && f.timeout === null && !f.responseStarted;
}

export interface AttemptContext {
  pool: UpstreamPool;
  clock: CoarseClock;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  streamIdleTimeoutMs: number;
  /** The attempt failed before any of its response reached the client. */
  failed(x: Exchange, target: Target, why: string, outcome: Failure): void;
}

const CRLF = Buffer.from("\r\n");
const LAST_CHUNK = Buffer.from("0\r\n\r\n");

/**
 * One try at forwarding a request to one target over a leased pooled connection: writes the
 * request (the body chunked when the client's was), parses the response and streams it to the
 * client. Timeouts: connect (a timer, new connections only), response and stream idle (the
 * shared coarse clock).
 */
export class Attempt implements Lease, Deadline {
  readonly #ctx: AttemptContext;
  readonly #x: Exchange;
  readonly #target: Target;
  readonly #up: Upstream;
  readonly #parser: ResponseParser;
  /** Never take an idle connection. */
  readonly #fresh: boolean;
  #conn: UpstreamConn | null = null;
  /** The connection came from the idle pool (it carried a request before). */
  #reused = false;
  #withdraw: (() => void) | null = null;
  #connectTimer: ReturnType<typeof setTimeout> | null = null;
  /** Request bytes were handed to a writable connection (the instance may have them). */
  #wrote = false;
  /** The whole request was written. */
  #sent = false;
  /** The response head arrived. */
  #responded = false;
  /** The attempt is over (response complete, failed or abandoned). */
  #done = false;
  /** A body piece held back so that a response that arrived whole goes out in one write. */
  #held: Buffer | null = null;
  /** Deadline (coarse clock): the response until it begins, then the body's idle time. */
  expiresAt = 0;

  /** `fresh`: never take an idle connection (a retry after a stale one). */
  constructor(ctx: AttemptContext, x: Exchange, target: Target, fresh = false) {
    this.#ctx = ctx;
    this.#x = x;
    this.#target = target;
    this.#up = ctx.pool.get(target);
    this.#parser = new ResponseParser({
      onHead: (h) => {
        if (!this.#done) this.#onHead(h);
      },
      onBody: (chunk) => {
        if (this.#done) return;
        if (this.#held !== null && !this.#x.res.destroyed) this.#x.res.write(this.#held);
        this.#held = chunk;
      },
      onEnd: (reusable) => {
        if (!this.#done) this.#onEnd(reusable);
      },
    });
    this.#parser.reset(x.req.method === "HEAD");
    this.#fresh = fresh;
  }

  start(): void {
    this.#up.active++;
    // An HTTP/2 connection's streams share its cap on the instance connections they hold.
    const owner = this.#x.conn.multiplexed ? this.#x.conn : undefined;
    const { maxConns, queue, timeoutMs } = lbSettings(this.#x.route);
    const cap = maxConns === null ? undefined : { conns: maxConns, queue };
    // A service that asks for the PROXY protocol gets connections private to the client.
    const x = this.#x;
    const priv = x.route.settings.size === 0
      ? undefined
      : privateConnFor(x.route, x.req.ends ?? x.req);
    this.#withdraw = this.#ctx.pool.acquire(this.#up, this, {
      fresh: this.#fresh,
      owner,
      cap,
      private: priv,
      // A queued request waits no longer than the service's response timeout.
      queueMs: timeoutMs ?? undefined,
    });
  }

  /** Waiting for a connection to the instance (queued at its cap): nothing was sent yet. */
  get queued(): boolean {
    return !this.#done && this.#conn === null;
  }

  /** The client went away: drop the connection unless the exchange is complete. */
  abort(): void {
    if (this.#done) return;
    this.#withdraw?.();
    const conn = this.#conn;
    this.#finish();
    conn?.socket.destroy();
  }

  // ---- Lease ----

  attach(conn: UpstreamConn): void {
    this.#conn = conn;
    this.#reused = conn.uses > 0;
    this.#withdraw = null;
    if (conn.socket.connecting) {
      this.#connectTimer = setTimeout(
        () => conn.socket.destroy(new TimeoutError("ECONNECTTIMEOUT")),
        this.#ctx.connectTimeoutMs,
      );
    }
  }

  onConnect(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    if (this.#done) return;
    this.#writeRequest();
  }

  onData(chunk: Buffer): void {
    if (this.#done) return;
    const res = this.#x.res;
    try {
      this.#parser.feed(chunk);
    } catch (e) {
      return this.#broken(`sent an invalid response (${errorText(e)})`);
    }
    if (this.#done || this.#held === null) return;
    const held = this.#held;
    this.#held = null;
    this.expiresAt = this.#ctx.clock.after(this.#ctx.streamIdleTimeoutMs);
    if (!res.write(held)) {
      const socket = this.#conn!.socket;
      socket.pause();
      res.once("drain", () => socket.resume());
    }
  }

  onDrain(): void {
    this.#x.req.body?.resume();
  }

  onClose(error: Error | null): void {
    if (this.#done) return;
    if (this.#responded) {
      try {
        this.#parser.close(); // a body read until close ends here
        return;
      } catch {
        return this.#broken("closed the connection mid-response");
      }
    }
    if (this.#parser.started) {
      // Bytes of a response arrived but never a whole head: a malformed response, not a reset.
      try {
        this.#parser.close();
      } catch (e) {
        return this.#broken(`sent an invalid response (${errorText(e)})`);
      }
    }
    this.#fail(error);
  }

  onQueueTimeout(): void {
    this.#unavailable("has all its connections busy");
  }

  onQueueFull(cap: ConnCap): void {
    this.#unavailable(
      `has its connections busy and its queue full (berth.http.max-conns=${cap.conns}, ` +
        `queue ${cap.queue})`,
    );
  }

  /** No connection came (or will come) for the request: 503. */
  #unavailable(why: string): void {
    if (this.#done) return;
    this.#withdraw = null;
    this.#finish();
    const x = this.#x;
    if (x.res.destroyed || x.res.writableEnded || x.res.headersSent) return;
    x.req.body?.resume();
    answer(
      x,
      503,
      `service unavailable: service ${x.route.service}: instance ${this.#target.id} ${why}`,
    );
  }

  // ---- Deadline ----

  expire(): void {
    const socket = this.#conn?.socket;
    if (this.#responded) socket?.destroy();
    else socket?.destroy(new TimeoutError("ERESPONSETIMEOUT"));
  }

  // ----

  #writeRequest(): void {
    const x = this.#x;
    const socket = this.#conn!.socket;
    const h = x.headers;
    let head = `${x.req.method} ${x.url} HTTP/1.1\r\n`;
    for (let i = 0; i + 1 < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
    if (x.host === undefined) head += `host: ${this.#target.address}:${this.#target.port}\r\n`;
    // The framing is the proxy's own, never a header copied from the client.
    const chunked = x.withBody && x.contentLength === undefined;
    if (chunked) head += "transfer-encoding: chunked\r\n";
    else if (x.contentLength !== undefined) head += `content-length: ${x.contentLength}\r\n`;
    this.#wrote = socket.writable;
    // Nothing of the request reaches a dead connection, the body stays unread: the close that
    // follows leaves the request free to go again.
    if (!this.#wrote) return void socket.destroy();
    x.res.forwarded = true;
    socket.write(head + "\r\n", "latin1");
    if (!x.withBody) return this.#requestSent();
    x.bodyStarted = true;
    const req = x.req.body!;
    const onData = (chunk: Buffer) => {
      if (this.#done) return;
      const ok = chunked
        ? socket.write(
          Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, CRLF]),
        )
        : socket.write(chunk);
      if (!ok) req.pause();
    };
    const onEnd = () => {
      req.off("data", onData);
      if (this.#done) return;
      if (chunked) socket.write(LAST_CHUNK);
      this.#requestSent();
    };
    if (req.complete && req.readableEnded) return onEnd();
    req.on("data", onData);
    req.once("end", onEnd);
    req.resume(); // paused by #onRequest until a connection could take the body
  }

  /** The response timeout runs from when the whole request has been written. */
  #requestSent(): void {
    this.#sent = true;
    if (this.#responded || this.#done) return;
    const timeoutMs = lbSettings(this.#x.route).timeoutMs ?? this.#ctx.responseTimeoutMs;
    this.expiresAt = this.#ctx.clock.after(timeoutMs);
    this.#ctx.clock.arm(this);
  }

  #onHead(h: ResponseHead): void {
    this.#responded = true;
    this.#ctx.pool.succeeded(this.#up);
    const res = this.#x.res;
    if (res.destroyed || res.headersSent) return this.abort();
    this.#x.answeredBy = this.#target;
    try {
      res.writeHead(h.status, h.reason, responseHeaders(h.headers, this.#x.requestId));
    } catch (e) {
      this.#x.answeredBy = undefined; // the proxy answers instead
      return this.#broken(`sent an invalid response (${errorText(e)})`);
    }
    this.expiresAt = this.#ctx.clock.after(this.#ctx.streamIdleTimeoutMs);
    this.#ctx.clock.arm(this);
  }

  #onEnd(reusable: boolean): void {
    const conn = this.#conn!;
    const held = this.#held;
    this.#held = null;
    // Reusable only once the instance has the whole request (an early answer leaves it unread).
    const reuse = reusable && this.#sent;
    this.#finish();
    this.#ctx.pool.release(this.#up, conn, reuse);
    const res = this.#x.res;
    if (!res.destroyed) {
      if (held !== null) res.end(held);
      else res.end();
    }
  }

  /** The instance misbehaved after the attempt reached it: 502, or cut the client off. */
  #broken(why: string): void {
    const conn = this.#conn;
    const responded = this.#responded;
    this.#finish();
    conn?.socket.destroy();
    const x = this.#x;
    if (responded && x.res.headersSent) {
      x.res.destroy();
      return;
    }
    this.#ctx.pool.failed(this.#up, why);
    x.req.body?.resume();
    answer(
      x,
      502,
      `bad gateway: service ${x.route.service}: instance ${this.#target.id} ${why}`,
    );
  }

  /** The connection failed before a response: classify for retry. */
  #fail(error: Error | null): void {
    const x = this.#x;
    this.#finish();
    if (x.res.destroyed || x.res.writableEnded) return; // the client left or got a 413
    const timeout = error instanceof TimeoutError ? error.code : null;
    const why = timeout === "ECONNECTTIMEOUT"
      ? "connect timeout"
      : timeout === "ERESPONSETIMEOUT"
      ? "response timeout"
      : error !== null
      ? errorText(error, { preferCode: true })
      : "ECONNRESET";
    const f: FailedAttempt = {
      method: x.req.method,
      reused: this.#reused,
      wrote: this.#wrote,
      bodyStarted: x.bodyStarted,
      responseStarted: this.#parser.started,
      timeout,
    };
    if (!foundClosed(f)) this.#ctx.pool.failed(this.#up, why);
    this.#ctx.failed(x, this.#target, why, classifyFailure(f));
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    // A body the instance will not read (it answered early or failed): let it drain.
    if (this.#x.bodyStarted && !this.#sent) this.#x.req.body?.resume();
    this.#up.active--;
    this.#ctx.clock.disarm(this);
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
  }
}
