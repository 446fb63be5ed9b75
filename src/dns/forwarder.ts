/**
 * The last link of the request path: names outside berth's domains go to the configured
 * recursors, in order, over UDP with a timeout, retried over TCP when the UDP answer is truncated.
 * Answers are cached (ResponseCache: bounded, TTL-respecting) and identical questions in flight
 * share one upstream exchange. Each exchange uses a fresh socket (random source port) and a
 * random id, and only an answer from the asked address to the asked question is accepted.
 *
 * @module
 */
import { createSocket } from "node:dgram";
import { createConnection, isIPv6 } from "node:net";
import type { HostPort } from "../lib/host_port.ts";
import { ResponseCache, type ResponseCacheOptions } from "./response_cache.ts";
import { FLAG, HEADER_BYTES, type Query, RCODE, writeU16 } from "./wire.ts";
import { concatBytes } from "../lib/bytes.ts";

/** Per-recursor wait for an answer (UDP, then TCP when truncated). */
export const FORWARD_TIMEOUT_MS = 2000;
/** Most distinct questions waiting on upstreams at once; more get SERVFAIL. */
export const FORWARD_INFLIGHT_MAX = 1024;

export interface ForwarderOptions extends ResponseCacheOptions {
  /** Wait per recursor (default FORWARD_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Most questions in flight (default FORWARD_INFLIGHT_MAX). */
  inflightMax?: number;
  /** [0, 1) source for upstream query ids (default Math.random). */
  random?: () => number;
}

export class Forwarder {
  readonly #recursors: readonly HostPort[];
  readonly #timeoutMs: number;
  readonly #inflightMax: number;
  readonly #random: () => number;
  readonly #cache: ResponseCache;
  readonly #inflight = new Map<string, Promise<Uint8Array | null>>();
  readonly #open = new Set<{ close(): void }>();

  constructor(recursors: readonly HostPort[], options: ForwarderOptions = {}) {
    this.#recursors = recursors;
    this.#timeoutMs = options.timeoutMs ?? FORWARD_TIMEOUT_MS;
    this.#inflightMax = options.inflightMax ?? FORWARD_INFLIGHT_MAX;
    this.#random = options.random ?? Math.random;
    this.#cache = new ResponseCache(options);
  }

  /** Cached entries (for tests and metrics). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /**
   * The upstream answer to `q`, with q's id and question; null when no recursor answered (the
   * caller replies SERVFAIL).
   */
  async forward(q: Query): Promise<Uint8Array | null> {
    const question = q.bytes.subarray(HEADER_BYTES, q.questionEnd);
    const key = forwardKey(q);
    const hit = this.#cache.get(key, q.id, question);
    if (hit !== null) return hit;
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      if (this.#inflight.size >= this.#inflightMax) return null;
      pending = this.#ask(q).then((r) => {
        if (r === null) return null;
        r[2] = r[2]! & ~FLAG.AA; // relayed, not authoritative here
        r[3] = r[3]! | FLAG.RA;
        this.#cache.put(key, r);
        return r;
      }).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    const response = await pending;
    if (response === null) return null;
    const out = response.slice();
    writeU16(out, 0, q.id);
    out.set(question, HEADER_BYTES);
    return out;
  }

  /** Stops every exchange in flight and empties the cache. */
  close(): void {
    for (const s of this.#open) s.close();
    this.#open.clear();
    this.#cache.clear();
  }

  async #ask(q: Query): Promise<Uint8Array | null> {
    const message = q.bytes.slice();
    message[2] = message[2]! | FLAG.RD;
    let last: Uint8Array | null = null;
    for (const upstream of this.#recursors) {
      const id = Math.floor(this.#random() * 0x10000) & 0xffff;
      writeU16(message, 0, id);
      const accept = (r: Uint8Array) => matches(r, message, q.questionEnd);
      let r = await this.#udp(upstream, message, accept);
      if (r !== null && (r[2]! & FLAG.TC) !== 0) {
        r = (await this.#tcp(upstream, message, accept)) ?? r;
      }
      if (r === null) continue;
      last = r;
      const rcode = r[3]! & 0x0f;
      if (rcode !== RCODE.SERVFAIL && rcode !== RCODE.REFUSED) return r;
    }
    return last;
  }

  #udp(to: HostPort, message: Uint8Array, accept: (r: Uint8Array) => boolean) {
    return new Promise<Uint8Array | null>((resolve) => {
      const socket = createSocket(isIPv6(to.host) ? "udp6" : "udp4");
      const handle = { close: () => finish(null) };
      const timer = setTimeout(() => finish(null), this.#timeoutMs);
      const finish = (r: Uint8Array | null) => {
        clearTimeout(timer);
        this.#open.delete(handle);
        try {
          socket.close();
        } catch { /* already closed */ }
        resolve(r);
      };
      this.#open.add(handle);
      socket.on("error", () => finish(null));
      socket.on("message", (msg, rinfo) => {
        if (rinfo.port !== to.port || rinfo.address !== to.host) return;
        const r = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
        if (accept(r)) finish(r.slice());
      });
      socket.send(message, to.port, to.host, (e) => {
        if (e) finish(null);
      });
    });
  }

  #tcp(to: HostPort, message: Uint8Array, accept: (r: Uint8Array) => boolean) {
    return new Promise<Uint8Array | null>((resolve) => {
      const socket = createConnection({ host: to.host, port: to.port });
      const handle = { close: () => finish(null) };
      const timer = setTimeout(() => finish(null), this.#timeoutMs);
      const chunks: Uint8Array[] = [];
      let have = 0;
      const finish = (r: Uint8Array | null) => {
        clearTimeout(timer);
        this.#open.delete(handle);
        socket.destroy();
        resolve(r);
      };
      this.#open.add(handle);
      socket.on("error", () => finish(null));
      socket.on("close", () => finish(null));
      socket.on("data", (chunk: Uint8Array) => {
        chunks.push(chunk);
        have += chunk.length;
        if (have < 2) return;
        const all = concat(chunks, have);
        const len = (all[0]! << 8) | all[1]!;
        if (have < 2 + len) return;
        const r = all.slice(2, 2 + len);
        finish(accept(r) ? r : null);
      });
      const framed = new Uint8Array(2 + message.length);
      writeU16(framed, 0, message.length);
      framed.set(message, 2);
      socket.write(framed);
    });
  }
}

/** What forwarded answers are cached under: the question, and the flags that change answers. */
export function forwardKey(q: Query): string {
  return `${q.type} ${q.class} ${q.name} ${q.cd ? 1 : 0}${q.edns === null ? 0 : 1}${
    q.edns?.dnssecOk ? 1 : 0
  }`;
}

/** An upstream answer matches when it is a response with our id and our question (any case). */
function matches(r: Uint8Array, sent: Uint8Array, questionEnd: number): boolean {
  if (r.length < questionEnd || (r[2]! & FLAG.QR) === 0) return false;
  if (r[0] !== sent[0] || r[1] !== sent[1]) return false;
  if (r[4] !== 0 || r[5] !== 1) return false;
  for (let i = HEADER_BYTES; i < questionEnd; i++) {
    const a = r[i]!;
    const b = sent[i]!;
    if (a !== b && lower(a) !== lower(b)) return false;
  }
  return true;
}

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/** The chunks joined, kept as the one chunk they now are. */
function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = concatBytes(chunks, length);
  chunks.length = 0;
  chunks.push(out);
  return out;
}
