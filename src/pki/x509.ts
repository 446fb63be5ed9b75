/**
 * Member certificates: ECDSA P-256 key pairs, leaf certificates the cluster CA issues (usable
 * for both TLS server and client auth), reading a member certificate back (`certInfo`), and the
 * CA pin a join token carries.
 *
 * A leaf names its member three ways: CN=<node>, SAN DNS=<node>, and SAN
 * URI=berth://<clusterId>/node/<node>; `certInfo` trusts the URI and checks the CN agrees.
 *
 * @module
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  X509Certificate,
} from "node:crypto";
import { Buffer } from "node:buffer";
import { nodeNameProblem } from "../lib/node_name.ts";
import { ipBytes } from "../lib/ip_bytes.ts";
import {
  derContext,
  derNamedBits,
  derOctetString,
  derOid,
  derSequence,
  derUtf8String,
} from "./der.ts";
import {
  certParts,
  derName,
  extension,
  KEY_USAGE,
  keyIdentifier,
  OID,
  sanUris,
  signCertificate,
  subjectKeyId,
  toPem,
} from "./_cert_der.ts";

/** A fresh key pair: the private key as PKCS#8 PEM, the public key as SubjectPublicKeyInfo DER. */
export interface KeyPair {
  privateKeyPem: string;
  publicKeySpkiDer: Uint8Array;
}

/** The cluster CA: its certificate and its private key (PKCS#8 PEM). */
export interface Ca {
  certPem: string;
  keyPem: string;
}

/** What `issueCertificate` needs; times in the certificate have whole seconds. */
export interface IssueOptions {
  ca: Ca;
  /** The member's public key (SubjectPublicKeyInfo DER, ECDSA P-256). */
  publicKeySpkiDer: Uint8Array;
  node: string;
  clusterId: string;
  now: Date;
  /** Lifetime from `now`; cut to the CA's own notAfter. */
  ttlMs: number;
  /** Serial in hex; 16 random bytes (top bit clear) when absent. */
  serial?: string;
  /** Extra DNS names (API certificates). */
  dnsNames?: string[];
  /** Extra IP addresses, IPv4 or IPv6 (API certificates). */
  ipAddresses?: string[];
  /**
   * A server certificate only (the API's, `--http-tls auto`): extKeyUsage serverAuth and no
   * member URI, so it can never stand in for a member in cluster traffic (`certInfo` refuses it).
   */
  serverOnly?: boolean;
}

/** A berth member certificate read back. Times in ms since the epoch. */
export interface CertInfo {
  node: string;
  clusterId: string;
  /** Lower-case hex, an even count of digits, no leading zero bytes (as `issueCertificate` gives). */
  serial: string;
  notBefore: number;
  notAfter: number;
  /** "sha256:<hex>" of the certificate's DER. */
  fingerprint: string;
  /** publicKeyHash of its SubjectPublicKeyInfo (what the store records of a member's key). */
  keyHash: string;
}

/** How far back notBefore goes, so members whose clocks run behind accept a new certificate. */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** Cluster ids go into a URI: letters, digits, `.`, `_`, `-` (a UUID in practice). */
const CLUSTER_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The SAN URI naming a member. */
export function memberUri(clusterId: string, node: string): string {
  return `berth://${clusterId}/node/${node}`;
}

const MEMBER_URI = /^berth:\/\/([A-Za-z0-9._-]{1,64})\/node\/([^/]+)$/;

/** A new ECDSA P-256 key pair. */
export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeySpkiDer: new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
  };
}

/**
 * A leaf certificate for `node` signed by the CA: basicConstraints CA:false, keyUsage
 * digitalSignature, extKeyUsage serverAuth+clientAuth, SAN DNS=node (+ dnsNames, ipAddresses)
 * and URI=berth://<clusterId>/node/<node>, authority and subject key identifiers. notBefore is
 * `now` − 5 min (clock skew). Throws one line on a bad name, key, address or lifetime, or an
 * expired CA.
 */
export function issueCertificate(o: IssueOptions): {
  certPem: string;
  serial: string;
  notAfter: number;
} {
  const problem = nodeNameProblem(o.node);
  if (problem !== undefined) throw new Error(`node name ${JSON.stringify(o.node)}: ${problem}`);
  checkClusterId(o.clusterId);
  if (!Number.isFinite(o.ttlMs) || o.ttlMs < 1000) {
    throw new Error(`certificate lifetime ${o.ttlMs} ms: expected at least 1 s`);
  }
  const spki = p256Spki(o.publicKeySpkiDer, "public key");
  const caCert = parseCertificate(o.ca.certPem, "CA certificate");
  const ca = certParts(new Uint8Array(caCert.raw));
  const caKey = createPrivateKey(o.ca.keyPem);
  const notAfter = Math.min(o.now.getTime() + o.ttlMs, caCert.validToDate.getTime());
  if (notAfter <= o.now.getTime()) {
    throw new Error(`CA certificate: expired on ${caCert.validToDate.toISOString()}`);
  }
  const ascii = (t: string) => new TextEncoder().encode(t); // names checked to be ASCII
  const names: Uint8Array[] = [derContext(2, ascii(o.node), false)]; // dNSName [2] IA5String
  for (const d of o.dnsNames ?? []) {
    if (!/^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(d) || d.length > 253) {
      throw new Error(`DNS name ${JSON.stringify(d)}: expected letters, digits, '-' and dots`);
    }
    if (d !== o.node) names.push(derContext(2, ascii(d), false));
  }
  for (const ip of o.ipAddresses ?? []) {
    const bytes = ipBytes(ip);
    if (bytes === null) throw new Error(`IP address ${JSON.stringify(ip)}: not an IP literal`);
    names.push(derContext(7, bytes, false)); // iPAddress [7] OCTET STRING
  }
  if (!o.serverOnly) {
    names.push(derContext(6, ascii(memberUri(o.clusterId, o.node)), false)); // URI [6] IA5String
  }
  const serial = serialBytes(o.serial);
  const der = signCertificate({
    serial,
    issuer: ca.subject,
    subject: derName([[OID.commonName, derUtf8String(o.node)]]),
    notBefore: new Date(o.now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(notAfter),
    spki,
    extensions: [
      extension(OID.basicConstraints, true, derSequence()),
      extension(OID.keyUsage, true, derNamedBits([KEY_USAGE.digitalSignature])),
      extension(
        OID.extKeyUsage,
        false,
        o.serverOnly
          ? derSequence(derOid(OID.serverAuth))
          : derSequence(derOid(OID.serverAuth), derOid(OID.clientAuth)),
      ),
      extension(OID.subjectAltName, false, derSequence(...names)),
      extension(
        OID.authorityKeyIdentifier,
        false,
        derSequence(derContext(0, subjectKeyId(ca), false)),
      ),
      extension(OID.subjectKeyIdentifier, false, derOctetString(keyIdentifier(spki))),
    ],
    signingKey: caKey,
  });
  const certPem = toPem("CERTIFICATE", der);
  if (o.serverOnly) {
    const hex = [...serial].map((b) => b.toString(16).padStart(2, "0")).join("");
    return { certPem, serial: hex, notAfter: Math.floor(notAfter / 1000) * 1000 };
  }
  const info = certInfo(der);
  return { certPem, serial: info.serial, notAfter: info.notAfter };
}

/**
 * Reads a berth member certificate (PEM or DER): node and cluster from the URI SAN
 * (berth://<clusterId>/node/<node>), which the CN must match. Throws one line on anything else.
 */
export function certInfo(cert: string | Uint8Array): CertInfo {
  const x = parseCertificate(cert, "certificate");
  const der = new Uint8Array(x.raw);
  const parts = certParts(der);
  const uris = sanUris(parts).filter((u) => u.startsWith("berth://"));
  if (uris.length !== 1) {
    throw new Error(
      `not a berth member certificate (subject ${oneLine(x.subject)}): ` +
        `${uris.length} berth:// URI names, expected 1`,
    );
  }
  const m = MEMBER_URI.exec(uris[0]!);
  if (m === null || nodeNameProblem(m[2]!) !== undefined) {
    throw new Error(`not a berth member certificate: bad URI name ${JSON.stringify(uris[0])}`);
  }
  const [, clusterId, node] = m as unknown as [string, string, string];
  const cn = /^CN=(.*)$/m.exec(x.subject)?.[1];
  if (cn !== node) {
    throw new Error(
      `not a berth member certificate: CN ${JSON.stringify(cn ?? "")} differs from the URI's ` +
        `node ${JSON.stringify(node)}`,
    );
  }
  return {
    node,
    clusterId,
    serial: parts.serial,
    notBefore: x.validFromDate.getTime(),
    notAfter: x.validToDate.getTime(),
    fingerprint: "sha256:" + createHash("sha256").update(der).digest("hex"),
    keyHash: publicKeyHash(parts.spki),
  };
}

/** A public key (SubjectPublicKeyInfo DER) as the store records it: its sha256, lower-case hex. */
export function publicKeyHash(spkiDer: Uint8Array): string {
  return createHash("sha256").update(spkiDer).digest("hex");
}

/** "sha256:<64 hex>" of the CA certificate's SubjectPublicKeyInfo (what a join token pins). */
export function caPin(caCertPem: string): string {
  const x = parseCertificate(caCertPem, "CA certificate");
  const { spki } = certParts(new Uint8Array(x.raw));
  return "sha256:" + createHash("sha256").update(spki).digest("hex");
}

/**
 * Whether `caCertPem` issued `certPem`: names chain and the CA's key verifies the signature.
 * Validity periods are not checked. False on input that is not a certificate.
 */
export function verifyIssued(certPem: string, caCertPem: string): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caCertPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** Parses PEM or DER into an X509Certificate, or throws "<what>: not a PEM or DER certificate". */
export function parseCertificate(cert: string | Uint8Array, what: string): X509Certificate {
  try {
    return new X509Certificate(typeof cert === "string" ? cert : Buffer.from(cert));
  } catch {
    throw new Error(`${what}: not a PEM or DER certificate`);
  }
}

/** Whether a key is ECDSA on P-256; else a one-line description of what it is. */
export function p256Problem(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (type === "ec" && curve === "prime256v1") return undefined;
  return `an ${type?.toUpperCase() ?? "unknown"}${
    curve ? ` ${curve}` : ""
  } key, expected ECDSA P-256`;
}

/** A P-256 SubjectPublicKeyInfo re-encoded by node:crypto (canonical DER), or throws one line. */
function p256Spki(der: Uint8Array, what: string): Uint8Array {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
  } catch {
    throw new Error(`${what}: not a SubjectPublicKeyInfo DER`);
  }
  const problem = p256Problem(key);
  if (problem !== undefined) throw new Error(`${what}: ${problem}`);
  return new Uint8Array(key.export({ type: "spki", format: "der" }));
}

/** Checks a cluster id fits the URI name; throws one line. */
export function checkClusterId(clusterId: string): void {
  if (!CLUSTER_ID.test(clusterId)) {
    throw new Error(
      `cluster id ${JSON.stringify(clusterId)}: expected 1 to 64 letters, digits, '.', '_' or '-'`,
    );
  }
}

/** Serial bytes from hex (1 to 20 bytes, not zero), or 16 random bytes with the top bit clear. */
export function serialBytes(hex: string | undefined): Uint8Array {
  if (hex === undefined) {
    const b = new Uint8Array(randomBytes(16));
    b[0]! &= 0x7f; // a positive INTEGER without a padding byte
    if (b[0] === 0) b[0] = 1;
    return b;
  }
  const digits = hex.replace(/^0+/, "");
  if (!/^[0-9a-fA-F]{1,40}$/.test(digits)) {
    throw new Error(`serial ${JSON.stringify(hex)}: expected 1 to 40 hex digits, not zero`);
  }
  const even = digits.length % 2 === 1 ? "0" + digits : digits;
  if (even.length === 40 && parseInt(even.slice(0, 2), 16) >= 0x80) {
    throw new Error(`serial ${JSON.stringify(hex)}: more than 20 bytes as a DER INTEGER`);
  }
  return Uint8Array.from(even.match(/../g)!.map((h) => parseInt(h, 16)));
}

function oneLine(s: string): string {
  return s.replace(/\n/g, ", ");
}
