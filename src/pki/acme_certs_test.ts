import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, X509Certificate } from "node:crypto";
import { Buffer } from "node:buffer";
import {
  ACME_IDENTIFIER_OID,
  createCsr,
  dnsNameProblem,
  tlsAlpnChallengeCertificate,
} from "./acme_certs.ts";
import { certParts, toPem } from "./_cert_der.ts";
import { readTlv } from "./der.ts";
import { generateKeyPair } from "./x509.ts";
import { openssl, withPemFiles } from "./_testing.ts";

/** `openssl req -verify`'s verdict: openssl 3.0 exits 0 either way and says it on stderr. */
function reqVerify(dir: string, file: string): string {
  const out = new Deno.Command("openssl", {
    args: ["req", "-verify", "-noout", "-in", file],
    cwd: dir,
  })
    .outputSync();
  const text = new TextDecoder();
  return text.decode(out.stdout) + text.decode(out.stderr);
}

Deno.test("dnsNameProblem() accepts host and wildcard names and names what is wrong", () => {
  assert.equal(dnsNameProblem("web.example.com"), undefined);
  assert.equal(dnsNameProblem("*.example.com"), undefined);
  assert.equal(dnsNameProblem("a-1.b2.test"), undefined);
  assert.match(dnsNameProblem("localhost")!, /two labels/);
  assert.match(dnsNameProblem("Web.example.com")!, /label "Web"/);
  assert.match(dnsNameProblem("-a.example.com")!, /label "-a"/);
  assert.match(dnsNameProblem("a..example.com")!, /label ""/);
  assert.match(dnsNameProblem("*.*.example.com")!, /label "\*"/);
  assert.match(dnsNameProblem(`${"a".repeat(64)}.com`)!, /1-63/);
  assert.match(dnsNameProblem(`${"a.".repeat(127)}com`)!, /253/);
});

Deno.test("createCsr() makes a CSR openssl verifies, with CN and every name as a SAN", () => {
  const key = generateKeyPair();
  const der = createCsr(["web.example.com", "*.example.com"], key);
  const csr = toPem("CERTIFICATE REQUEST", der);
  const tampered = der.slice();
  tampered[der.length - 5]! ^= 0x01; // inside the signature
  const text = withPemFiles(
    { "r.csr": csr, "bad.csr": toPem("CERTIFICATE REQUEST", tampered) },
    (dir) => {
      assert.match(reqVerify(dir, "r.csr"), /self-signature verify OK/);
      assert.match(reqVerify(dir, "bad.csr"), /self-signature verify failure/);
      return openssl(["req", "-noout", "-text", "-in", "r.csr"], dir).out;
    },
  );
  assert.match(text, /Subject: CN\s?=\s?web\.example\.com/);
  assert.match(text, /Requested Extensions:/);
  assert.match(text, /DNS:web\.example\.com, DNS:\*\.example\.com/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  const pub = withPemFiles(
    { "r.csr": csr },
    (dir) => openssl(["req", "-noout", "-pubkey", "-in", "r.csr"], dir).out,
  );
  const spki = Buffer.from(pub.replace(/-----[^-]+-----|\s/g, ""), "base64");
  assert.deepEqual(new Uint8Array(spki), key.publicKeySpkiDer);
});

Deno.test("createCsr() takes the key as PEM and certifies its public half", () => {
  const key = generateKeyPair();
  const csr = toPem("CERTIFICATE REQUEST", createCsr(["a.example.test"], key.privateKeyPem));
  const pub = withPemFiles({ "r.csr": csr }, (dir) => {
    assert.match(reqVerify(dir, "r.csr"), /self-signature verify OK/);
    return openssl(["req", "-noout", "-pubkey", "-in", "r.csr"], dir).out;
  });
  const spki = Buffer.from(pub.replace(/-----[^-]+-----|\s/g, ""), "base64");
  assert.deepEqual(new Uint8Array(spki), key.publicKeySpkiDer);
  assert.throws(() => createCsr(["a.example.test"], "garbage"), /not a private key/);
});

Deno.test("createCsr() leaves the subject empty when the first name is over 64 characters", () => {
  const long = `${"a".repeat(60)}.example.com`;
  const csr = toPem("CERTIFICATE REQUEST", createCsr([long], generateKeyPair()));
  const text = withPemFiles({ "r.csr": csr }, (dir) => {
    assert.match(reqVerify(dir, "r.csr"), /self-signature verify OK/);
    return openssl(["req", "-noout", "-text", "-in", "r.csr"], dir).out;
  });
  assert.doesNotMatch(text, /CN\s?=/);
  assert.match(text, new RegExp(`DNS:${long}`));
});

Deno.test("createCsr() refuses no names, bad names, duplicates, too many and non-P-256 keys", () => {
  const key = generateKeyPair();
  assert.throws(() => createCsr([], key), /at least one DNS name/);
  assert.throws(() => createCsr(["Bad_Name.test"], key), /DNS name "Bad_Name.test"/);
  assert.throws(() => createCsr(["a.test", "a.test"], key), /listed twice/);
  const many = Array.from({ length: 101 }, (_, i) => `n${i}.test`);
  assert.throws(() => createCsr(many, key), /101 names, at most 100/);
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey
    .export({ type: "pkcs8", format: "pem" }).toString();
  assert.throws(
    () => createCsr(["a.test"], { privateKeyPem: rsa, publicKeySpkiDer: key.publicKeySpkiDer }),
    /ECDSA P-256/,
  );
});

Deno.test("tlsAlpnChallengeCertificate() carries the name and a critical acmeIdentifier hash", () => {
  const keyAuth = "token-abc.thumbprint-xyz";
  const { certPem, keyPem } = tlsAlpnChallengeCertificate("web.example.com", keyAuth);
  const text = withPemFiles({ "c.pem": certPem, "k.pem": keyPem }, (dir) => {
    // Self-signed: it verifies against itself (openssl does not know the critical extension).
    const verify = openssl(["verify", "-ignore_critical", "-CAfile", "c.pem", "c.pem"], dir);
    assert.ok(verify.ok, verify.out);
    const pubCert = openssl(["x509", "-noout", "-pubkey", "-in", "c.pem"], dir).out;
    const pubKey = openssl(["pkey", "-pubout", "-in", "k.pem"], dir).out;
    assert.equal(pubCert, pubKey);
    return openssl(["x509", "-noout", "-text", "-in", "c.pem"], dir).out;
  });
  assert.match(text, /DNS:web\.example\.com\n/);
  assert.match(text, /1\.3\.6\.1\.5\.5\.7\.1\.31: critical/);
  const x = new X509Certificate(certPem);
  assert.ok(x.checkHost("web.example.com"));
  const ext = certParts(new Uint8Array(x.raw)).extensions.get(ACME_IDENTIFIER_OID);
  assert.ok(ext !== undefined);
  assert.equal(ext.critical, true);
  const inner = readTlv(ext.value, 0);
  assert.equal(inner.tag, 0x04); // OCTET STRING
  assert.deepEqual(
    ext.value.subarray(inner.contentStart, inner.end),
    new Uint8Array(createHash("sha256").update(keyAuth).digest()),
  );
});

Deno.test("tlsAlpnChallengeCertificate() refuses wildcards, bad names and empty key authorizations", () => {
  assert.throws(() => tlsAlpnChallengeCertificate("*.example.com", "a.b"), /wildcard/);
  assert.throws(() => tlsAlpnChallengeCertificate("nodot", "a.b"), /two labels/);
  assert.throws(() => tlsAlpnChallengeCertificate("a.test", ""), /key authorization/);
});
