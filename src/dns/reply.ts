/**
 * Turns Replies into response messages. A Reply is encoded once into record bytes (answers own
 * the question's name through a compression pointer, so the client's spelling of the name is
 * echoed) and cached (answer_cache.ts); each query then only orders them and copies them behind
 * a fresh header and the question it sent. A UDP response that does not fit the client's limit
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

/**
 * A Reply in wire form, ready to be laid out per query: every record back to back in one buffer
 * (answers, then authority, then additionals), so a cached answer of a thousand records is two
 * typed arrays, not a thousand.
 */
export interface EncodedReply {
  rcode: number;
  authoritative: boolean;
  records: Uint8Array;
  /** Record i spans records[starts[i], starts[i + 1]); one more entry than records. */
  starts: Uint32Array;
  answerCount: number;
  authorityCount: number;
  additionalCount: number;
  order: Reply["order"];
  /** Round-robin position for `rotate`. */
  next: number;
}

export function encodeReply(r: Reply): EncodedReply {
  const parts = [
    ...r.answers.map((rr) => encodeRr(rr, true)),
    ...r.authority.map((rr) => encodeRr(rr, false)),
    ...r.additionals.map((rr) => encodeRr(rr, false)),
  ];
  const starts = new Uint32Array(parts.length + 1);
  for (let i = 0; i < parts.length; i++) starts[i + 1] = starts[i]! + parts[i]!.length;
  const records = new Uint8Array(starts[parts.length]!);
  parts.forEach((p, i) => records.set(p, starts[i]!));
  return {
    rcode: r.rcode,
    authoritative: r.authoritative,
    records,
    starts,
    answerCount: r.answers.length,
    authorityCount: r.authority.length,
    additionalCount: r.additionals.length,
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
  const n = e.answerCount;
  const { records, starts } = e;
  const order = ordered(e, opts.random);
  const at = (i: number) => order === null ? i : order[i]!;
  const qlen = q.questionEnd - HEADER_BYTES;
  const optLen = q.edns === null ? 0 : OPT_BYTES;
  let size = HEADER_BYTES + qlen + optLen;
  let fits = 0;
  let answersLen = 0;
  for (; fits < n; fits++) {
    const k = at(fits);
    const len = starts[k + 1]! - starts[k]!;
    if (size + answersLen + len > opts.limitBytes) break;
    answersLen += len;
  }
  size += answersLen;
  const total = starts.length - 1;
  const rest = starts[total]! - starts[n]!;
  const truncated = fits < n || size + rest > opts.limitBytes;
  if (!truncated) size += rest;
  const out = new Uint8Array(size);
  header(out, q, e.rcode, e.authoritative, truncated, opts.recursion);
  writeU16(out, 4, 1);
  writeU16(out, 6, fits);
  out.set(q.bytes.subarray(HEADER_BYTES, q.questionEnd), HEADER_BYTES);
  let off = HEADER_BYTES + qlen;
  if (order === null) {
    out.set(records.subarray(0, starts[fits]!), off);
    off += starts[fits]!;
  } else {
    for (let i = 0; i < fits; i++) {
      const k = order[i]!;
      for (let b = starts[k]!; b < starts[k + 1]!; b++) out[off++] = records[b]!;
    }
  }
  if (!truncated) {
    writeU16(out, 8, e.authorityCount);
    out.set(records.subarray(starts[n]!, starts[total]!), off);
    off += rest;
  }
  const additionalCount = (truncated ? 0 : e.additionalCount) + (optLen === 0 ? 0 : 1);
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

/** The order of the answers for one query (indexes), or null for the order they are in. */
function ordered(e: EncodedReply, random: () => number): number[] | null {
  const n = e.answerCount;
  if (n < 2 || e.order === "fixed") return null;
  if (e.order === "rotate") {
    const start = e.next++ % n;
    if (e.next >= n) e.next = 0;
    return start === 0 ? null : Array.from({ length: n }, (_, i) => (start + i) % n);
  }
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}
