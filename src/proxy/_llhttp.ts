/**
 * Typed access to the HTTP/1.1 request parser behind `node:http`'s server (llhttp, through
 * Deno's `node:_http_common`): the proxy drives it directly from its own connections, without
 * `IncomingMessage` / `ServerResponse` and their timers, but with the same strict parsing
 * (request smuggling defences, header size limit, chunked bodies).
 *
 * `node:_http_common` is an internal Node module; Deno 2.9 provides it. It is loaded (and
 * checked on a fixed request) by `loadRequestParser()`, which `HttpProxy.start()` awaits: if a
 * Deno upgrade drops or changes it, starting the HTTP proxy fails with one line, and everything
 * else (`--proxy-http off`, other commands) still works.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { errorText } from "../lib/error_text.ts";

/** What the parser reports about a request head. */
export interface ParsedHead {
  versionMinor: number;
  /** [name, value, …] as received. */
  rawHeaders: string[];
  method: string;
  url: string;
  /** Upgrade (or CONNECT): the rest of the connection is not HTTP. */
  upgrade: boolean;
  shouldKeepAlive: boolean;
}

export interface RequestParserCallbacks {
  /** A request's first byte was parsed (empty lines before it are skipped). */
  onBegin?(): void;
  onHead(head: ParsedHead): void;
  onBody(chunk: Buffer): void;
  onComplete(): void;
}

/** One connection's request parser. */
export interface RequestParser {
  /** Parses bytes: the count parsed (less than all after an upgrade head), or the error. */
  execute(data: Buffer): number | (Error & { code?: string });
  free(): void;
}

interface RawParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  free(): void;
  [key: number]: unknown;
}

interface ParserClass {
  new (): RawParser;
  REQUEST: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}

/** The loaded module (see `loadRequestParser`). */
let llhttp: { P: ParserClass; methods: readonly string[] } | null = null;
let loading: Promise<void> | null = null;

/** Kept in a variable so that no module graph needs the internal module statically. */
const HTTP_COMMON = "node:_http_common";

/**
 * Loads llhttp from `node:_http_common` once and checks it parses a fixed request; throws one
 * line naming the problem otherwise.
 */
export function loadRequestParser(): Promise<void> {
  loading ??= (async () => {
    try {
      const m = await import(HTTP_COMMON);
      if (typeof m.HTTPParser !== "function" || !Array.isArray(m.methods)) {
        throw new Error("no HTTPParser export");
      }
      llhttp = { P: m.HTTPParser as ParserClass, methods: m.methods as string[] };
      selfTest();
    } catch (e) {
      llhttp = null;
      loading = null;
      throw new Error(
        `proxy: this Deno lacks a usable node:_http_common HTTPParser ` +
          `(${errorText(e)}); use --proxy-http off`,
      );
    }
  })();
  return loading;
}

/** Parses a fixed request with a body; throws when llhttp does not behave as expected. */
function selfTest(): void {
  let head: ParsedHead | null = null;
  let body = "";
  let complete = false;
  const p = createRequestParser(1024, {
    onHead: (h) => head = h,
    onBody: (chunk) => body += chunk.toString("latin1"),
    onComplete: () => complete = true,
  });
  try {
    const wire = "POST /self-test HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
    const r = p.execute(Buffer.from(wire, "latin1"));
    const h = head as ParsedHead | null;
    const ok = r === wire.length && h !== null && h.method === "POST" &&
      h.url === "/self-test" && h.rawHeaders[0] === "Host" && h.rawHeaders[1] === "a" &&
      h.shouldKeepAlive && body === "hi" && complete;
    if (!ok) throw new Error("self-test parse gave unexpected results");
  } finally {
    p.free();
  }
}

/** A strict request parser (no lenient flags) with a `headerBytesMax` head limit. */
export function createRequestParser(
  headerBytesMax: number,
  cb: RequestParserCallbacks,
): RequestParser {
  if (llhttp === null) throw new Error("proxy: loadRequestParser() was not awaited");
  const { P, methods } = llhttp;
  const p = new P();
  p.initialize(P.REQUEST, {}, headerBytesMax, 0);
  // Heads with many fields arrive in parts (as in Node's binding): collected here.
  let partHeaders: string[] = [];
  let partUrl = "";
  p[P.kOnHeaders] = (headers: string[], url: string) => {
    partHeaders = partHeaders.concat(headers);
    partUrl += url;
  };
  p[P.kOnHeadersComplete] = (
    _major: number,
    minor: number,
    rawHeaders: string[],
    method: number,
    url: string,
    _status: unknown,
    _reason: unknown,
    upgrade: boolean,
    shouldKeepAlive: boolean,
  ) => {
    if (partHeaders.length > 0 || partUrl !== "") {
      rawHeaders = rawHeaders ? partHeaders.concat(rawHeaders) : partHeaders;
      url = partUrl + (url ?? "");
      partHeaders = [];
      partUrl = "";
    }
    cb.onHead({
      versionMinor: minor,
      rawHeaders: rawHeaders ?? [],
      method: methods[method] ?? "GET",
      url,
      upgrade,
      shouldKeepAlive,
    });
    return 0;
  };
  if (cb.onBegin !== undefined) p[P.kOnMessageBegin] = cb.onBegin;
  p[P.kOnBody] = (chunk: Buffer) => cb.onBody(chunk);
  p[P.kOnMessageComplete] = () => cb.onComplete();
  return p as unknown as RequestParser;
}
