/**
 * Edge certificates as a user or an ACME order hands them in: a PEM chain (leaf first) and its
 * PEM private key, checked and read with node:crypto's `X509Certificate`, then the key sealed
 * with the cluster's SecretBox (cluster_key.ts) before anything is proposed. What comes out has
 * the shape of the store's `EdgeCert` (src/store/types.ts).
 *
 * Every refusal is one line naming the field (`certPem`, `keyPem`) and what to fix; it never
 * quotes the key.
 *
 * @module
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  X509Certificate,
} from "node:crypto";
import type { Buffer } from "node:buffer";
import { errorText } from "../lib/error_text.ts";
import type { SecretBox } from "./cluster_key.ts";

/** Longest certificate chain accepted (PEM text). */
export const CERT_CHAIN_CHARS_MAX = 64 * 1024;
/** Most certificates in a chain. */
export const CERT_CHAIN_MAX = 8;
/** Longest private key accepted (PEM text; an RSA-4096 PKCS#8 key is about 3.3 KiB). */
export const CERT_KEY_CHARS_MAX = 8 * 1024;
/** Most names one certificate may carry (Let's Encrypt allows 100). */
export const CERT_NAMES_MAX = 1000;
/** Shortest RSA key accepted. */
export const RSA_BITS_MIN = 2048;
/** Longest issuer text kept (longer is cut with `…`). */
export const ISSUER_CHARS_MAX = 1024;

const PEM_BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;
const DNS_NAME_RE =
  /^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
const EC_CURVES = new Set(["prime256v1", "secp384r1"]);

/**
 * Whether `name` is a DNS name a certificate may be served for: lower-case, `*.` allowed, not
 * an IPv4 address (no top-level label is all digits; SNI never carries an address).
 */
export function isCertDnsName(name: string): boolean {
  return name.length <= 253 && DNS_NAME_RE.test(name) && !/(^|\.)[0-9]+$/.test(name);
}

/** What berth keeps about a certificate besides its PEM (the store's EdgeCert fields). */
export interface CertFacts {
  /** SAN DNS names, else the subject's CN; lower-case, in the certificate's order, no repeats. */
  names: string[];
  /** The issuer's DN on one line (`O=Let's Encrypt, CN=R3`). */
  issuer: string;
  notBefore: number;
  notAfter: number;
  /** Lower-case hex. */
  serial: string;
  /** sha256 of the leaf's DER, lower-case hex. */
  fingerprint: string;
}

/** A certificate and key as the store keeps them (the shape of the store's EdgeCert). */
export interface SealedEdgeCert extends CertFacts {
  name: string;
  certPem: string;
  keySealed: string;
  source: "manual" | "acme";
  isDefault: boolean;
}

/** The SecretBox context an edge certificate's key is sealed under. */
export function edgeKeyContext(name: string): string {
  return `edge-cert:${name}`;
}

/** The PEM blocks of `text` with their labels; throws when anything but blocks is there. */
function pemBlocks(text: string, field: string): { label: string; pem: string }[] {
  const out: { label: string; pem: string }[] = [];
  let rest = text;
  for (const m of text.matchAll(PEM_BLOCK_RE)) {
    out.push({ label: m[1]!, pem: m[0] });
    rest = rest.replace(m[0], "");
  }
  if (out.length === 0) throw new Error(`${field}: no PEM block (-----BEGIN …-----) found`);
  if (rest.trim() !== "") throw new Error(`${field}: text outside the PEM blocks`);
  return out;
}

/** The certificates of a PEM chain, leaf first, each one issued by the next. */
export function parseChain(certPem: string): X509Certificate[] {
  if (typeof certPem !== "string" || certPem.length > CERT_CHAIN_CHARS_MAX) {
    throw new Error(`certPem: expected PEM text of at most ${CERT_CHAIN_CHARS_MAX} characters`);
  }
  const blocks = pemBlocks(certPem, "certPem");
  const other = blocks.find((b) => b.label !== "CERTIFICATE");
  if (other !== undefined) {
    throw new Error(`certPem: expected only CERTIFICATE blocks, found ${other.label}`);
  }
  if (blocks.length > CERT_CHAIN_MAX) {
    throw new Error(`certPem: ${blocks.length} certificates, at most ${CERT_CHAIN_MAX}`);
  }
  const chain = blocks.map((b, i) => {
    try {
      return new X509Certificate(b.pem);
    } catch (e) {
      throw new Error(`certPem: certificate ${i + 1} does not parse: ${errorText(e)}`);
    }
  });
  for (let i = 0; i + 1 < chain.length; i++) {
    const [cert, issuer] = [chain[i]!, chain[i + 1]!];
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      throw new Error(
        `certPem: certificate ${i + 2} did not issue certificate ${
          i + 1
        } (put the leaf first, then each issuer)`,
      );
    }
  }
  return chain;
}

/** The names a leaf is served for: SAN DNS entries, else its CN. */
function certNames(leaf: X509Certificate): string[] {
  const san = (leaf.subjectAltName ?? "").split(", ").filter((e) => e.startsWith("DNS:"))
    .map((e) => e.slice(4));
  const cn = leaf.subject.split("\n").filter((l) => l.startsWith("CN=")).map((l) => l.slice(3));
  const raw = san.length > 0 ? san : cn.slice(-1);
  const names = [...new Set(raw.map((n) => n.toLowerCase().replace(/\.$/, "")))];
  if (names.length === 0) {
    throw new Error("certPem: the certificate names no DNS name (subjectAltName DNS or CN)");
  }
  if (names.length > CERT_NAMES_MAX) {
    throw new Error(
      `certPem: the certificate has ${names.length} names, at most ${CERT_NAMES_MAX}`,
    );
  }
  const bad = names.find((n) => !isCertDnsName(n));
  if (bad !== undefined) {
    throw new Error(`certPem: ${JSON.stringify(bad.slice(0, 80))} is not a DNS name`);
  }
  return names;
}

/** What berth keeps about the leaf of `certPem` (the first certificate). */
export function certFacts(certPem: string): CertFacts {
  const leaf = parseChain(certPem)[0]!;
  return factsOf(leaf);
}

function factsOf(leaf: X509Certificate): CertFacts {
  const issuer = leaf.issuer.split("\n").join(", ");
  return {
    names: certNames(leaf),
    issuer: issuer.length <= ISSUER_CHARS_MAX
      ? issuer
      : `${issuer.slice(0, ISSUER_CHARS_MAX - 1)}…`,
    notBefore: leaf.validFromDate.getTime(),
    notAfter: leaf.validToDate.getTime(),
    serial: leaf.serialNumber.toLowerCase(),
    fingerprint: createHash("sha256").update(leaf.raw).digest("hex"),
  };
}

/** The private key of `keyPem`; throws one line on anything but one usable unencrypted key. */
function parseKey(keyPem: string): KeyObject {
  if (typeof keyPem !== "string" || keyPem.length > CERT_KEY_CHARS_MAX) {
    throw new Error(`keyPem: expected PEM text of at most ${CERT_KEY_CHARS_MAX} characters`);
  }
  const blocks = pemBlocks(keyPem, "keyPem");
  if (blocks.length !== 1) {
    throw new Error(`keyPem: expected one PEM block, found ${blocks.length}`);
  }
  const label = blocks[0]!.label;
  if (label === "ENCRYPTED PRIVATE KEY") {
    throw new Error("keyPem: the key is encrypted; decrypt it first (openssl pkey -in KEY)");
  }
  if (!["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"].includes(label)) {
    throw new Error(`keyPem: expected a PRIVATE KEY block, found ${label}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(blocks[0]!.pem);
  } catch {
    throw new Error("keyPem: the private key does not parse");
  }
  const type = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  const ok = (type === "rsa" && (d.modulusLength ?? 0) >= RSA_BITS_MIN) ||
    (type === "ec" && EC_CURVES.has(d.namedCurve ?? ""));
  if (!ok) {
    const what = type === "rsa" ? `RSA of ${d.modulusLength} bits` : (d.namedCurve ?? type);
    throw new Error(
      `keyPem: a ${what} key is not supported (RSA of ${RSA_BITS_MIN} bits or more, ECDSA P-256 or P-384)`,
    );
  }
  return key;
}

function spki(key: KeyObject): Buffer {
  return key.export({ type: "spki", format: "der" }) as Buffer;
}

/** A checked certificate and key, normalised (PEM re-encoded, key as PKCS#8). */
export interface CheckedCert {
  facts: CertFacts;
  certPem: string;
  keyPem: string;
}

/**
 * Checks a certificate chain and its key: PEM that parses, leaf first and each certificate
 * issued by the next, a supported unencrypted private key matching the leaf's public key, the
 * leaf not expired at `nowMs`, sizes bounded. Throws one line otherwise.
 */
export function checkCertAndKey(
  certPem: string,
  keyPem: string,
  opts: { nowMs: number },
): CheckedCert {
  const chain = parseChain(certPem);
  const leaf = chain[0]!;
  const facts = factsOf(leaf);
  if (facts.notAfter <= opts.nowMs) {
    throw new Error(`certPem: the certificate expired on ${leaf.validToDate.toISOString()}`);
  }
  const key = parseKey(keyPem);
  if (!spki(createPublicKey(key)).equals(spki(leaf.publicKey))) {
    throw new Error("keyPem: the key does not match the certificate's public key");
  }
  return {
    facts,
    certPem: chain.map((c) => c.toString().trim()).join("\n") + "\n",
    keyPem: key.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

/**
 * A certificate and key ready for `cert.put`: checked (checkCertAndKey), the key sealed with
 * `box` under the context `edge-cert:NAME`. Throws one line on a bad input.
 */
export function sealEdgeCert(
  box: SecretBox,
  o: {
    name: string;
    certPem: string;
    keyPem: string;
    source: "manual" | "acme";
    isDefault: boolean;
    nowMs: number;
  },
): SealedEdgeCert {
  const checked = checkCertAndKey(o.certPem, o.keyPem, { nowMs: o.nowMs });
  const keySealed = box.seal(new TextEncoder().encode(checked.keyPem), edgeKeyContext(o.name));
  return {
    name: o.name,
    ...checked.facts,
    certPem: checked.certPem,
    keySealed,
    source: o.source,
    isDefault: o.isDefault,
  };
}

/** The key of a stored edge certificate, opened with `box` (throws a clear error). */
export function openEdgeKey(box: SecretBox, cert: { name: string; keySealed: string }): string {
  return new TextDecoder().decode(box.open(cert.keySealed, edgeKeyContext(cert.name)));
}
