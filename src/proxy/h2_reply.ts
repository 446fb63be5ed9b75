/**
 * The response to one HTTP/2 request (`H2Reply`): the proxy's `ResponseSink` over a
 * `node:http2` server stream. What differs from HTTP/1.1's `Reply`:
 * - no framing headers: DATA frames carry the body, END_STREAM ends it; HEAD, 204, 205 and 304
 *   answers end with their HEADERS frame;
 * - connection-specific headers are dropped (see `h2ResponseHeaders`);
 * - flow control: `write` returns false while the stream's send buffer is full (the client's
 *   window is closed), and `drain` follows once the client reads again;
 * - trailers (`writeTrailers`) go out when the client said it takes them (`te: trailers`);
 * - `destroy` resets this stream only (INTERNAL_ERROR), never the connection;
 * - a response that ends before the request body arrived whole resets the stream with
 *   NO_ERROR once the response is out: the client stops sending (RFC 9113 §8.1);
 * - a response the client lets out nothing of for `sendStallMs` (its window stays closed) is
 *   reset (CANCEL): the instance's connection it holds goes back to the pool instead of
 *   waiting on a client that may never read (a zero-window client could hold every pooled
 *   connection of a service for the stream idle timeout).
 *
 * @module
 */
import http2 from "node:http2";
import type { RequestBody, ResponseSink, SinkMeter } from "./client_conn.ts";
import { h2ResponseHeaders } from "./h2_headers.ts";

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** How long a response may wait for the client's flow-control window before it is reset. */
export const H2_SEND_STALL_MS = 15_000;

export interface H2ReplyOptions {
  /** The request was HEAD: no body goes out. */
  head: boolean;
  /** The client sent `te: trailers`: the response may end with trailers. */
  trailers: boolean;
  /** The request body while it streams in. */
  body: RequestBody | null;
  /** Default H2_SEND_STALL_MS. */
  sendStallMs?: number;
}

/** The response to one request on an HTTP/2 stream. */
export class H2Reply implements ResponseSink {
  readonly #stream: http2.ServerHttp2Stream;
  readonly #head: boolean;
  readonly #trailersAccepted: boolean;
  readonly #body: RequestBody | null;
  readonly #sendStallMs: number;
  /** Runs while a write waits for the client's window (`write` returned false). */
  #stallTimer: ReturnType<typeof setTimeout> | null = null;
  #noBody = false;
  #trailers: readonly string[] | null = null;
  /** The response ends with a trailers frame (sent on the stream's "wantTrailers"). */
  #endsWithTrailers = false;
  /** `end` came before the request body arrived whole: reset once the trailers are out. */
  #resetAfterTrailers = false;
  /** The proxy reset the stream itself (`destroy`, or after an early answer). */
  #resetByProxy = false;
  headersSent = false;
  writableEnded = false;
  /** A byte of the request went to an instance (set by the proxy). */
  forwarded = false;
  /**
   * False: the request body must not be read further (a 413). HTTP/2 needs nothing more: any
   * body still coming after the response is refused by a stream reset.
   */
  shouldKeepAlive = true;
  /** Called if the stream closes before the response ended. */
  onAbort: (() => void) | null = null;
  /** Told once when the response is over (set by the proxy: the metrics). */
  meter: SinkMeter | null = null;
  /** The status sent (0: none yet) and the body bytes written, for `meter`. */
  #status = 0;
  #bytesOut = 0;

  constructor(stream: http2.ServerHttp2Stream, opts: H2ReplyOptions) {
    this.#stream = stream;
    this.#head = opts.head;
    this.#trailersAccepted = opts.trailers;
    this.#body = opts.body;
    this.#sendStallMs = opts.sendStallMs ?? H2_SEND_STALL_MS;
  }

  /** The response got stuck behind the client's window for sendStallMs and was reset. */
  stalled = false;

  get destroyed(): boolean {
    return this.#stream.destroyed || this.#stream.closed;
  }

  /** The client reset the stream before the response ended (not the proxy). */
  get resetByClient(): boolean {
    return !this.writableEnded && !this.#resetByProxy;
  }

  writeHead(status: number, _reason: string, headers: readonly string[]): void {
    if (this.headersSent) throw new Error("headers already sent");
    if (!Number.isInteger(status) || status < 200 || status > 999) {
      throw new Error(`invalid status ${status}`);
    }
    const list = h2ResponseHeaders(status, headers);
    this.headersSent = true;
    this.#status = status;
    this.#noBody = this.#head || status === 204 || status === 205 || status === 304;
    if (this.destroyed) return;
    const waitForTrailers = this.#trailersAccepted && !this.#noBody;
    // A raw [name, value, …] list (node:http2 takes one; its types know only objects).
    const fields = list as unknown as http2.OutgoingHttpHeaders;
    this.#stream.respond(fields, { endStream: this.#noBody, waitForTrailers });
    this.#endsWithTrailers = waitForTrailers;
    if (waitForTrailers) this.#stream.once("wantTrailers", this.#sendTrailers);
  }

  write(chunk: Uint8Array): boolean {
    if (!this.#noBody) this.#bytesOut += chunk.length;
    if (this.writableEnded || this.#noBody || chunk.length === 0 || this.destroyed) return true;
    if (this.#stream.write(chunk)) return true;
    if (this.#stallTimer === null) {
      this.#stallTimer = setTimeout(this.#stall, this.#sendStallMs);
      this.#stream.once("drain", this.#unstall);
    }
    return false;
  }

  #stall = (): void => {
    this.#stallTimer = null;
    if (this.destroyed) return;
    this.stalled = true;
    this.#resetByProxy = true;
    this.#stream.close(NGHTTP2_CANCEL);
  };

  #unstall = (): void => {
    if (this.#stallTimer !== null) clearTimeout(this.#stallTimer);
    this.#stallTimer = null;
  };

  /**
   * Trailer fields ([name, value, …]) sent after the body when `end` is called; dropped when
   * the client did not send `te: trailers`. Call before `end`.
   */
  writeTrailers(headers: readonly string[]): void {
    if (this.writableEnded) return;
    this.#trailers = headers;
  }

  end(chunk?: Uint8Array): void {
    if (this.writableEnded) return;
    this.writableEnded = true;
    if (chunk !== undefined && !this.#noBody) this.#bytesOut += chunk.length;
    this.#metered(this.#status);
    if (this.destroyed) return;
    const body = this.#body;
    // The request is answered before its body arrived whole: stop the client sending it, once
    // the whole response is out (its trailers too, a gRPC status: they may go out within
    // `stream.end()`, so this is decided first).
    const early = body !== null && !body.complete;
    if (early && this.#endsWithTrailers) this.#resetAfterTrailers = true;
    if (!this.#noBody) {
      if (chunk !== undefined && chunk.length > 0) this.#stream.end(chunk);
      else this.#stream.end();
    }
    if (early && !this.#endsWithTrailers) {
      this.#resetByProxy = true;
      this.#stream.close(NGHTTP2_NO_ERROR);
    }
  }

  destroy(): void {
    // Cut by the proxy: what the client saw began with the status sent, if any.
    this.#metered(this.#status === 0 ? 502 : this.#status);
    this.#reset();
  }

  #reset(): void {
    if (this.destroyed) return;
    this.#resetByProxy = true;
    // RST_STREAM INTERNAL_ERROR at once (close() would end the body cleanly first, and a cut-off
    // response would look whole to the client).
    this.#stream.destroy(new Error("reset by the proxy"));
  }

  /** Tells the meter, once. */
  #metered(status: number): void {
    const meter = this.meter;
    if (meter === null) return;
    this.meter = null;
    meter.done(status, this.#bytesOut);
  }

  /**
   * Shutdown: resets a stream still open: REFUSED_STREAM if no instance got its request (the
   * client may safely send it again), CANCEL if no response began, else INTERNAL_ERROR (as
   * `destroy`: a cut-off response must not look whole).
   */
  shutDown(): void {
    if (this.destroyed) return;
    if (this.headersSent) return this.#reset(); // the meter hears of it at the close: 499
    this.#resetByProxy = true;
    this.#stream.close(this.forwarded ? NGHTTP2_CANCEL : NGHTTP2_REFUSED_STREAM);
  }

  once(event: "drain", fn: () => void): void {
    this.#stream.once(event, fn);
  }

  /** The stream closed: an unfinished response is aborted. */
  closed(): void {
    this.#unstall();
    if (this.writableEnded) return;
    this.#metered(499);
    const fn = this.onAbort;
    this.onAbort = null;
    fn?.();
  }

  #sendTrailers = (): void => {
    let fields: Record<string, string | string[]> = {};
    if (this.#trailers !== null) {
      try {
        fields = fieldsObject(h2ResponseHeaders(null, this.#trailers));
      } catch {
        fields = {}; // an invalid trailer from the instance: the response still ends
      }
    }
    if (this.destroyed) return;
    this.#stream.sendTrailers(fields);
    if (!this.#resetAfterTrailers) return;
    this.#resetByProxy = true;
    // Deno's node:http2 drops trailers the stream is reset right after: reset on the next turn.
    setImmediate(() => {
      if (!this.destroyed && !(this.#body?.complete ?? true)) {
        this.#stream.close(NGHTTP2_NO_ERROR);
      }
    });
  };
}

/** A flat [name, value, …] list as an object (repeated names: an array of their values). */
function fieldsObject(list: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i]!;
    const value = list[i + 1]!;
    const had = out[name];
    if (had === undefined) out[name] = value;
    else if (Array.isArray(had)) had.push(value);
    else out[name] = [had, value];
  }
  return out;
}
