import assert from "node:assert/strict";
import { ClusterKey } from "./cluster_key.ts";
import {
  CERT_CHAIN_CHARS_MAX,
  certFacts,
  checkCertAndKey,
  edgeKeyContext,
  isCertDnsName,
  openEdgeKey,
  sealEdgeCert,
} from "./edge_cert.ts";
import { generateKeyPair } from "./x509.ts";
import { testEdgeCert } from "./testing.ts";
import { openssl, withPemFiles } from "./_testing.ts";

const NOW = Date.now();
const web = testEdgeCert(["web.example.com", "*.Example.com"]);

/** A self-signed certificate made by openssl `req -x509` with `args` (key type, subject, SAN). */
function selfSigned(args: string[]): { certPem: string; keyPem: string } {
  return withPemFiles({}, (dir) => {
    const r = openssl(
      ["req", "-x509", "-nodes", "-days", "2", "-keyout", "k.pem", "-out", "c.pem", ...args],
      dir,
    );
    assert.ok(r.ok, r.out);
    return {
      certPem: Deno.readTextFileSync(`${dir}/c.pem`),
      keyPem: Deno.readTextFileSync(`${dir}/k.pem`),
    };
  });
}

Deno.test("certFacts() reads SAN DNS names lower-case, the issuer on one line, times, serial and sha256", () => {
  const f = certFacts(web.certPem);
  assert.deepEqual(f.names, ["web.example.com", "*.example.com"]);
  assert.equal(f.issuer, "O=berth, CN=berth CA edge-test");
  assert.ok(f.notBefore < NOW && f.notAfter > NOW + 29 * 86_400_000);
  const ossl = withPemFiles(
    { "c.pem": web.leafPem },
    (dir) =>
      openssl(["x509", "-in", "c.pem", "-noout", "-fingerprint", "-sha256", "-serial"], dir).out,
  );
  const fp = /sha256 Fingerprint=([0-9A-F:]+)/i.exec(ossl)![1]!.replaceAll(":", "").toLowerCase();
  assert.equal(f.fingerprint, fp);
  // The same number: openssl and X509Certificate may differ in leading zeros.
  assert.equal(
    BigInt(`0x${f.serial}`),
    BigInt(`0x${/serial=([0-9A-F]+)/.exec(ossl)![1]!}`),
  );
});

Deno.test("certFacts() falls back to the CN without SAN DNS names", () => {
  const c = selfSigned([
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-384",
    "-subj",
    "/O=Acme, Inc./CN=Shop.Example.org",
  ]);
  const f = certFacts(c.certPem);
  assert.deepEqual(f.names, ["shop.example.org"]);
  assert.equal(f.issuer, "O=Acme, Inc., CN=Shop.Example.org");
});

Deno.test("checkCertAndKey() accepts ECDSA and RSA keys and normalises PEM (CRLF in, PKCS#8 out)", () => {
  const ok = checkCertAndKey(web.certPem.replaceAll("\n", "\r\n"), web.keyPem, { nowMs: NOW });
  assert.equal(ok.certPem, `${web.leafPem.trim()}\n${web.caPem.trim()}\n`);
  assert.match(ok.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  const rsa = selfSigned([
    "-newkey",
    "rsa:2048",
    "-subj",
    "/CN=r.example",
    "-addext",
    "subjectAltName=DNS:r.example,IP:127.0.0.1",
  ]);
  assert.deepEqual(checkCertAndKey(rsa.certPem, rsa.keyPem, { nowMs: NOW }).facts.names, [
    "r.example",
  ]);
  const sec1 = withPemFiles(
    { "k.pem": web.keyPem },
    (dir) => openssl(["ec", "-in", "k.pem"], dir).out,
  );
  assert.match(sec1, /BEGIN EC PRIVATE KEY/);
  checkCertAndKey(web.certPem, sec1, { nowMs: NOW });
});

Deno.test("checkCertAndKey() refuses bad input with one line naming the field", async (t) => {
  const rsa1024 = selfSigned(["-newkey", "rsa:1024", "-subj", "/CN=weak.example"]);
  const ipOnly = selfSigned([
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
  ]);
  const expired = testEdgeCert(["old.example"], {
    now: new Date(NOW - 400 * 86_400_000),
    ttlMs: 86_400_000,
  });
  const encrypted = withPemFiles(
    { "k.pem": web.keyPem },
    (dir) => openssl(["pkcs8", "-topk8", "-in", "k.pem", "-passout", "pass:x"], dir).out,
  );
  const cases: [string, string, string, RegExp][] = [
    ["not PEM", "hello", web.keyPem, /^certPem: no PEM block \(-----BEGIN …-----\) found$/],
    ["empty", "", web.keyPem, /^certPem: no PEM block/],
    ["garbage around", `x\n${web.certPem}`, web.keyPem, /^certPem: text outside the PEM blocks$/],
    [
      "a key as certificate",
      web.keyPem,
      web.keyPem,
      /^certPem: expected only CERTIFICATE blocks, found PRIVATE KEY$/,
    ],
    [
      "broken base64",
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      web.keyPem,
      /^certPem: certificate 1 does not parse/,
    ],
    [
      "chain reversed",
      `${web.caPem}${web.leafPem}`,
      web.keyPem,
      /^certPem: certificate 2 did not issue certificate 1 \(put the leaf first, then each issuer\)$/,
    ],
    [
      "too long",
      "x".repeat(CERT_CHAIN_CHARS_MAX + 1),
      web.keyPem,
      /^certPem: expected PEM text of at most 65536 characters$/,
    ],
    ["expired", expired.certPem, expired.keyPem, /^certPem: the certificate expired on \d{4}-/],
    [
      "no DNS name",
      ipOnly.certPem,
      ipOnly.keyPem,
      /^certPem: "127\.0\.0\.1" is not a DNS name$/,
    ],
    [
      "another key",
      web.certPem,
      generateKeyPair().privateKeyPem,
      /^keyPem: the key does not match the certificate's public key$/,
    ],
    ["no key", web.certPem, "", /^keyPem: no PEM block/],
    [
      "certificate as key",
      web.certPem,
      web.leafPem,
      /^keyPem: expected a PRIVATE KEY block, found CERTIFICATE$/,
    ],
    ["two keys", web.certPem, web.keyPem + web.keyPem, /^keyPem: expected one PEM block, found 2$/],
    ["encrypted", web.certPem, encrypted, /^keyPem: the key is encrypted; decrypt it first/],
    [
      "broken key",
      web.certPem,
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
      /^keyPem: the private key does not parse$/,
    ],
    [
      "weak RSA",
      rsa1024.certPem,
      rsa1024.keyPem,
      /^keyPem: a RSA of 1024 bits key is not supported/,
    ],
  ];
  for (const [what, cert, key, want] of cases) {
    await t.step(what, () => {
      assert.throws(() => checkCertAndKey(cert, key, { nowMs: NOW }), (e: Error) => {
        assert.match(e.message, want);
        assert.ok(!e.message.includes("\n"), "one line");
        assert.ok(!e.message.includes(web.keyPem.split("\n")[1]!), "never the key");
        return true;
      });
    });
  }
});

Deno.test("sealEdgeCert() seals the key under edge-cert:NAME and openEdgeKey() gets it back", () => {
  const key = ClusterKey.generate();
  const c = sealEdgeCert(key, {
    name: "web",
    certPem: web.certPem,
    keyPem: web.keyPem,
    source: "manual",
    isDefault: true,
    nowMs: NOW,
  });
  assert.equal(c.name, "web");
  assert.deepEqual(c.names, ["web.example.com", "*.example.com"]);
  assert.equal(c.isDefault, true);
  assert.match(c.keySealed, /^bs1:/);
  assert.ok(!JSON.stringify(c).includes("PRIVATE KEY"));
  assert.equal(openEdgeKey(key, c), web.keyPem);
  assert.throws(() => openEdgeKey(key, { ...c, name: "other" }), /edge-cert:other: cannot open/);
  assert.equal(edgeKeyContext("web"), "edge-cert:web");
});

Deno.test("isCertDnsName() takes lower-case names and wildcards, not addresses or upper case", () => {
  for (const n of ["a", "web.example.com", "*.example.com", "_acme.x.org", "x-1.y2.io"]) {
    assert.ok(isCertDnsName(n), n);
  }
  for (const n of ["", "Web.example", "*.", "a.*.b", "-a.b", "a..b", "127.0.0.1", "x.123", "a b"]) {
    assert.ok(!isCertDnsName(n), n);
  }
});
