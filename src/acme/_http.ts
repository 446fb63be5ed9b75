/**
 * The HTTP side of AcmeClient: one request at a time with a timeout, answers read up to
 * ANSWER_BYTES_MAX, Replay-Nonce headers collected, and the answer's body read as text, JSON, a
 * problem document or a Location. Private to src/acme.
 *
 * @module
 */
import { AcmeError, PROBLEM, problemFrom } from "./error.ts";
import { retryAfterMs } from "./wire.ts";
import { concatBytes } from "../lib/bytes.ts";

/** Largest answer read from a CA (JSON or a PEM chain); a bigger one is an AcmeError. */
export const ANSWER_BYTES_MAX = 256 * 1024;
const NONCE = /^[A-Za-z0-9_-]{1,256}$/;
const NONCES_KEPT = 8;

/** One answer: status, headers and the whole (bounded) body. */
export interface Answer {
  status: number;
  headers: Headers;
  body: Uint8Array;
  url: string;
}

export class AcmeHttp {
  /** Unused nonces from answers, newest last (RFC 8555 §7.2: any answer may carry one). */
  readonly nonces: string[] = [];

  constructor(
    readonly fetch: typeof globalThis.fetch,
    readonly client: Deno.HttpClient | undefined,
    readonly timeoutMs: number,
  ) {}

  /** One HTTP request; the answer whatever its status, its body read up to ANSWER_BYTES_MAX. */
  async exchange(
    method: string,
    url: string,
    o: { body?: string; contentType?: string; accept?: string },
    op: string,
  ): Promise<Answer> {
    const headers: Record<string, string> = { "user-agent": "berth-acme" };
    if (o.contentType !== undefined) headers["content-type"] = o.contentType;
    if (o.accept !== undefined) headers.accept = o.accept;
    const signal = AbortSignal.timeout(this.timeoutMs);
    const init: RequestInit & { client?: Deno.HttpClient } = { method, headers, signal };
    if (o.body !== undefined) init.body = o.body;
    if (this.client !== undefined) init.client = this.client;
    const unreachable = (e: unknown) =>
      new AcmeError({
        type: PROBLEM.network,
        status: 0,
        url,
        op,
        detail: `${method} ${url}: ${
          signal.aborted ? `no answer within ${this.timeoutMs} ms` : (e as Error).message
        }`,
      });
    let r: Response;
    try {
      r = await this.fetch(url, init);
    } catch (e) {
      throw unreachable(e);
    }
    const nonce = r.headers.get("replay-nonce");
    if (nonce !== null && NONCE.test(nonce)) {
      this.nonces.push(nonce);
      if (this.nonces.length > NONCES_KEPT) this.nonces.shift();
    }
    let body: Uint8Array;
    try {
      body = await readBounded(r, ANSWER_BYTES_MAX);
    } catch (e) {
      if (e instanceof AcmeError) {
        throw new AcmeError({ type: e.type, detail: e.detail, status: r.status, url, op });
      }
      throw unreachable(e);
    }
    return { status: r.status, headers: r.headers, body, url };
  }

  text(a: Answer, op: string): string {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(a.body);
    } catch {
      throw new AcmeError({
        type: PROBLEM.badResponse,
        status: a.status,
        url: a.url,
        op,
        detail: "the answer is not UTF-8 text",
      });
    }
  }

  json(a: Answer, op: string): unknown {
    const text = this.text(a, op);
    try {
      return JSON.parse(text);
    } catch {
      throw new AcmeError({
        type: PROBLEM.badResponse,
        status: a.status,
        url: a.url,
        op,
        detail: `the answer is not JSON: ${JSON.stringify(text.slice(0, 80))}`,
      });
    }
  }

  /** The AcmeError an error answer describes. */
  problem(a: Answer, op: string): AcmeError {
    const retry = retryAfterMs(a.headers.get("retry-after"), Date.now());
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder().decode(a.body));
    } catch {
      const text = new TextDecoder().decode(a.body.subarray(0, 200));
      return new AcmeError({
        type: PROBLEM.badResponse,
        status: a.status,
        url: a.url,
        op,
        retryAfterMs: retry,
        detail: `HTTP ${a.status} without a problem document: ${JSON.stringify(text)}`,
      });
    }
    return problemFrom(value, { status: a.status, url: a.url, retryAfterMs: retry, op });
  }

  location(a: Answer, op: string): string {
    const loc = a.headers.get("location");
    if (loc === null || loc.length > 2048 || !/^https?:\/\//.test(loc)) {
      throw new AcmeError({
        type: PROBLEM.badResponse,
        status: a.status,
        url: a.url,
        op,
        detail: "the answer has no Location URL",
      });
    }
    return loc;
  }
}

/** The body of `r`, refusing more than `max` bytes (by Content-Length or while reading). */
async function readBounded(r: Response, max: number): Promise<Uint8Array> {
  const tooBig = () =>
    new AcmeError({
      type: PROBLEM.badResponse,
      status: r.status,
      detail: `answer over ${max} bytes`,
    });
  const declared = Number(r.headers.get("content-length") ?? "0");
  if (declared > max) {
    await r.body?.cancel();
    throw tooBig();
  }
  if (r.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let n = 0;
  const reader = r.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      await reader.cancel();
      throw tooBig();
    }
    chunks.push(value);
  }
  return concatBytes(chunks, n);
}
