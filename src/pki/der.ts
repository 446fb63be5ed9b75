/**
 * The slice of ASN.1 DER (ITU-T X.690 §8, §10) that X.509 certificates need: an encoder for the
 * types a TBSCertificate is built from, and a reader that walks tag-length-value elements (to
 * take the subject, public key and extensions back out of a certificate). A leaf module.
 *
 * Every encoder returns the complete element (tag, length, content) as a new array; `derSequence`
 * and friends take already-encoded elements.
 *
 * @module
 */
import { concatBytes } from "../lib/bytes.ts";

/** Universal tags (X.680 §8.4) and the class/constructed bits of an identifier octet. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
  CONTEXT: 0x80,
  CONSTRUCTED: 0x20,
} as const;

/** The length octets: short form below 128, else 0x80|count followed by big-endian bytes. */
export function derLength(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`DER length ${n} is not a count`);
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One element: identifier octet `tag`, the length, then `content`. */
export function derTlv(tag: number, content: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.of(tag), derLength(content.length), content]);
}

/** BOOLEAN: 0xff for true (DER §11.1). */
export function derBoolean(v: boolean): Uint8Array {
  return derTlv(TAG.BOOLEAN, Uint8Array.of(v ? 0xff : 0x00));
}

/**
 * INTEGER from a non-negative number or bigint, or from unsigned big-endian bytes (a serial):
 * minimal two's complement, so leading zero bytes go and a 0x00 comes first when the top bit is
 * set (0x80 → 02 02 00 80).
 */
export function derInteger(v: number | bigint | Uint8Array): Uint8Array {
  let bytes: number[];
  if (v instanceof Uint8Array) {
    bytes = [...v];
  } else {
    let big = BigInt(v);
    if (big < 0n) throw new Error(`DER INTEGER ${v}: negative values are not supported`);
    bytes = [];
    for (; big > 0n; big >>= 8n) bytes.unshift(Number(big & 0xffn));
  }
  while (bytes.length > 0 && bytes[0] === 0) bytes.shift();
  if (bytes.length === 0 || bytes[0]! >= 0x80) bytes.unshift(0);
  return derTlv(TAG.INTEGER, Uint8Array.from(bytes));
}

/** BIT STRING whose first content octet says how many bits of the last byte are unused. */
export function derBitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  if (unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) {
    throw new Error(`DER BIT STRING: ${unusedBits} unused bits of ${bytes.length} bytes`);
  }
  return derTlv(TAG.BIT_STRING, concatBytes([Uint8Array.of(unusedBits), bytes]));
}

/**
 * A named bit list (X.690 §11.2.2: trailing zero bits dropped), e.g. keyUsage: bit 0 is the top
 * bit of the first byte.
 */
export function derNamedBits(bits: readonly number[]): Uint8Array {
  if (bits.length === 0) return derBitString(new Uint8Array(0));
  const last = Math.max(...bits);
  const bytes = new Uint8Array(Math.floor(last / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return derBitString(bytes, 7 - (last & 7));
}

/** OCTET STRING. */
export function derOctetString(bytes: Uint8Array): Uint8Array {
  return derTlv(TAG.OCTET_STRING, bytes);
}

/** NULL (05 00). */
export function derNull(): Uint8Array {
  return Uint8Array.of(TAG.NULL, 0);
}

/** OBJECT IDENTIFIER from dotted text: first two arcs as 40·a+b, each arc base 128. */
export function derOid(dotted: string): Uint8Array {
  if (!/^[0-2]\.\d+(\.\d+)*$/.test(dotted)) throw new Error(`OID ${JSON.stringify(dotted)}`);
  const arcs = dotted.split(".").map(BigInt);
  if (arcs[0]! < 2n && arcs[1]! > 39n) throw new Error(`OID ${dotted}: second arc above 39`);
  const out: number[] = [];
  for (const arc of [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)]) {
    const group = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) group.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...group);
  }
  return derTlv(TAG.OID, Uint8Array.from(out));
}

/** Dotted text of an OBJECT IDENTIFIER's content octets (the inverse of `derOid`). */
export function oidText(content: Uint8Array): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const b of content) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs.shift() ?? 0n;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs].join(".");
}

/** UTF8String. */
export function derUtf8String(s: string): Uint8Array {
  return derTlv(TAG.UTF8_STRING, new TextEncoder().encode(s));
}

/** PrintableString: letters, digits, space and `'()+,-./:=?` only (X.680 §41.4). */
export function derPrintableString(s: string): Uint8Array {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s)) {
    throw new Error(`${JSON.stringify(s)} is not a PrintableString`);
  }
  return derTlv(TAG.PRINTABLE_STRING, new TextEncoder().encode(s));
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** UTCTime `YYMMDDHHMMSSZ` (seconds, UTC); years 1950 to 2049 only. */
export function derUtcTime(d: Date): Uint8Array {
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 2049) throw new Error(`UTCTime cannot hold the year ${y}`);
  return derTlv(TAG.UTC_TIME, new TextEncoder().encode(pad(y % 100) + clock(d)));
}

/** GeneralizedTime `YYYYMMDDHHMMSSZ` (seconds, UTC, no fraction: DER §11.7). */
export function derGeneralizedTime(d: Date): Uint8Array {
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) throw new Error(`GeneralizedTime cannot hold the year ${y}`);
  return derTlv(TAG.GENERALIZED_TIME, new TextEncoder().encode(pad(y, 4) + clock(d)));
}

/** The X.509 Time choice (RFC 5280 §4.1.2.5): UTCTime for 1950 to 2049, else GeneralizedTime. */
export function derTime(d: Date): Uint8Array {
  if (Number.isNaN(d.getTime())) throw new Error("invalid date");
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? derUtcTime(d) : derGeneralizedTime(d);
}

function clock(d: Date): string {
  return pad(d.getUTCMonth() + 1) + pad(d.getUTCDate()) + pad(d.getUTCHours()) +
    pad(d.getUTCMinutes()) + pad(d.getUTCSeconds()) + "Z";
}

/** SEQUENCE of already-encoded elements. */
export function derSequence(...items: Uint8Array[]): Uint8Array {
  return derTlv(TAG.SEQUENCE, concatBytes(items));
}

/** SET OF already-encoded elements, sorted by their encodings as DER requires (§11.6). */
export function derSet(...items: Uint8Array[]): Uint8Array {
  const sorted = [...items].sort(compareBytes);
  return derTlv(TAG.SET, concatBytes(sorted));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/**
 * Context-specific tag `[n]`. `explicit` wraps a complete element (constructed, e.g. the
 * version `[0]`, extensions `[3]`); otherwise `content` is an IMPLICIT primitive value's content
 * octets (e.g. a dNSName `[2]`, a keyIdentifier `[0]`).
 */
export function derContext(n: number, content: Uint8Array, explicit: boolean): Uint8Array {
  if (n < 0 || n > 30) throw new Error(`context tag [${n}] needs the high-tag-number form`);
  return derTlv(TAG.CONTEXT | (explicit ? TAG.CONSTRUCTED : 0) | n, content);
}

/** One element found by `readTlv`: its identifier octet and where it lies in the input. */
export interface Tlv {
  tag: number;
  /** Offset of the identifier octet. */
  start: number;
  /** Offset of the first content octet. */
  contentStart: number;
  /** Offset just past the element. */
  end: number;
}

/**
 * The element at `offset` of `b` (low-tag-number form, definite lengths only: DER). Throws
 * "malformed DER …" when the bytes do not hold a whole element there.
 */
export function readTlv(b: Uint8Array, offset: number, limit = b.length): Tlv {
  const fail = (why: string): never => {
    throw new Error(`malformed DER at byte ${offset}: ${why}`);
  };
  if (offset + 2 > limit) fail("truncated");
  const tag = b[offset]!;
  if ((tag & 0x1f) === 0x1f) fail("high tag numbers are not supported");
  let len = b[offset + 1]!;
  let contentStart = offset + 2;
  if (len >= 0x80) {
    const count = len & 0x7f;
    if (count === 0 || count > 4) fail(`length of ${count} bytes`);
    if (contentStart + count > limit) fail("truncated length");
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + b[contentStart + i]!;
    contentStart += count;
  }
  const end = contentStart + len;
  if (end > limit) fail("element runs past its container");
  return { tag, start: offset, contentStart, end };
}

/** The elements directly inside a constructed element, in order. */
export function readChildren(b: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = parent.contentStart; off < parent.end;) {
    const t = readTlv(b, off, parent.end);
    out.push(t);
    off = t.end;
  }
  return out;
}
