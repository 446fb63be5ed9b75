/**
 * Typed access to the HTTP/1.1 request parser behind `node:http`'s server (llhttp, through
 * Deno's `node:_http_common`): the proxy drives it directly from its own connections, without
 * `IncomingMessage` / `ServerResponse` and their timers, but with the same strict parsing
 * (request smuggling defences, header size limit, chunked bodies).
 *
 * `node:_http_common` is an internal Node module; Deno 2.9 provides it. If a Deno upgrade
 * drops it, `createRequestParser` throws at start and the proxy says so.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
// @ts-expect-error: Node's internal module has no type declarations in Deno
import { HTTPParser, methods } from "node:_http_common";

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

const METHODS = methods as readonly string[];

/** A strict request parser (no lenient flags) with a `headerBytesMax` head limit. */
export function createRequestParser(
  headerBytesMax: number,
  cb: RequestParserCallbacks,
): RequestParser {
  const P = HTTPParser as {
    new (): RawParser;
    REQUEST: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
  };
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
      method: METHODS[method] ?? "GET",
      url,
      upgrade,
      shouldKeepAlive,
    });
    return 0;
  };
  p[P.kOnBody] = (chunk: Buffer) => cb.onBody(chunk);
  p[P.kOnMessageComplete] = () => cb.onComplete();
  return p as unknown as RequestParser;
}
