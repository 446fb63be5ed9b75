import assert from "node:assert/strict";
import {
  derBitString,
  derBoolean,
  derContext,
  derGeneralizedTime,
  derInteger,
  derLength,
  derNamedBits,
  derNull,
  derOctetString,
  derOid,
  derPrintableString,
  derSequence,
  derSet,
  derTime,
  derUtcTime,
  derUtf8String,
  oidText,
  readChildren,
  readTlv,
} from "./der.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

Deno.test("derInteger() encodes minimal two's complement with a 0x00 before a set top bit", () => {
  assert.equal(hex(derInteger(0)), "02 01 00");
  assert.equal(hex(derInteger(1)), "02 01 01");
  assert.equal(hex(derInteger(127)), "02 01 7f");
  assert.equal(hex(derInteger(0x80)), "02 02 00 80");
  assert.equal(hex(derInteger(256)), "02 02 01 00");
  assert.equal(hex(derInteger(0x8000n)), "02 03 00 80 00");
  assert.equal(hex(derInteger(Uint8Array.of(0, 0, 0x7f, 1))), "02 02 7f 01", "leading zeros go");
  assert.equal(hex(derInteger(Uint8Array.of(0xff))), "02 02 00 ff");
  assert.equal(hex(derInteger(new Uint8Array(0))), "02 01 00");
  assert.throws(() => derInteger(-1), /negative/);
});

Deno.test("derLength() uses the short form below 128 and the long form from 128", () => {
  assert.equal(hex(derLength(0)), "00");
  assert.equal(hex(derLength(127)), "7f");
  assert.equal(hex(derLength(128)), "81 80");
  assert.equal(hex(derLength(255)), "81 ff");
  assert.equal(hex(derLength(256)), "82 01 00");
  assert.equal(hex(derLength(65536)), "83 01 00 00");
  assert.throws(() => derLength(-1), /not a count/);
});

Deno.test("derOctetString() of 127, 128 and 256 bytes carries the right length octets", () => {
  assert.equal(hex(derOctetString(new Uint8Array(127)).subarray(0, 2)), "04 7f");
  assert.equal(hex(derOctetString(new Uint8Array(128)).subarray(0, 3)), "04 81 80");
  assert.equal(derOctetString(new Uint8Array(128)).length, 131);
  assert.equal(hex(derOctetString(new Uint8Array(256)).subarray(0, 4)), "04 82 01 00");
  assert.equal(derOctetString(new Uint8Array(256)).length, 260);
});

Deno.test("derOid() encodes known object identifiers", () => {
  assert.equal(hex(derOid("1.2.840.10045.2.1")), "06 07 2a 86 48 ce 3d 02 01");
  assert.equal(hex(derOid("1.2.840.10045.4.3.2")), "06 08 2a 86 48 ce 3d 04 03 02");
  assert.equal(hex(derOid("2.5.4.3")), "06 03 55 04 03");
  assert.equal(hex(derOid("1.3.6.1.5.5.7.3.1")), "06 08 2b 06 01 05 05 07 03 01");
  assert.equal(hex(derOid("2.999.3")), "06 03 88 37 03", "X.690 §8.19.5 example");
  assert.throws(() => derOid("1.40.1"), /second arc/);
  assert.throws(() => derOid("3.1"), /OID/);
  assert.throws(() => derOid("1..2"), /OID/);
});

Deno.test("oidText() reads back what derOid() wrote", () => {
  for (const oid of ["1.2.840.10045.2.1", "2.5.29.17", "2.999.3", "0.9.2342.19200300.100.1.25"]) {
    const der = derOid(oid);
    assert.equal(oidText(der.subarray(2)), oid);
  }
});

Deno.test("derNull(), derBoolean() and string types encode their tags and bytes", () => {
  assert.equal(hex(derNull()), "05 00");
  assert.equal(hex(derBoolean(true)), "01 01 ff");
  assert.equal(hex(derBoolean(false)), "01 01 00");
  assert.equal(hex(derUtf8String("é")), "0c 02 c3 a9");
  assert.equal(hex(derPrintableString("berth")), "13 05 62 65 72 74 68");
  assert.throws(() => derPrintableString("a@b"), /not a PrintableString/);
});

Deno.test("derBitString() and derNamedBits() count unused bits (keyUsage examples)", () => {
  assert.equal(hex(derBitString(Uint8Array.of(0xab))), "03 02 00 ab");
  assert.equal(hex(derNamedBits([0])), "03 02 07 80", "digitalSignature");
  assert.equal(hex(derNamedBits([5, 6])), "03 02 01 06", "keyCertSign + cRLSign");
  assert.equal(hex(derNamedBits([0, 8])), "03 03 07 80 80");
  assert.equal(hex(derNamedBits([])), "03 01 00");
  assert.throws(() => derBitString(Uint8Array.of(1), 8), /unused bits/);
});

Deno.test("derTime() uses UTCTime before 2050 and GeneralizedTime from 2050", () => {
  const ascii = (b: Uint8Array) => new TextDecoder().decode(b.subarray(2));
  const d = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
  assert.equal(derUtcTime(d)[0], 0x17);
  assert.equal(ascii(derTime(d)), "260102030405Z");
  assert.equal(ascii(derTime(new Date(Date.UTC(1999, 11, 31, 23, 59, 59)))), "991231235959Z");
  const late = new Date(Date.UTC(2050, 0, 1, 0, 0, 0));
  assert.equal(derTime(late)[0], 0x18);
  assert.equal(ascii(derTime(late)), "20500101000000Z");
  assert.equal(ascii(derGeneralizedTime(d)), "20260102030405Z");
  const early = derTime(new Date(Date.UTC(1949, 11, 31, 23, 59, 59)));
  assert.equal(early[0], 0x18);
  assert.equal(ascii(early), "19491231235959Z");
  assert.throws(() => derUtcTime(late), /UTCTime/);
  assert.throws(() => derTime(new Date(NaN)), /invalid date/);
});

Deno.test("derSequence(), derSet() and derContext() wrap encoded elements", () => {
  assert.equal(hex(derSequence()), "30 00");
  assert.equal(hex(derSequence(derNull(), derInteger(1))), "30 05 05 00 02 01 01");
  assert.equal(hex(derSet(derInteger(2), derInteger(1))), "31 06 02 01 01 02 01 02", "sorted");
  assert.equal(hex(derContext(0, derInteger(2), true)), "a0 03 02 01 02");
  assert.equal(hex(derContext(2, Uint8Array.of(0x61), false)), "82 01 61");
  assert.equal(hex(derContext(3, derSequence(), true)), "a3 02 30 00");
  assert.throws(() => derContext(31, new Uint8Array(0), false), /high-tag/);
});

Deno.test("readTlv() and readChildren() walk what the encoder wrote, long lengths included", () => {
  const big = derOctetString(new Uint8Array(300).fill(7));
  const seq = derSequence(derInteger(5), big, derNull());
  const top = readTlv(seq, 0);
  assert.equal(top.tag, 0x30);
  assert.equal(top.end, seq.length);
  const kids = readChildren(seq, top);
  assert.deepEqual(kids.map((k) => k.tag), [0x02, 0x04, 0x05]);
  assert.equal(kids[1]!.end - kids[1]!.contentStart, 300);
});

Deno.test("readTlv() throws 'malformed DER' on truncated or overlong input", () => {
  const seq = derSequence(derInteger(5));
  assert.throws(() => readTlv(seq.subarray(0, seq.length - 1), 0), /malformed DER.*past/);
  assert.throws(() => readTlv(Uint8Array.of(0x30), 0), /malformed DER.*truncated/);
  assert.throws(() => readTlv(Uint8Array.of(0x04, 0x85, 1, 1, 1, 1, 1), 0), /length of 5 bytes/);
  assert.throws(() => readTlv(Uint8Array.of(0x1f, 0x01, 0x00), 0), /high tag/);
});
