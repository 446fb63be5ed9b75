/**
 * The X.509 plumbing under x509.ts and ca.ts: object identifiers, building and signing a
 * certificate (RFC 5280 §4.1), PEM armour, and taking the pieces node:crypto's X509Certificate
 * does not expose (subject bytes, SubjectPublicKeyInfo bytes, extensions) back out of a DER
 * certificate. Private to src/pki.
 *
 * @module
 */
import { createHash, type KeyObject, sign } from "node:crypto";
import {
  derBitString,
  derBoolean,
  derContext,
  derInteger,
  derOctetString,
  derOid,
  derSequence,
  derSet,
  derTime,
  oidText,
  readChildren,
  readTlv,
  TAG,
  type Tlv,
} from "./der.ts";

/** The object identifiers berth's certificates use (RFC 5280 §4.2.1, RFC 5758 §3.2). */
export const OID = {
  commonName: "2.5.4.3",
  organizationName: "2.5.4.10",
  ecPublicKey: "1.2.840.10045.2.1",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

/** keyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/** One extension: `extnValue` is the DER of the extension's own value. */
export function extension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? derSequence(derOid(oid), derBoolean(true), derOctetString(value))
    : derSequence(derOid(oid), derOctetString(value));
}

/** A Name from (attribute OID, encoded value) pairs, one attribute per RDN, in order. */
export function derName(attributes: readonly [string, Uint8Array][]): Uint8Array {
  return derSequence(...attributes.map(([oid, v]) => derSet(derSequence(derOid(oid), v))));
}

/** What goes into one certificate; `issuer` and `subject` are encoded Names. */
export interface CertificateFields {
  serial: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER of the certified key. */
  spki: Uint8Array;
  /** Encoded extensions (see `extension`). */
  extensions: Uint8Array[];
  /** The issuer's private key (ECDSA P-256). */
  signingKey: KeyObject;
}

/** Builds the v3 TBSCertificate, signs it with ecdsa-with-SHA256 and returns the DER. */
export function signCertificate(f: CertificateFields): Uint8Array {
  const algorithm = derSequence(derOid(OID.ecdsaWithSha256));
  const tbs = derSequence(
    derContext(0, derInteger(2), true), // version v3
    derInteger(f.serial),
    algorithm,
    f.issuer,
    derSequence(derTime(f.notBefore), derTime(f.notAfter)),
    f.subject,
    f.spki,
    derContext(3, derSequence(...f.extensions), true),
  );
  const signature = sign("sha256", tbs, f.signingKey); // DER ECDSA-Sig-Value for EC keys
  return derSequence(tbs, algorithm, derBitString(new Uint8Array(signature)));
}

/** PEM armour with 64-character lines (RFC 7468). */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = btoa(String.fromCharCode(...der));
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** The parts of a DER certificate node:crypto does not hand out. */
export interface CertParts {
  /** The serial: lower-case hex of the INTEGER's bytes, without leading zero bytes. */
  serial: string;
  /** The encoded subject Name (what a certificate it issues carries as its issuer). */
  subject: Uint8Array;
  /** The SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  /** The extensions by OID: criticality and the extnValue's content (the value's DER). */
  extensions: Map<string, { critical: boolean; value: Uint8Array }>;
}

/** Splits a DER certificate into the parts above; throws "malformed DER …" on bad input. */
export function certParts(der: Uint8Array): CertParts {
  const cert = readTlv(der, 0);
  const [tbs] = readChildren(der, expect(cert, TAG.SEQUENCE));
  const fields = readChildren(der, expect(tbs, TAG.SEQUENCE));
  const skipVersion = fields[0]?.tag === (TAG.CONTEXT | TAG.CONSTRUCTED | 0) ? 1 : 0;
  const [serial, , , , subject, spki, ...rest] = fields.slice(skipVersion);
  const extensions = new Map<string, { critical: boolean; value: Uint8Array }>();
  const ext3 = rest.find((t) => t.tag === (TAG.CONTEXT | TAG.CONSTRUCTED | 3));
  if (ext3 !== undefined) {
    const [list] = readChildren(der, ext3);
    for (const e of readChildren(der, expect(list, TAG.SEQUENCE))) {
      const parts = readChildren(der, expect(e, TAG.SEQUENCE));
      const oid = expect(parts[0], TAG.OID);
      const critical = parts.length === 3 && der[parts[1]!.contentStart] !== 0;
      const value = expect(parts[parts.length - 1], TAG.OCTET_STRING);
      extensions.set(oidText(der.subarray(oid.contentStart, oid.end)), {
        critical,
        value: der.subarray(value.contentStart, value.end),
      });
    }
  }
  const serialBytes = [...der.subarray(expect(serial, TAG.INTEGER).contentStart, serial!.end)];
  while (serialBytes.length > 1 && serialBytes[0] === 0) serialBytes.shift();
  return {
    serial: serialBytes.map((b) => b.toString(16).padStart(2, "0")).join(""),
    subject: der.slice(expect(subject, TAG.SEQUENCE).start, subject!.end),
    spki: der.slice(expect(spki, TAG.SEQUENCE).start, spki!.end),
    extensions,
  };
}

function expect(t: Tlv | undefined, tag: number): Tlv {
  if (t === undefined) throw new Error("malformed DER: certificate too short");
  if (t.tag !== tag) {
    throw new Error(`malformed DER at byte ${t.start}: tag 0x${t.tag.toString(16)}`);
  }
  return t;
}

/** The key identifier RFC 5280 §4.2.1.2 (1) describes: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const [, bits] = readChildren(spki, readTlv(spki, 0));
  if (bits?.tag !== TAG.BIT_STRING) throw new Error("malformed SubjectPublicKeyInfo");
  const key = spki.subarray(bits.contentStart + 1, bits.end);
  return new Uint8Array(createHash("sha1").update(key).digest());
}

/** A certificate's subjectKeyIdentifier extension's key id, or one computed from its key. */
export function subjectKeyId(parts: CertParts): Uint8Array {
  const ski = parts.extensions.get(OID.subjectKeyIdentifier);
  if (ski === undefined) return keyIdentifier(parts.spki);
  const t = readTlv(ski.value, 0);
  return ski.value.slice(t.contentStart, t.end);
}

/** keyUsage bits set in a keyUsage extension's value, or undefined when it has none. */
export function keyUsageBits(parts: CertParts): Set<number> | undefined {
  const ku = parts.extensions.get(OID.keyUsage);
  if (ku === undefined) return undefined;
  const t = readTlv(ku.value, 0);
  const bits = new Set<number>();
  for (let i = t.contentStart + 1; i < t.end; i++) {
    for (let b = 0; b < 8; b++) {
      if (ku.value[i]! & (0x80 >> b)) bits.add((i - t.contentStart - 1) * 8 + b);
    }
  }
  return bits;
}

/** The uniformResourceIdentifier names (`[6]`) of a subjectAltName extension. */
export function sanUris(parts: CertParts): string[] {
  const san = parts.extensions.get(OID.subjectAltName);
  if (san === undefined) return [];
  const names = readChildren(san.value, readTlv(san.value, 0));
  return names.filter((n) => n.tag === (TAG.CONTEXT | 6)).map((n) =>
    new TextDecoder().decode(san.value.subarray(n.contentStart, n.end))
  );
}
