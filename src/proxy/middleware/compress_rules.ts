/**
 * What the compression middleware (compress.ts) decides from a request and a response head,
 * pure: which coding the client accepts best (`chooseEncoding`), which media types are worth
 * compressing (`isCompressible`), whether a response is compressed at all (`planCompression`)
 * and its headers when it is (`compressedHeaders`). README "Compression".
 *
 * @module
 */
import type { Encoding } from "../../store/mod.ts";

/** Responses with a known length under this many bytes are sent as they are. */
export const COMPRESS_BYTES_MIN = 1024;

/**
 * The coding among `offered` (in order of preference at equal q) that an `Accept-Encoding`
 * value accepts with the highest q (RFC 9110 §12.5.3): a coding not named takes the q of `*`
 * when there is one, else is not accepted; q=0 refuses; `x-gzip` is `gzip`. null when the
 * header is absent or accepts none of them.
 */
export function chooseEncoding(
  accept: string | undefined,
  offered: readonly Encoding[],
): Encoding | null {
  if (accept === undefined || offered.length === 0) return null;
  const q = new Map<string, number>();
  for (const member of accept.split(",")) {
    const [name, ...params] = member.split(";");
    let coding = name!.trim().toLowerCase();
    if (coding === "") continue;
    if (coding === "x-gzip") coding = "gzip";
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/i.exec(p);
      if (m === null) continue; // another parameter, or a malformed q: the default weight
      weight = Math.min(1, Number(m[1]));
    }
    // The same coding twice: the first wins (a list should not repeat it).
    if (!q.has(coding)) q.set(coding, weight);
  }
  const any = q.get("*");
  let best: Encoding | null = null;
  let bestQ = 0;
  for (const e of offered) {
    const w = q.get(e) ?? any ?? 0;
    if (w > bestQ) {
      best = e;
      bestQ = w;
    }
  }
  return best;
}

/** Media types outside `text/` that are compressible text or text-like formats. */
const COMPRESSIBLE = new Set([
  "application/javascript",
  "application/x-javascript",
  "application/ecmascript",
  "application/json",
  "application/xml",
  "application/wasm",
  "application/yaml",
  "application/x-yaml",
  "application/toml",
  "application/graphql",
  "application/x-www-form-urlencoded",
  "application/vnd.ms-fontobject",
  "application/x-font-ttf",
  "font/ttf",
  "font/otf",
  "font/collection",
  "image/svg+xml",
  "image/x-icon",
  "image/vnd.microsoft.icon",
  "image/bmp",
]);

/**
 * Whether a `Content-Type` names a compressible media type: `text/*` (but not
 * `text/event-stream`, whose events must go out as they come), JavaScript, JSON and XML
 * (`+json`, `+xml` suffixes included), SVG, WebAssembly, YAML, uncompressed fonts and icons.
 */
export function isCompressible(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(";");
  const t = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (t.startsWith("text/")) return t !== "text/event-stream";
  return COMPRESSIBLE.has(t) || t.endsWith("+json") || t.endsWith("+xml");
}

/** What compress.ts does with one response. */
export interface CompressionPlan {
  /** The coding to compress with; null: the body goes as it is. */
  encoding: Encoding | null;
  /**
   * Add `Vary: Accept-Encoding`: the response is one that is compressed for clients that
   * accept it (also when this client does not), so caches must key on the header.
   */
  vary: boolean;
}

const NONE: CompressionPlan = Object.freeze({ encoding: null, vary: false });

/** The headers of a response head that decide compression (first of each, lower-case names). */
export interface ResponseFacts {
  contentType?: string;
  contentLength?: string;
  contentEncoding?: string;
  contentRange?: string;
  cacheControl?: string;
}

/** The facts of `headers` [name, value, …]. */
export function responseFacts(headers: readonly string[]): ResponseFacts {
  const f: ResponseFacts = {};
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    // Names of the five fields are 12–16 characters; skip the rest without lower-casing.
    if (name.length < 12 || name.length > 16) continue;
    const v = headers[i + 1]!;
    switch (name.toLowerCase()) {
      case "content-type":
        f.contentType ??= v;
        break;
      case "content-length":
        f.contentLength ??= v;
        break;
      case "content-encoding":
        f.contentEncoding ??= v;
        break;
      case "content-range":
        f.contentRange ??= v;
        break;
      case "cache-control":
        f.cacheControl = f.cacheControl === undefined ? v : `${f.cacheControl}, ${v}`;
        break;
    }
  }
  return f;
}

/**
 * Whether and how a response is compressed: never for HEAD, 1xx/204/304, 206 or any
 * `Content-Range`, a body already encoded, `Cache-Control: no-transform`, a type that is not
 * compressible (`isCompressible`) or a known length under COMPRESS_BYTES_MIN; otherwise with
 * the coding the client accepts best, or not at all when it accepts none (then with `vary`).
 */
export function planCompression(
  req: { method: string; acceptEncoding: string | undefined },
  status: number,
  f: ResponseFacts,
  offered: readonly Encoding[],
): CompressionPlan {
  if (status < 200 || status === 204 || status === 206 || status === 304) return NONE;
  if (f.contentRange !== undefined) return NONE;
  if (f.contentEncoding !== undefined && f.contentEncoding.trim().toLowerCase() !== "identity") {
    return NONE;
  }
  if (
    f.cacheControl !== undefined && /(?:^|[\s,])no-transform(?:$|[\s,;=])/i.test(f.cacheControl)
  ) {
    return NONE;
  }
  if (!isCompressible(f.contentType)) return NONE;
  if (f.contentLength !== undefined) {
    const n = Number(f.contentLength.trim());
    if (Number.isFinite(n) && n < COMPRESS_BYTES_MIN) return NONE;
  }
  // A HEAD answer carries the Vary its GET would, without a body to compress.
  if (req.method === "HEAD") return { encoding: null, vary: true };
  return { encoding: chooseEncoding(req.acceptEncoding, offered), vary: true };
}

/**
 * The response headers [name, value, …] for `plan`: `Vary` gains `Accept-Encoding` (unless it
 * names it or is `*`); when compressing, `Content-Encoding` is set, `Content-Length` and
 * `Accept-Ranges` are dropped (the length is unknown; ranges would count the encoded bytes) and
 * a strong `ETag` is made weak (the encoded bytes differ from the instance's, RFC 9110 §8.8.1).
 */
export function compressedHeaders(headers: readonly string[], plan: CompressionPlan): string[] {
  const out: string[] = [];
  let varyAt = -1;
  let varyDone = !plan.vary;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    let value = headers[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === "vary") {
      const tokens = value.split(",").map((t) => t.trim().toLowerCase());
      if (tokens.includes("*") || tokens.includes("accept-encoding")) varyDone = true;
      else if (varyAt < 0) varyAt = out.length + 1;
    } else if (plan.encoding !== null) {
      if (lower === "content-length" || lower === "accept-ranges") continue;
      if (lower === "content-encoding") continue; // `identity`: replaced below
      if (lower === "etag" && !value.startsWith("W/")) value = `W/${value}`;
    }
    out.push(name, value);
  }
  if (!varyDone) {
    const had = varyAt >= 0 ? out[varyAt]!.trim() : "";
    if (had !== "") out[varyAt] = `${had}, Accept-Encoding`;
    else if (varyAt >= 0) out[varyAt] = "Accept-Encoding";
    else out.push("vary", "Accept-Encoding");
  }
  if (plan.encoding !== null) out.push("content-encoding", plan.encoding);
  return out;
}
