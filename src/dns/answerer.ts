/**
 * Answerer: one DNS message in, the response bytes out, from a zone held in memory. Shared by the
 * single-thread DnsServer (server.ts) and each DNS worker thread (workers/): the zone and the
 * way names outside it are forwarded are the caller's; parsing, the answer cache, EDNS limits,
 * truncation and error codes are here, in one place. Nothing a client sends can throw out of
 * `answer()`.
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import { AnswerCache } from "./answer_cache.ts";
import {
  type EncodedReply,
  encodeReply,
  errorResponse,
  fitResponse,
  responseLimit,
} from "./reply.ts";
import { wireResponse } from "./wire_answer.ts";
import { type Reply, resolveAnswer } from "./resolve.ts";
import { type BadQuery, parseQuery, type Query, RCODE } from "./wire.ts";
import { DnsCounts, QTYPE_NONE, qtypeIndex, RCODE_BADVERS, rcodeIndexOf } from "./dns_metrics.ts";
import type { Zone } from "./zone.ts";

/**
 * Forwards a query outside the zone: the upstream response (q's id), or null for SERVFAIL; at
 * once when it is cached, else a promise.
 */
export type Forward = (q: Query) => Uint8Array | null | Promise<Uint8Array | null>;

export interface AnswererOptions {
  /** The zone answering now (read per question: a rebuild replaces it). */
  zone: () => Zone;
  /** How other names are answered; null: REFUSED, and no RA bit. */
  forward: Forward | null;
  /** [0, 1) randomness for answer shuffling (default Math.random). */
  random?: () => number;
}

export class Answerer {
  readonly #zone: () => Zone;
  #forward: Forward | null;
  readonly #random: () => number;
  readonly #encoded = new WeakMap<Reply, EncodedReply>();
  readonly #answers = new AnswerCache();
  #cached = 0;
  #built = 0;
  /** Queries answered by rcode and type, and dropped (dns_metrics.ts; `/metrics`). */
  readonly queries = new DnsCounts();

  constructor(opts: AnswererOptions) {
    this.#zone = opts.zone;
    this.#forward = opts.forward;
    this.#random = opts.random ?? Math.random;
  }

  /** Zone answers taken from the answer cache and built afresh so far (tests, benchmarks). */
  get counts(): { cached: number; built: number } {
    return { cached: this.#cached, built: this.#built };
  }

  /** How other names are answered from now on (new recursors after a reload); null: REFUSED. */
  setForward(forward: Forward | null): void {
    this.#forward = forward;
  }

  /** Drops the cached answers built from `deps`; null: every one (a new zone took over). */
  invalidate(deps: ReadonlySet<string> | null): void {
    if (deps === null) this.#answers.clear();
    else this.#answers.invalidate(deps);
  }

  /**
   * Answers one message: the response bytes, a promise of them (forwarded), or null to drop.
   * Never throws.
   */
  answer(bytes: Uint8Array, tcp: boolean): Uint8Array | Promise<Uint8Array | null> | null {
    let q: ReturnType<typeof parseQuery>;
    try {
      q = parseQuery(bytes);
    } catch {
      q = null;
    }
    if (q === null) {
      this.queries.dropped();
      return null;
    }
    const out = this.#answer(q, tcp);
    const qtype = "name" in q ? qtypeIndex(q.type) : QTYPE_NONE;
    // BADVERS is an extended rcode: the header keeps only its low bits (0).
    const badvers = "name" in q && q.edns !== null && q.edns.version > 0;
    if (out instanceof Promise) return out.then((r) => this.#count(r, qtype, badvers));
    return this.#count(out, qtype, badvers);
  }

  #count(out: Uint8Array | null, qtype: number, badvers: boolean): Uint8Array | null {
    if (out === null) this.queries.dropped();
    else this.queries.answered(badvers ? RCODE_BADVERS : rcodeIndexOf(out), qtype);
    return out;
  }

  #answer(q: Query | BadQuery, tcp: boolean): Uint8Array | Promise<Uint8Array | null> {
    const recursion = this.#forward !== null;
    if (!("name" in q)) return errorResponse(q, q.rcode, { recursion });
    try {
      if (q.edns !== null && q.edns.version > 0) {
        return errorResponse(q, RCODE.BADVERS, { recursion });
      }
      const limitBytes = responseLimit(q, tcp);
      const key = `${q.type} ${q.name}`;
      let encoded = q.class === 1 ? this.#answers.get(key) : undefined;
      if (encoded !== undefined) this.#cached++;
      else {
        this.#built++;
        const answer = resolveAnswer(this.#zone(), q, q.class);
        if (answer !== null) {
          const { reply, depends } = answer;
          encoded = this.#encoded.get(reply) ?? encodeReply(reply);
          if (reply.rcode === RCODE.NOERROR && q.class === 1) {
            this.#answers.set(key, encoded, depends);
          } else this.#encoded.set(reply, encoded);
        }
      }
      if (encoded !== undefined) {
        return wireResponse(q, encoded, { limitBytes, recursion, random: this.#random });
      }
      if (this.#forward === null) return errorResponse(q, RCODE.REFUSED, { recursion });
      return this.#forwarded(this.#forward, q, limitBytes);
    } catch (e) {
      console.error(`dns: failed to answer ${q.name}: ${errorText(e)}`);
      return errorResponse(q, RCODE.SERVFAIL, { recursion });
    }
  }

  #forwarded(
    forward: Forward,
    q: Query,
    limitBytes: number,
  ): Uint8Array | Promise<Uint8Array | null> {
    const done = (r: Uint8Array | null) =>
      r === null
        ? errorResponse(q, RCODE.SERVFAIL, { recursion: true })
        : fitResponse(q, r, limitBytes);
    const failed = (e: unknown) => {
      console.error(`dns: forwarding ${q.name} failed: ${errorText(e)}`);
      return errorResponse(q, RCODE.SERVFAIL, { recursion: true });
    };
    try {
      const r = forward(q);
      return r instanceof Promise ? r.then(done, failed) : done(r);
    } catch (e) {
      return failed(e);
    }
  }
}
