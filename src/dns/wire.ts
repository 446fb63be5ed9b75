/**
 * The few pieces of the DNS wire format the hot path needs, written by hand so a query costs a
 * handful of allocations: parsing a query's header, question and OPT record; encoding the record
 * types berth serves; walking a message's records (for the forwarder's cache). Everything else
 * (tests, odd upstream answers) goes through npm `dns-packet`. RFC 1035 §4, RFC 6891 (EDNS0).
 *
 * @module
 */
import { ipBytes } from "../lib/ip_bytes.ts";

export { ipBytes };

/** RR type codes (RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 6891). */
export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;

export const CLASS_IN = 1;
export const CLASS_ANY = 255;

/** Response codes (RFC 1035 §4.1.1, RFC 6891 §9 for BADVERS). */
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;

export const HEADER_BYTES = 12;
/** Longest domain name on the wire (RFC 1035 §2.3.4). */
export const NAME_BYTES_MAX = 255;
/** Longest label (RFC 1035 §2.3.4). */
export const LABEL_BYTES_MAX = 63;
/** Classic UDP payload limit without EDNS0 (RFC 1035 §4.2.1). */
export const UDP_PLAIN_BYTES_MAX = 512;
/** Largest UDP payload berth sends or advertises with EDNS0 (DNS flag day 2020). */
export const EDNS_UDP_BYTES_MAX = 1232;
/** Bytes of an OPT record with no options: root name, type, class, ttl, rdlength. */
export const OPT_BYTES = 11;

/** Header flag bits, first byte (QR, opcode, AA, TC, RD) and second byte (RA, AD, CD). */
export const FLAG = {
  QR: 0x80,
  AA: 0x04,
  TC: 0x02,
  RD: 0x01,
  RA: 0x80,
  AD: 0x20,
  CD: 0x10,
} as const;

/** The question and EDNS state of a parsed query. */
export interface Query {
  /** The whole message as received. */
  bytes: Uint8Array;
  id: number;
  opcode: number;
  /** RD bit as sent (echoed in the reply). */
  rd: boolean;
  /** CD bit as sent (echoed in the reply). */
  cd: boolean;
  /** Lower-cased presentation form with trailing dot; odd bytes escaped as `\DDD`. */
  name: string;
  type: number;
  class: number;
  /** End offset of the question section: bytes[12, questionEnd) is echoed verbatim. */
  questionEnd: number;
  /** null without an OPT record. */
  edns: { udpBytes: number; version: number; dnssecOk: boolean } | null;
}

/** Why a query is answered with an error code instead of a lookup. */
export interface BadQuery {
  id: number;
  opcode: number;
  rd: boolean;
  rcode: number;
}

/** Parses a query. null: drop silently (no usable header, or a response); BadQuery: reply rcode. */
export function parseQuery(b: Uint8Array): Query | BadQuery | null {
  if (b.length < HEADER_BYTES) return null;
  const id = (b[0]! << 8) | b[1]!;
  const f0 = b[2]!;
  if (f0 & FLAG.QR) return null;
  const opcode = (f0 >> 3) & 0x0f;
  const rd = (f0 & FLAG.RD) !== 0;
  const bad = (rcode: number): BadQuery => ({ id, opcode, rd, rcode });
  if (opcode !== 0) return bad(RCODE.NOTIMP);
  const qd = (b[4]! << 8) | b[5]!;
  if (qd !== 1) return bad(RCODE.FORMERR);
  const an = (b[6]! << 8) | b[7]!;
  const ns = (b[8]! << 8) | b[9]!;
  const ar = (b[10]! << 8) | b[11]!;
  const name = readQuestionName(b, HEADER_BYTES);
  if (name === null) return bad(RCODE.FORMERR);
  let off = nameEnd;
  if (off + 4 > b.length) return bad(RCODE.FORMERR);
  const type = (b[off]! << 8) | b[off + 1]!;
  const klass = (b[off + 2]! << 8) | b[off + 3]!;
  off += 4;
  const questionEnd = off;
  let edns: Query["edns"] = null;
  const records = an + ns + ar;
  for (let i = 0; i < records; i++) {
    const start = off;
    off = skipName(b, off);
    if (off < 0 || off + 10 > b.length) return bad(RCODE.FORMERR);
    const rtype = (b[off]! << 8) | b[off + 1]!;
    const rdlen = (b[off + 8]! << 8) | b[off + 9]!;
    if (rtype === TYPE.OPT) {
      // RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root.
      if (i < an + ns || edns !== null || off !== start + 1 || b[start] !== 0) {
        return bad(RCODE.FORMERR);
      }
      edns = {
        udpBytes: (b[off + 2]! << 8) | b[off + 3]!,
        version: b[off + 5]!,
        dnssecOk: (b[off + 6]! & 0x80) !== 0,
      };
    }
    off += 10 + rdlen;
    if (off > b.length) return bad(RCODE.FORMERR);
  }
  return {
    bytes: b,
    id,
    opcode,
    rd,
    cd: (b[3]! & FLAG.CD) !== 0,
    name,
    type,
    class: klass,
    questionEnd,
    edns,
  };
}

/** End offset of the last name read by readQuestionName (saves an allocation per query). */
let nameEnd = 0;

/**
 * Reads an uncompressed name (a question's) at `off` into lower-cased presentation form.
 * Returns null when labels overrun the message, use compression or exceed the length limits.
 */
function readQuestionName(b: Uint8Array, off: number): string | null {
  let out = "";
  let wire = 0;
  for (;;) {
    if (off >= b.length) return null;
    const len = b[off++]!;
    wire += len + 1;
    if (wire > NAME_BYTES_MAX) return null;
    if (len === 0) break;
    if (len > LABEL_BYTES_MAX) return null; // pointers (0xc0) and reserved label types (0x40)
    if (off + len > b.length) return null;
    for (let i = off; i < off + len; i++) {
      const c = b[i]!;
      if (c >= 0x41 && c <= 0x5a) out += String.fromCharCode(c + 32);
      else if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) out += String.fromCharCode(c);
      else out += "\\" + String(c).padStart(3, "0");
    }
    out += ".";
    off += len;
  }
  nameEnd = off;
  return out === "" ? "." : out;
}

/** Offset just past the (possibly compressed) name at `off`, or -1 when it overruns. */
function skipName(b: Uint8Array, off: number): number {
  for (let labels = 0; labels < NAME_BYTES_MAX; labels++) {
    if (off >= b.length) return -1;
    const len = b[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= b.length ? off + 2 : -1;
    if (len > LABEL_BYTES_MAX) return -1;
    off += len + 1;
  }
  return -1;
}

/** Positions of the TTL fields of every record except OPT, and the smallest TTL among them. */
export function recordTtls(
  b: Uint8Array,
  questionEnd: number,
): { offsets: number[]; minTtl: number } | null {
  const count = ((b[6]! << 8) | b[7]!) + ((b[8]! << 8) | b[9]!) + ((b[10]! << 8) | b[11]!);
  const offsets: number[] = [];
  let minTtl = Infinity;
  let off = questionEnd;
  for (let i = 0; i < count; i++) {
    off = skipName(b, off);
    if (off < 0 || off + 10 > b.length) return null;
    const type = (b[off]! << 8) | b[off + 1]!;
    if (type !== TYPE.OPT) {
      offsets.push(off + 4);
      minTtl = Math.min(minTtl, readU32(b, off + 4));
    }
    off += 10 + ((b[off + 8]! << 8) | b[off + 9]!);
    if (off > b.length) return null;
  }
  return { offsets, minTtl };
}

/** End of the question section of a message with one question, or -1. */
export function questionEndOf(b: Uint8Array): number {
  if (b.length < HEADER_BYTES) return -1;
  const qd = (b[4]! << 8) | b[5]!;
  let off = HEADER_BYTES;
  for (let i = 0; i < qd; i++) {
    off = skipName(b, off);
    if (off < 0 || off + 4 > b.length) return -1;
    off += 4;
  }
  return off;
}

function readU32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) >>> 0) + ((b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!);
}

export function writeU16(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 8;
  b[off + 1] = v & 0xff;
}

export function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

// ---- encoding the records berth serves ----

/** A record berth answers with; `name` and name-valued data are presentation form. */
export type Rr =
  | { name: string; type: "A" | "AAAA"; ttl: number; data: string }
  | { name: string; type: "NS" | "CNAME" | "PTR"; ttl: number; data: string }
  /** Each string at most TXT_STRING_BYTES_MAX bytes (txtStrings() splits longer text). */
  | { name: string; type: "TXT"; ttl: number; data: readonly string[] }
  | {
    name: string;
    type: "SRV";
    ttl: number;
    data: { priority: number; weight: number; port: number; target: string };
  }
  | {
    name: string;
    type: "SOA";
    ttl: number;
    data: {
      mname: string;
      rname: string;
      serial: number;
      refresh: number;
      retry: number;
      expire: number;
      minimum: number;
    };
  };

/** Longest character-string in a TXT record (RFC 1035 §3.3: one length byte). */
export const TXT_STRING_BYTES_MAX = 255;

/** Splits text into TXT character-strings of at most TXT_STRING_BYTES_MAX UTF-8 bytes each. */
export function txtStrings(text: string): string[] {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= TXT_STRING_BYTES_MAX) return [text];
  const out: string[] = [];
  const decoder = new TextDecoder();
  for (let i = 0; i < bytes.length;) {
    let end = Math.min(i + TXT_STRING_BYTES_MAX, bytes.length);
    while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80) end--; // keep characters whole
    out.push(decoder.decode(bytes.subarray(i, end)));
    i = end;
  }
  return out;
}

/** Wire form of a name (no compression). Labels longer than 63 bytes are cut. */
function encodeName(name: string): Uint8Array {
  const labels = name.split(".").filter((l) => l !== "");
  const parts = labels.map((l) => new TextEncoder().encode(l).subarray(0, LABEL_BYTES_MAX));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 1));
  let off = 0;
  for (const p of parts) {
    out[off++] = p.length;
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Encodes one record. With `ownerPointer`, the owner name is written as a compression pointer
 * to offset 12 (the question's name), which every answer berth gives shares (RFC 1035 §4.1.4).
 */
export function encodeRr(rr: Rr, ownerPointer: boolean): Uint8Array {
  const owner = ownerPointer ? Uint8Array.of(0xc0, HEADER_BYTES) : encodeName(rr.name);
  let rdata: Uint8Array;
  switch (rr.type) {
    case "A":
    case "AAAA": {
      const ip = ipBytes(rr.data);
      if (ip === null || (ip.length === 4) !== (rr.type === "A")) {
        throw new Error(`${rr.type} record for ${rr.name}: bad address ${rr.data}`);
      }
      rdata = ip;
      break;
    }
    case "NS":
    case "CNAME":
    case "PTR":
      rdata = encodeName(rr.data);
      break;
    case "TXT": {
      const strings = rr.data.map((t) => new TextEncoder().encode(t));
      rdata = new Uint8Array(strings.reduce((n, t) => n + 1 + t.length, 0));
      let o = 0;
      for (const t of strings) {
        if (t.length > TXT_STRING_BYTES_MAX) {
          throw new Error(`TXT record for ${rr.name}: a string of ${t.length} bytes`);
        }
        rdata[o++] = t.length;
        rdata.set(t, o);
        o += t.length;
      }
      break;
    }
    case "SRV": {
      const target = encodeName(rr.data.target);
      rdata = new Uint8Array(6 + target.length);
      writeU16(rdata, 0, rr.data.priority);
      writeU16(rdata, 2, rr.data.weight);
      writeU16(rdata, 4, rr.data.port);
      rdata.set(target, 6);
      break;
    }
    case "SOA": {
      const m = encodeName(rr.data.mname);
      const r = encodeName(rr.data.rname);
      rdata = new Uint8Array(m.length + r.length + 20);
      rdata.set(m, 0);
      rdata.set(r, m.length);
      const d = rr.data;
      const o = m.length + r.length;
      [d.serial, d.refresh, d.retry, d.expire, d.minimum].forEach((v, i) =>
        writeU32(rdata, o + i * 4, v >>> 0)
      );
      break;
    }
  }
  const out = new Uint8Array(owner.length + 10 + rdata.length);
  out.set(owner, 0);
  let off = owner.length;
  writeU16(out, off, TYPE[rr.type]);
  writeU16(out, off + 2, CLASS_IN);
  writeU32(out, off + 4, rr.ttl >>> 0);
  writeU16(out, off + 8, rdata.length);
  off += 10;
  out.set(rdata, off);
  return out;
}

/** An OPT record advertising `udpBytes`, with the upper bits of an extended rcode. */
export function encodeOpt(udpBytes: number, extendedRcode = 0): Uint8Array {
  const out = new Uint8Array(OPT_BYTES);
  writeU16(out, 1, TYPE.OPT);
  writeU16(out, 3, udpBytes);
  out[5] = extendedRcode >> 4;
  return out;
}
