/**
 * An HTTP/1.1 response parser for the proxy's upstream connections (RFC 9112): status line and
 * headers, then the body framed by `Transfer-Encoding: chunked`, `Content-Length` or the end of
 * the connection, handed on as it arrives (de-chunked). Interim 1xx responses are skipped.
 *
 * The proxy writes its own requests over pooled connections, so this replaces Node's client
 * (`http.request` with an `Agent`), which cost about twice the CPU per proxied request here.
 *
 * Lines may end with a bare LF instead of CRLF (busybox CGI and some embedded servers send
 * that; RFC 9112 §2.2 lets a recipient accept it). Strict where a lenient reading could
 * desynchronise a pooled connection: folded header lines, a bare CR, conflicting or malformed
 * lengths and oversized heads or chunk lines are errors (the caller answers 502 and closes the
 * connection).
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** Response heads longer than this are refused. */
export const RESPONSE_HEAD_BYTES_MAX = 64 * 1024;
/** A chunk-size line (with extensions) longer than this is refused. */
export const CHUNK_LINE_BYTES_MAX = 4 * 1024;
/** Interim (1xx) responses skipped before a final one. */
export const INTERIM_RESPONSES_MAX = 10;

/** A response's status line and headers. */
export interface ResponseHead {
  status: number;
  reason: string;
  /** Headers as received, [name, value, …] (values without surrounding whitespace). */
  headers: string[];
}

export interface ResponseParserCallbacks {
  onHead(head: ResponseHead): void;
  /** A piece of the body (de-chunked); the buffer may be a view into the received one. */
  onBody(chunk: Buffer): void;
  /**
   * The response is complete. `reusable`: the connection may carry another request (HTTP/1.1
   * without `Connection: close`, framed by length or chunks, nothing extra received).
   */
  onEnd(reusable: boolean): void;
}

/** A malformed response. */
export class ResponseParseError extends Error {}

const LF = 10;
const CR = 13;

/**
 * Finds the empty line that ends a head (or trailer section) starting at `from`: returns the end
 * of the head's text (before the line end of its last line) and where the bytes after the empty
 * line begin, or null when it has not arrived yet. Line ends are CRLF or a bare LF.
 */
function findHeadEnd(buf: Buffer, from: number): { end: number; next: number } | null {
  // A plain loop: Buffer#indexOf costs more per call than a head's few dozen bytes between LFs.
  for (let lf = from; lf < buf.length; lf++) {
    if (buf[lf] !== LF) continue;
    const end = lf > from && buf[lf - 1] === CR ? lf - 1 : lf;
    if (buf[lf + 1] === LF) return { end, next: lf + 2 };
    if (buf[lf + 1] === CR && buf[lf + 2] === LF) return { end, next: lf + 3 };
  }
  return null;
}

/** Where a line ending at the LF `eol` ends without its CR. */
function lineEnd(text: string, eol: number): number {
  return eol > 0 && text.charCodeAt(eol - 1) === CR ? eol - 1 : eol;
}

/** A NUL, or a CR that does not end a line: the only bytes a header value may not hold. */
const SUSPECT_VALUE = /\0|\r(?!\n)/;

/** Latin1 characters a header name may not hold (those `/[\s\0\n\r]/` matches). */
const BAD_NAME_CHAR = new Uint8Array(256).map((_, c) =>
  /[\s\0\n\r]/.test(String.fromCharCode(c)) ? 1 : 0
);

/** Whether a header name holds no whitespace, NUL, CR nor LF (as `/[\s\0\n\r]/` tests). */
function validName(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 255 ? /\s/.test(name[i]!) : BAD_NAME_CHAR[c] === 1) return false;
  }
  return true;
}

const enum State {
  Head,
  Length,
  ChunkLine,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

/** Parses one response at a time; `reset()` before the next one on the same connection. */
export class ResponseParser {
  readonly #cb: ResponseParserCallbacks;
  #state: State = State.Head;
  /** Bytes kept across `feed()` calls: an incomplete head, chunk line or trailer section. */
  #pending: Buffer | null = null;
  #remaining = 0;
  #noBody = false;
  #reusable = true;
  #interim = 0;

  constructor(callbacks: ResponseParserCallbacks) {
    this.#cb = callbacks;
  }

  /** Readies the parser for a response; `noBody` for the answer to a HEAD request. */
  reset(noBody: boolean): void {
    this.#state = State.Head;
    this.#pending = null;
    this.#remaining = 0;
    this.#noBody = noBody;
    this.#reusable = true;
    this.#interim = 0;
  }

  /** Whether the response is complete. */
  get done(): boolean {
    return this.#state === State.Done;
  }

  /** Whether any byte of the response arrived. */
  get started(): boolean {
    return this.#state !== State.Head || this.#pending !== null || this.#interim > 0;
  }

  /** Parses received bytes; throws ResponseParseError on a malformed response. */
  feed(data: Buffer): void {
    let buf = data;
    if (this.#pending !== null) {
      buf = Buffer.concat([this.#pending, data]);
      this.#pending = null;
    }
    let at = 0;
    if (this.done) {
      // Bytes after a complete response: a misbehaving instance; the caller closes.
      throw new ResponseParseError("data after the end of a response");
    }
    while (at < buf.length && !this.done) {
      switch (this.#state) {
        case State.Head: {
          const found = findHeadEnd(buf, at);
          if (found === null) {
            if (buf.length - at > RESPONSE_HEAD_BYTES_MAX) {
              throw new ResponseParseError(`response head over ${RESPONSE_HEAD_BYTES_MAX} bytes`);
            }
            this.#pending = buf.subarray(at);
            return;
          }
          if (found.end - at > RESPONSE_HEAD_BYTES_MAX) {
            throw new ResponseParseError(`response head over ${RESPONSE_HEAD_BYTES_MAX} bytes`);
          }
          const head = buf.toString("latin1", at, found.end);
          at = found.next;
          this.#onHead(head);
          break;
        }
        case State.Length: {
          const n = Math.min(this.#remaining, buf.length - at);
          const piece = at === 0 && n === buf.length ? buf : buf.subarray(at, at + n);
          at += n;
          this.#remaining -= n;
          this.#cb.onBody(piece);
          if (this.#remaining === 0) this.#finish();
          break;
        }
        case State.ChunkLine: {
          const lf = buf.indexOf(LF, at);
          if (lf < 0 || lf - at > CHUNK_LINE_BYTES_MAX) {
            if (buf.length - at > CHUNK_LINE_BYTES_MAX) {
              throw new ResponseParseError("chunk size line too long");
            }
            this.#pending = buf.subarray(at);
            return;
          }
          const line = buf.toString("latin1", at, lf > at && buf[lf - 1] === CR ? lf - 1 : lf);
          at = lf + 1;
          const semi = line.indexOf(";");
          const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
          if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
            throw new ResponseParseError(`invalid chunk size "${hex.slice(0, 20)}"`);
          }
          const size = parseInt(hex, 16);
          if (size === 0) this.#state = State.Trailers;
          else {
            this.#remaining = size;
            this.#state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.#remaining, buf.length - at);
          this.#cb.onBody(buf.subarray(at, at + n));
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = State.ChunkDataEnd;
          break;
        }
        case State.ChunkDataEnd: {
          if (buf[at] === LF) at += 1;
          else if (buf.length - at < 2) {
            this.#pending = buf.subarray(at);
            return;
          } else if (buf[at] === CR && buf[at + 1] === LF) at += 2;
          else throw new ResponseParseError("chunk data not followed by CRLF");
          this.#state = State.ChunkLine;
          break;
        }
        case State.Trailers: {
          // Trailer fields are dropped (as Node's pipe did); an empty line ends them.
          if (buf[at] === LF || (buf[at] === CR && buf[at + 1] === LF)) {
            at += buf[at] === LF ? 1 : 2;
            this.#finish();
            break;
          }
          const found = findHeadEnd(buf, at);
          if (found === null) {
            if (buf.length - at > RESPONSE_HEAD_BYTES_MAX) {
              throw new ResponseParseError("trailer section too long");
            }
            this.#pending = buf.subarray(at);
            return;
          }
          at = found.next;
          this.#finish();
          break;
        }
        case State.UntilClose:
          this.#cb.onBody(at === 0 ? buf : buf.subarray(at));
          return;
      }
    }
    if (this.done) {
      // Bytes after the response in the same read: the connection cannot carry another one.
      this.#cb.onEnd(this.#reusable && at === buf.length);
    }
  }

  /**
   * The connection ended. Completes a body read until close; throws ResponseParseError when
   * the response was cut short.
   */
  close(): void {
    if (this.#state === State.UntilClose) {
      this.#state = State.Done;
      this.#cb.onEnd(false);
      return;
    }
    if (this.#state !== State.Done) {
      throw new ResponseParseError(
        this.#state !== State.Head
          ? "response cut short"
          : this.#pending !== null
          ? `connection closed inside the response head (${this.#pending.length} bytes ` +
            "without the empty line that ends it)"
          : this.#interim > 0
          ? "connection closed after an interim (1xx) response"
          : "connection closed before a response",
      );
    }
  }

  #onHead(text: string): void {
    // Lines as `text.split(/\r?\n/)` gives them, walked without the array and the regex.
    let eol = text.indexOf("\n");
    if (eol < 0) eol = text.length;
    const statusLine = text.slice(0, lineEnd(text, eol));
    const m = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: (.*))?$/.exec(statusLine);
    if (m === null) {
      throw new ResponseParseError(`invalid status line "${statusLine.slice(0, 40)}"`);
    }
    const http10 = m[1] === "0";
    const status = Number(m[2]);
    const headers: string[] = [];
    let length: number | null = null;
    let chunked = false;
    let close = http10;
    // Only a NUL or a CR not ending a line can make a value invalid: one search for the head.
    const checkValues = SUSPECT_VALUE.test(text);
    for (let start = eol + 1; start <= text.length && eol < text.length; start = eol + 1) {
      eol = text.indexOf("\n", start);
      if (eol < 0) eol = text.length;
      const line = text.slice(start, lineEnd(text, eol));
      const colon = line.indexOf(":");
      if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) {
        throw new ResponseParseError(`invalid header line "${line.slice(0, 40)}"`);
      }
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      if (!validName(name) || (checkValues && /[\0\r\n]/.test(value))) {
        throw new ResponseParseError(`invalid header "${name.slice(0, 40)}"`);
      }
      headers.push(name, value);
      switch (name.length) {
        case 10: { // connection
          if (name.toLowerCase() !== "connection") break;
          const v = value.toLowerCase();
          if (v.includes("close")) close = true;
          else if (http10 && v.includes("keep-alive")) close = false;
          break;
        }
        case 14: { // content-length
          if (name.toLowerCase() !== "content-length") break;
          if (!/^\d{1,15}$/.test(value)) {
            throw new ResponseParseError(`invalid content-length "${value.slice(0, 20)}"`);
          }
          const n = Number(value);
          if (length !== null && length !== n) {
            throw new ResponseParseError("conflicting content-length headers");
          }
          length = n;
          break;
        }
        case 17: { // transfer-encoding
          if (name.toLowerCase() !== "transfer-encoding") break;
          // Only plain chunked framing is relayed: the proxy strips Transfer-Encoding (a
          // hop-by-hop header), so any other coding would reach the client undeclared.
          if (chunked || value.toLowerCase() !== "chunked") {
            throw new ResponseParseError(`unsupported transfer-encoding "${value.slice(0, 40)}"`);
          }
          chunked = true;
          break;
        }
      }
    }
    if (status < 200 && status !== 101) {
      if (++this.#interim > INTERIM_RESPONSES_MAX) {
        throw new ResponseParseError(`over ${INTERIM_RESPONSES_MAX} interim responses`);
      }
      return; // stay in State.Head for the final response
    }
    if (status === 101) throw new ResponseParseError("unexpected 101 Switching Protocols");
    this.#reusable = !close;
    this.#cb.onHead({ status, reason: m[3] ?? "", headers });
    if (this.#noBody || status === 204 || status === 304) {
      this.#finish();
      return;
    }
    if (chunked) {
      // RFC 9112 §6.3: a message with both is suspect (request smuggling); refuse it.
      if (length !== null) {
        throw new ResponseParseError("both transfer-encoding and content-length");
      }
      this.#state = State.ChunkLine;
    } else if (length !== null) {
      if (length === 0) {
        this.#finish();
        return;
      }
      this.#remaining = length;
      this.#state = State.Length;
    } else {
      this.#reusable = false;
      this.#state = State.UntilClose;
    }
  }

  /** The response is complete; `feed()` reports it once it has consumed what it can. */
  #finish(): void {
    this.#state = State.Done;
  }
}
