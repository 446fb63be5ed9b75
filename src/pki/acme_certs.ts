/**
 * The two certificate objects ACME needs besides its JSON: the PKCS#10 certificate signing
 * request sent to finalize an order (RFC 2986, RFC 8555 §7.4), and the self-signed certificate a
 * TLS-ALPN-01 challenge is answered with (RFC 8737 §3). Both are ECDSA P-256 with SHA-256.
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
  sign,
} from "node:crypto";
import {
  derBitString,
  derContext,
  derInteger,
  derOctetString,
  derOid,
  derSequence,
  derSet,
  derUtf8String,
} from "./der.ts";
import { derName, extension, OID, signCertificate, toPem } from "./_cert_der.ts";
import type { KeyPair } from "./x509.ts";

/** PKCS#9 extensionRequest (RFC 2985 §5.4.2): the extensions a CSR asks for. */
const EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
/** id-pe-acmeIdentifier (RFC 8737 §6.1). */
export const ACME_IDENTIFIER_OID = "1.3.6.1.5.5.7.1.31";

/** Most names one CSR carries (Let's Encrypt's limit per order). */
export const CSR_NAMES_MAX = 100;

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Why `name` is not a DNS name a certificate can be ordered for (lower-case letters, digits and
 * `-` in dot-separated labels of 1 to 63 characters, at most 253 in all, at least two labels, an
 * optional leading `*.`), or undefined when it is one.
 */
export function dnsNameProblem(name: string): string | undefined {
  const bare = name.startsWith("*.") ? name.slice(2) : name;
  if (name.length > 253) return "longer than 253 characters";
  const labels = bare.split(".");
  if (labels.length < 2) return "needs at least two labels (a.b)";
  const bad = labels.find((l) => !LABEL.test(l));
  if (bad !== undefined) {
    return `label ${JSON.stringify(bad)}: expected 1-63 of a-z, 0-9, '-' (not first or last)`;
  }
  return undefined;
}

function checkNames(names: readonly string[]): void {
  if (names.length === 0) throw new Error("CSR: at least one DNS name is needed");
  if (names.length > CSR_NAMES_MAX) {
    throw new Error(`CSR: ${names.length} names, at most ${CSR_NAMES_MAX}`);
  }
  for (const n of names) {
    const problem = dnsNameProblem(n);
    if (problem !== undefined) throw new Error(`DNS name ${JSON.stringify(n)}: ${problem}`);
  }
  if (new Set(names).size !== names.length) throw new Error("CSR: a DNS name is listed twice");
}

function sanDnsNames(names: readonly string[]): Uint8Array {
  const ascii = (s: string) => new TextEncoder().encode(s);
  return extension(
    OID.subjectAltName,
    false,
    derSequence(...names.map((n) => derContext(2, ascii(n), false))), // dNSName [2] IA5String
  );
}

/**
 * A PKCS#10 CSR (DER) for `names` signed by `key` (a KeyPair or the private key's PEM): the
 * subject is CN=<first name> (when it fits the 64-character limit, else empty) and an
 * extensionRequest carries the names as SAN dNSNames. Throws one line on a bad name or key.
 */
export function createCsr(names: readonly string[], key: KeyPair | string): Uint8Array {
  checkNames(names);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(typeof key === "string" ? key : key.privateKeyPem);
  } catch (e) {
    throw new Error(`CSR: the certificate key is not a private key (${(e as Error).message})`);
  }
  if (privateKey.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new Error("CSR: the certificate key must be ECDSA P-256");
  }
  const spki = new Uint8Array(
    createPublicKey(privateKey).export({ type: "spki", format: "der" }),
  );
  const first = names[0]!;
  const subject = derName(first.length <= 64 ? [[OID.commonName, derUtf8String(first)]] : []);
  const attribute = derSequence(
    derOid(EXTENSION_REQUEST),
    derSet(derSequence(sanDnsNames(names))),
  );
  const info = derSequence(
    derInteger(0), // version v1
    subject,
    spki,
    derContext(0, attribute, true), // attributes [0] IMPLICIT SET OF Attribute
  );
  const signature = sign("sha256", info, privateKey);
  return derSequence(
    info,
    derSequence(derOid(OID.ecdsaWithSha256)),
    derBitString(new Uint8Array(signature)),
  );
}

/** A TLS-ALPN-01 challenge certificate and its fresh private key, both PEM. */
export interface ChallengeCert {
  certPem: string;
  keyPem: string;
}

/**
 * The RFC 8737 §3 certificate for `name`: self-signed with a fresh P-256 key, SAN dNSName =
 * `name` and nothing else, and the critical id-pe-acmeIdentifier extension holding an OCTET
 * STRING of SHA-256(`keyAuthorization`). Valid from `now` − 1 h for 7 days (the CA only checks
 * the extension, but TLS stacks refuse expired certificates).
 */
export function tlsAlpnChallengeCertificate(
  name: string,
  keyAuthorization: string,
  o: { now?: Date } = {},
): ChallengeCert {
  checkNames([name]);
  if (name.startsWith("*.")) throw new Error("TLS-ALPN-01 cannot validate a wildcard name");
  if (keyAuthorization.length === 0 || keyAuthorization.length > 1024) {
    throw new Error("TLS-ALPN-01: the key authorization must be 1-1024 characters");
  }
  const now = o.now ?? new Date();
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const digest = createHash("sha256").update(keyAuthorization).digest();
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const subject = derName([[OID.commonName, derUtf8String(name.slice(0, 64))]]);
  const der = signCertificate({
    serial,
    issuer: subject,
    subject,
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + 7 * 24 * 3600_000),
    spki: new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
    extensions: [
      sanDnsNames([name]),
      extension(ACME_IDENTIFIER_OID, true, derOctetString(new Uint8Array(digest))),
    ],
    signingKey: privateKey,
  });
  return {
    certPem: toPem("CERTIFICATE", der),
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}
