/**
 * Precomputed wire answers: the whole response to one form of a question (its EDNS size, the
 * RD/CD bits and the client's spelling of the name) laid out once, so that answering the next
 * such query is one copy, the ID written in, and the answers put in a fresh order on the wire.
 * Kept on the EncodedReply (and so dropped with it when the answer cache drops it), at most
 * WIRE_FORMS_MAX forms each and WIRE_BYTES_MAX bytes in all.
 *
 * Answers in a fixed order (node, PTR, negative answers) are copied as they are. Reordering on
 * the wire needs answer records of one length (A, AAAA, and SRV records whose
 * targets are `.addr.` names: the common answers): records are then swapped as fixed-size
 * chunks; the records own the question's name by a pointer to offset 12, so moving them
 * changes nothing else. Other answers are laid out per query by writeResponse().
 *
 * @module
 */
import { ByteSlab } from "../lib/slab.ts";
import { type EncodedReply, type WriteOptions, writeResponse } from "./reply.ts";
import { HEADER_BYTES, type Query } from "./wire.ts";

/** Forms (EDNS size, flags, name spelling) of one answer kept laid out. */
export const WIRE_FORMS_MAX = 8;
/**
 * Most bytes of laid-out forms held by one thread; past it answers are laid out per query
 * until the garbage collector frees forms of answers the cache dropped.
 */
export const WIRE_BYTES_MAX = 8 * 1024 * 1024;

interface WireForm {
  bytes: Uint8Array;
  /** The question section as the client spelled it (bytes 12..questionEnd). */
  question: Uint8Array;
  /** Offset of the first answer record. */
  answersAt: number;
  /** Answer records in the message (the ones that fit). */
  answers: number;
  /** Length of every answer record. */
  recordBytes: number;
}

/** Where per-query responses are copied to (src/lib/slab.ts: a fresh array costs ~1 µs). */
const slab = new ByteSlab();

interface Forms {
  byKey: Map<number, WireForm>;
  /** Bytes of the forms held (counted in `held` until the reply is collected). */
  bytes: number;
}

const forms = new WeakMap<EncodedReply, Forms>();
/** Bytes of forms held by replies not yet collected. */
let held = 0;
const collected = new FinalizationRegistry<Forms>((f) => held -= f.bytes);

/** Bytes of laid-out forms held now (tests). */
export function wireBytesHeld(): number {
  return held;
}

/**
 * The response to `q` from `e`, as writeResponse() lays it out (same bytes, answers in a fresh
 * order per the reply's `order`).
 */
export function wireResponse(q: Query, e: EncodedReply, opts: WriteOptions): Uint8Array {
  const recordBytes = answerBytes(e);
  if (recordBytes === 0) return writeResponse(q, e, opts);
  const key = (opts.limitBytes << 5) | (opts.recursion ? 16 : 0) | (q.edns === null ? 0 : 8) |
    (q.edns?.dnssecOk ? 4 : 0) | (q.rd ? 2 : 0) | (q.cd ? 1 : 0);
  let f = forms.get(e);
  if (f === undefined) {
    forms.set(e, f = { byKey: new Map(), bytes: 0 });
    collected.register(e, f);
  }
  let form = f.byKey.get(key);
  if (form === undefined || !sameQuestion(form.question, q)) {
    if (form !== undefined) drop(f, key, form);
    if (held + e.records.length + q.questionEnd + 64 > WIRE_BYTES_MAX) {
      return writeResponse(q, e, opts);
    }
    form = layOut(q, e, opts, recordBytes);
    if (f.byKey.size >= WIRE_FORMS_MAX) {
      const [oldest, old] = f.byKey.entries().next().value!;
      drop(f, oldest, old);
    }
    f.byKey.set(key, form);
    const bytes = form.bytes.length + form.question.length;
    f.bytes += bytes;
    held += bytes;
  }
  const out = slab.copy(form.bytes);
  out[0] = q.id >>> 8;
  out[1] = q.id & 0xff;
  if (recordBytes > 0) reorder(out, form, e, opts.random);
  return out;
}

function drop(f: Forms, key: number, form: WireForm): void {
  f.byKey.delete(key);
  const bytes = form.bytes.length + form.question.length;
  f.bytes -= bytes;
  held -= bytes;
}

/**
 * The one length of every answer record (they are reordered per query), -1 when the answers
 * keep their order (fixed, or fewer than two), 0 when their lengths differ (no precomputed form).
 */
function answerBytes(e: EncodedReply): number {
  const n = e.answerCount;
  if (n < 2 || e.order === "fixed") return -1;
  const len = e.starts[1]! - e.starts[0]!;
  for (let i = 1; i < n; i++) if (e.starts[i + 1]! - e.starts[i]! !== len) return 0;
  return len;
}

function layOut(q: Query, e: EncodedReply, opts: WriteOptions, recordBytes: number): WireForm {
  // (recordBytes -1: the answers keep their order; the form is copied as it is.)
  // writeResponse with its order fixed: the records as encoded.
  const bytes = writeResponse(q, { ...e, order: "fixed" }, opts);
  return {
    bytes,
    question: q.bytes.slice(HEADER_BYTES, q.questionEnd),
    answersAt: q.questionEnd,
    answers: (bytes[6]! << 8) | bytes[7]!,
    recordBytes,
  };
}

function sameQuestion(question: Uint8Array, q: Query): boolean {
  if (question.length !== q.questionEnd - HEADER_BYTES) return false;
  const b = q.bytes;
  for (let i = 0; i < question.length; i++) if (question[i] !== b[HEADER_BYTES + i]) return false;
  return true;
}

/**
 * Puts the answers that fit in a fresh order: shuffled, or rotated by the reply's round-robin
 * position (over all answers, as writeResponse does).
 */
function reorder(out: Uint8Array, f: WireForm, e: EncodedReply, random: () => number): void {
  const { answersAt: at, recordBytes: size } = f;
  if (e.order === "rotate") {
    const n = e.answerCount;
    const start = e.next++ % n;
    if (e.next >= n) e.next = 0;
    if (start === 0) return;
    // Record i of the message is record (start + i) % n of the reply, as encoded.
    for (let i = 0; i < f.answers; i++) {
      const from = e.starts[(start + i) % n]!;
      out.set(e.records.subarray(from, from + size), at + i * size);
    }
    return;
  }
  // Fisher-Yates over the records that fit; a truncated answer keeps its count, not its choice
  // (every record has one length, so which ones fit does not depend on the order).
  const n = f.answers;
  if (n < e.answerCount) {
    shuffleAll(out, f, e, random);
    return;
  }
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    if (j !== i) swap(out, at + i * size, at + j * size, size);
  }
}

/** A truncated answer: `answers` records drawn at random from all of the reply's. */
function shuffleAll(out: Uint8Array, f: WireForm, e: EncodedReply, random: () => number): void {
  const n = e.answerCount;
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  for (let i = 0; i < f.answers; i++) {
    const from = e.starts[order[i]!]!;
    out.set(e.records.subarray(from, from + f.recordBytes), f.answersAt + i * f.recordBytes);
  }
}

function swap(b: Uint8Array, x: number, y: number, size: number): void {
  for (let k = 0; k < size; k++) {
    const t = b[x + k]!;
    b[x + k] = b[y + k]!;
    b[y + k] = t;
  }
}
