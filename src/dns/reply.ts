/**
 * Turns Replies into response messages. A Reply is encoded once per zone version into record
 * byte strings (answers own the question's name through a compression pointer, so the client's
 * spelling of the name is echoed); each query then only orders them and copies them behind a
 * fresh header and the question it sent. A UDP response that does not fit the client's limit
 * carries the answers that fit, whole, and sets TC (never a silent cut).
 *
 * @module
 */
import type { Reply } from "./resolve.ts";
import {
  EDNS_UDP_BYTES_MAX,
  encodeOpt,
  encodeRr,
  FLAG,
  HEADER_BYTES,
  OPT_BYTES,
  type Query,
  UDP_PLAIN_BYTES_MAX,
  writeU16,
} from "./wire.ts";

/** Largest DNS message (TCP, 2-byte length). */
export const MESSAGE_BYTES_MAX = 65_535;

/** A Reply in wire pieces, ready to be laid out per query. */
export interface EncodedReply {
  rcode: number;
  authoritative: boolean;
  answers: Uint8Array[];
  authority: Uint8Array[];
  additionals: Uint8Array[];
  order: Reply["order"];
  /** Round-robin position for `rotate`. */
  next: number;
}

export function encodeReply(r: Reply): EncodedReply {
  return {
    rcode: r.rcode,
    authoritative: r.authoritative,
    answers: r.answers.map((rr) => encodeRr(rr, true)),
    authority: r.authority.map((rr) => encodeRr(rr, false)),
    additionals: r.additionals.map((rr) => encodeRr(rr, false)),
    order: r.order,
    next: 0,
  };
}

/** Largest response a query may get: 512 over plain UDP, its EDNS0 size (capped), 64 KiB on TCP. */
export function responseLimit(q: Query, tcp: boolean): number {
  if (tcp) return MESSAGE_BYTES_MAX;
  if (q.edns === null) return UDP_PLAIN_BYTES_MAX;
  return Math.min(Math.max(q.edns.udpBytes, UDP_PLAIN_BYTES_MAX), EDNS_UDP_BYTES_MAX);
}

export interface WriteOptions {
  limitBytes: number;
  /** Whether recursion is available (recursors configured): the RA bit. */
  recursion: boolean;
  /** [0, 1) source for shuffling. */
  random: () => number;
}

/** Lays out a response to `q` from an encoded reply. */
export function writeResponse(q: Query, e: EncodedReply, opts: WriteOptions): Uint8Array {
  const answers = ordered(e, opts.random);
  const qlen = q.questionEnd - HEADER_BYTES;
  const optLen = q.edns === null ? 0 : OPT_BYTES;
  let size = HEADER_BYTES + qlen + optLen;
  let fits = 0;
  let answersLen = 0;
  for (const a of answers) {
    if (size + answersLen + a.length > opts.limitBytes) break;
    answersLen += a.length;
    fits++;
  }
  size += answersLen;
  let rest = 0;
  for (const r of e.authority) rest += r.length;
  for (const r of e.additionals) rest += r.length;
  const truncated = fits < answers.length || size + rest > opts.limitBytes;
  if (!truncated) size += rest;
  const out = new Uint8Array(size);
  header(out, q, e.rcode, e.authoritative, truncated, opts.recursion);
  writeU16(out, 4, 1);
  writeU16(out, 6, fits);
  out.set(q.bytes.subarray(HEADER_BYTES, q.questionEnd), HEADER_BYTES);
  let off = HEADER_BYTES + qlen;
  for (let i = 0; i < fits; i++) {
    out.set(answers[i]!, off);
    off += answers[i]!.length;
  }
  if (!truncated) {
    writeU16(out, 8, e.authority.length);
    for (const r of e.authority) {
      out.set(r, off);
      off += r.length;
    }
    for (const r of e.additionals) {
      out.set(r, off);
      off += r.length;
    }
  }
  const additionalCount = (truncated ? 0 : e.additionals.length) + (optLen === 0 ? 0 : 1);
  writeU16(out, 10, additionalCount);
  if (optLen !== 0) out.set(encodeOpt(EDNS_UDP_BYTES_MAX), off);
  return out;
}

/** A response with no records: an error rcode (question echoed when `q` is a full Query). */
export function errorResponse(
  q: Query | { id: number; opcode: number; rd: boolean },
  rcode: number,
  opts: { recursion: boolean; truncated?: boolean },
): Uint8Array {
  const full = "questionEnd" in q ? q : null;
  const qlen = full === null ? 0 : full.questionEnd - HEADER_BYTES;
  const edns = full !== null && full.edns !== null;
  const out = new Uint8Array(HEADER_BYTES + qlen + (edns ? OPT_BYTES : 0));
  header(out, q, rcode & 0x0f, false, opts.truncated ?? false, opts.recursion);
  if (full !== null) {
    writeU16(out, 4, 1);
    out.set(full.bytes.subarray(HEADER_BYTES, full.questionEnd), HEADER_BYTES);
  }
  if (edns) {
    writeU16(out, 10, 1);
    out.set(encodeOpt(EDNS_UDP_BYTES_MAX, rcode), HEADER_BYTES + qlen);
  }
  return out;
}

/** Fits a forwarded response to the client's limit: as is, or TC with no records. */
export function fitResponse(q: Query, response: Uint8Array, limitBytes: number): Uint8Array {
  if (response.length <= limitBytes) return response;
  return errorResponse(q, response[3]! & 0x0f, {
    recursion: (response[3]! & FLAG.RA) !== 0,
    truncated: true,
  });
}

function header(
  out: Uint8Array,
  q: { id: number; opcode: number; rd: boolean; cd?: boolean },
  rcode: number,
  aa: boolean,
  tc: boolean,
  ra: boolean,
): void {
  writeU16(out, 0, q.id);
  out[2] = FLAG.QR | (q.opcode << 3) | (aa ? FLAG.AA : 0) | (tc ? FLAG.TC : 0) |
    (q.rd ? FLAG.RD : 0);
  out[3] = (ra ? FLAG.RA : 0) | (q.cd ? FLAG.CD : 0) | (rcode & 0x0f);
}

function ordered(e: EncodedReply, random: () => number): readonly Uint8Array[] {
  const n = e.answers.length;
  if (n < 2 || e.order === "fixed") return e.answers;
  if (e.order === "rotate") {
    const start = e.next++ % n;
    if (e.next >= n) e.next = 0;
    return start === 0 ? e.answers : [...e.answers.slice(start), ...e.answers.slice(0, start)];
  }
  const out = e.answers.slice();
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}
