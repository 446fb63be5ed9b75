/**
 * The cluster CA: a self-signed ECDSA P-256 certificate made at bootstrap (`createCa`), or one
 * the operator brings with `--ca-cert/--ca-key` (`loadCa`, which checks it can serve).
 *
 * @module
 */
import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  type X509Certificate,
} from "node:crypto";
import {
  derBoolean,
  derInteger,
  derNamedBits,
  derOctetString,
  derPrintableString,
  derSequence,
  derUtf8String,
} from "./der.ts";
import {
  certParts,
  derName,
  extension,
  KEY_USAGE,
  keyIdentifier,
  keyUsageBits,
  OID,
  signCertificate,
  toPem,
} from "./_cert_der.ts";
import {
  type Ca,
  checkClusterId,
  CLOCK_SKEW_MS,
  generateKeyPair,
  p256Problem,
  parseCertificate,
  serialBytes,
} from "./x509.ts";

/** Default CA lifetime: 10 years. */
export const CA_TTL_MS = 3650 * 24 * 3600_000;

/**
 * A new self-signed CA, subject `CN=berth CA <clusterId>, O=berth`: basicConstraints CA:true
 * pathlen 0 and keyUsage keyCertSign+cRLSign (both critical), subjectKeyIdentifier. Valid from
 * `now` − 5 min for `ttlMs` (default 10 years).
 */
export function createCa(o: { clusterId: string; now: Date; ttlMs?: number }): Ca {
  checkClusterId(o.clusterId);
  const ttlMs = o.ttlMs ?? CA_TTL_MS;
  if (!Number.isFinite(ttlMs) || ttlMs < 1000) {
    throw new Error(`CA lifetime ${ttlMs} ms: expected at least 1 s`);
  }
  const keys = generateKeyPair();
  const key = createPrivateKey(keys.privateKeyPem);
  const spki = keys.publicKeySpkiDer;
  const name = derName([
    [OID.organizationName, derPrintableString("berth")],
    [OID.commonName, derUtf8String(`berth CA ${o.clusterId}`)],
  ]);
  const der = signCertificate({
    serial: serialBytes(undefined),
    issuer: name,
    subject: name,
    notBefore: new Date(o.now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(o.now.getTime() + ttlMs),
    spki,
    extensions: [
      extension(OID.basicConstraints, true, derSequence(derBoolean(true), derInteger(0))),
      extension(OID.keyUsage, true, derNamedBits([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign])),
      extension(OID.subjectKeyIdentifier, false, derOctetString(keyIdentifier(spki))),
    ],
    signingKey: key,
  });
  return { certPem: toPem("CERTIFICATE", der), keyPem: keys.privateKeyPem };
}

/**
 * Checks an operator's CA (`--ca-cert`, `--ca-key`) can issue berth certificates: the
 * certificate is a CA (basicConstraints CA:true; keyCertSign when it has keyUsage), currently
 * valid, its key is ECDSA P-256 and the private key matches it. Throws one line naming the
 * problem. `now` defaults to the clock.
 */
export function loadCa(certPem: string, keyPem: string, o: { now?: Date } = {}): Ca {
  const count = certPem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  if (count > 1) {
    throw new Error(`CA certificate: the file holds ${count} certificates, expected only the CA's`);
  }
  const cert = parseCertificate(certPem, "CA certificate");
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new Error("CA key: not a PEM private key (expected PKCS#8 or SEC1 EC, unencrypted)");
  }
  const keyProblem = p256Problem(key);
  if (keyProblem !== undefined) throw new Error(`CA key: ${keyProblem}`);
  if (!cert.ca) throw new Error(`CA certificate: not a CA (basicConstraints CA:true missing)`);
  const usage = keyUsageBits(certParts(new Uint8Array(cert.raw)));
  if (usage !== undefined && !usage.has(KEY_USAGE.keyCertSign)) {
    throw new Error("CA certificate: its keyUsage lacks keyCertSign");
  }
  const certKeyProblem = p256Problem(cert.publicKey);
  if (certKeyProblem !== undefined) throw new Error(`CA certificate: ${certKeyProblem}`);
  if (!sameKey(cert, key)) throw new Error("CA key does not match the CA certificate");
  const now = (o.now ?? new Date()).getTime();
  if (cert.validToDate.getTime() <= now) {
    throw new Error(`CA certificate: expired on ${cert.validToDate.toISOString()}`);
  }
  if (cert.validFromDate.getTime() > now) {
    throw new Error(`CA certificate: not valid before ${cert.validFromDate.toISOString()}`);
  }
  return {
    certPem: cert.toString(),
    keyPem: key.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

function sameKey(cert: X509Certificate, key: KeyObject): boolean {
  const a = cert.publicKey.export({ type: "spki", format: "der" });
  const b = createPublicKey(key).export({ type: "spki", format: "der" });
  return a.equals(b);
}
