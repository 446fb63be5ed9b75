import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, createPublicKey, X509Certificate } from "node:crypto";
import { createCa } from "./ca.ts";
import {
  caPin,
  certInfo,
  CLOCK_SKEW_MS,
  generateKeyPair,
  issueCertificate,
  type IssueOptions,
  verifyIssued,
} from "./x509.ts";
import { openssl, withPemFiles } from "./_testing.ts";

const NOW = new Date(Date.UTC(2026, 5, 1, 12, 0, 0));
const CLUSTER = "5f0c2a8e-1b7d-4c3e-9a61-0d2b7c4e8f10";
const ca = createCa({ clusterId: CLUSTER, now: NOW });

function issue(node: string, extra: Partial<IssueOptions> = {}) {
  const keys = generateKeyPair();
  const leaf = issueCertificate({
    ca,
    publicKeySpkiDer: keys.publicKeySpkiDer,
    node,
    clusterId: CLUSTER,
    now: NOW,
    ttlMs: 72 * 3600_000,
    ...extra,
  });
  return { ...leaf, keyPem: keys.privateKeyPem, spki: keys.publicKeySpkiDer };
}

Deno.test("generateKeyPair() gives a P-256 key whose public half is the SPKI DER", () => {
  const k = generateKeyPair();
  assert.match(k.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  const pub = createPublicKey({
    key: Buffer.from(k.publicKeySpkiDer),
    format: "der",
    type: "spki",
  });
  assert.equal(pub.asymmetricKeyDetails?.namedCurve, "prime256v1");
  assert.deepEqual(
    new Uint8Array(createPublicKey(k.privateKeyPem).export({ type: "spki", format: "der" })),
    k.publicKeySpkiDer,
  );
});

Deno.test("createCa() makes a CA openssl accepts, with berth's subject and extensions", () => {
  const text = withPemFiles({ "ca.pem": ca.certPem }, (dir) => {
    const verify = openssl(["verify", "-CAfile", "ca.pem", "ca.pem"], dir);
    assert.ok(verify.ok, verify.out);
    return openssl(["x509", "-noout", "-text", "-in", "ca.pem"], dir).out;
  });
  assert.match(text, new RegExp(`Subject: O = berth, CN = berth CA ${CLUSTER}\n`));
  assert.match(text, /Basic Constraints: critical\n\s+CA:TRUE, pathlen:0/);
  assert.match(text, /Key Usage: critical\n\s+Certificate Sign, CRL Sign/);
  assert.match(text, /Subject Key Identifier/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  const x = new X509Certificate(ca.certPem);
  assert.equal(x.ca, true);
  assert.equal(x.validFromDate.getTime(), NOW.getTime() - CLOCK_SKEW_MS);
  assert.equal(x.validToDate.getTime(), NOW.getTime() + 3650 * 24 * 3600_000);
  assert.equal(x.verify(x.publicKey), true, "self-signed");
});

Deno.test("issueCertificate() makes a leaf openssl verifies against the CA, with SANs and usages", () => {
  const leaf = issue("web-1", {
    dnsNames: ["api.berth.local"],
    ipAddresses: ["127.0.0.1", "fd00::5"],
  });
  const text = withPemFiles({ "ca.pem": ca.certPem, "leaf.pem": leaf.certPem }, (dir) => {
    const verify = openssl(
      ["verify", "-attime", String(NOW.getTime() / 1000), "-CAfile", "ca.pem", "leaf.pem"],
      dir,
    );
    assert.ok(verify.ok, verify.out);
    assert.match(verify.out, /leaf.pem: OK/);
    const purpose = openssl(
      [
        "verify",
        "-attime",
        String(NOW.getTime() / 1000),
        "-purpose",
        "sslclient",
        "-CAfile",
        "ca.pem",
        "leaf.pem",
      ],
      dir,
    );
    assert.ok(purpose.ok, purpose.out);
    return openssl(["x509", "-noout", "-text", "-in", "leaf.pem"], dir).out;
  });
  assert.match(text, /Subject: CN = web-1\n/);
  assert.match(text, new RegExp(`Issuer: O = berth, CN = berth CA ${CLUSTER}\n`));
  assert.match(text, /Basic Constraints: critical\n\s+CA:FALSE/);
  assert.match(text, /Key Usage: critical\n\s+Digital Signature\n/);
  assert.match(
    text,
    /Extended Key Usage: *\n\s+TLS Web Server Authentication, TLS Web Client Authentication/,
  );
  assert.match(
    text,
    new RegExp(
      "Subject Alternative Name: *\\n\\s+DNS:web-1, DNS:api.berth.local, IP Address:127.0.0.1, " +
        `IP Address:FD00:0:0:0:0:0:0:5, URI:berth://${CLUSTER}/node/web-1\\n`,
      "i",
    ),
  );
  const ski = /Subject Key Identifier: *\n\s+([0-9A-F:]+)/.exec(
    withPemFiles(
      { "ca.pem": ca.certPem },
      (d) => openssl(["x509", "-noout", "-text", "-in", "ca.pem"], d).out,
    ),
  )?.[1];
  assert.ok(ski);
  assert.match(text, new RegExp(`Authority Key Identifier: *\\n\\s+(keyid:)?${ski}\\n`));
});

Deno.test("issueCertificate() is checkIssued/verify by node:crypto and sets the validity window", () => {
  const leaf = issue("web-1");
  const x = new X509Certificate(leaf.certPem);
  const caX = new X509Certificate(ca.certPem);
  assert.equal(x.checkIssued(caX), true);
  assert.equal(x.verify(caX.publicKey), true);
  assert.equal(x.ca, false);
  assert.equal(x.validFromDate.getTime(), NOW.getTime() - CLOCK_SKEW_MS);
  assert.equal(leaf.notAfter, NOW.getTime() + 72 * 3600_000);
  assert.equal(x.validToDate.getTime(), leaf.notAfter);
  assert.equal(verifyIssued(leaf.certPem, ca.certPem), true);
  const other = createCa({ clusterId: CLUSTER, now: NOW });
  assert.equal(verifyIssued(leaf.certPem, other.certPem), false, "same subject, other key");
  assert.equal(verifyIssued("garbage", ca.certPem), false);
  assert.equal(verifyIssued(leaf.certPem, "garbage"), false);
});

Deno.test("issueCertificate() gives random positive serials, or the one asked for", () => {
  const a = issue("n1");
  const b = issue("n1");
  assert.notEqual(a.serial, b.serial);
  for (const leaf of [a, b]) {
    assert.match(leaf.serial, /^([0-9a-f]{2}){1,16}$/, "even count of digits, at most 16 bytes");
    assert.notEqual(leaf.serial.slice(0, 2), "00", "no leading zero byte");
    if (leaf.serial.length === 32) assert.ok(parseInt(leaf.serial.slice(0, 2), 16) < 0x80);
    const fromNode = new X509Certificate(leaf.certPem).serialNumber.toLowerCase();
    assert.equal(fromNode.replace(/^0+/, ""), leaf.serial.replace(/^0+/, ""));
  }
  // The random serial's first byte spans 0x01..0x7f: a leading digit 0 must survive.
  const s = issue("n1", { serial: "0f" + "ab".repeat(15) });
  assert.equal(s.serial, "0f" + "ab".repeat(15));
  assert.equal(certInfo(s.certPem).serial, s.serial);
  assert.equal(issue("n1", { serial: "0A1B" }).serial, "0a1b");
  assert.equal(issue("n1", { serial: "a1b" }).serial, "0a1b", "an even count of digits");
  assert.equal(issue("n1", { serial: "0000ff" }).serial, "ff", "0x00 padded in DER, still ff");
  const text = withPemFiles(
    { "c.pem": issue("n1", { serial: "ff" }).certPem },
    (dir) => openssl(["x509", "-noout", "-serial", "-in", "c.pem"], dir).out,
  );
  assert.equal(text.trim(), "serial=FF");
  assert.equal(issue("n1", { serial: "7f" + "00".repeat(19) }).serial, "7f" + "00".repeat(19));
  assert.throws(
    () => issue("n1", { serial: "80" + "00".repeat(19) }),
    /serial "80(00)+": more than 20 bytes as a DER INTEGER/,
  );
  assert.throws(() => issue("n1", { serial: "0" }), /serial "0": expected 1 to 40 hex digits/);
  assert.throws(() => issue("n1", { serial: "xyz" }), /serial "xyz"/);
});

Deno.test("issueCertificate() writes notAfter from 2050 as GeneralizedTime, which openssl reads", () => {
  const now = new Date(Date.UTC(2049, 11, 31, 0, 0, 0));
  const lateCa = createCa({ clusterId: CLUSTER, now });
  const keys = generateKeyPair();
  const leaf = issueCertificate({
    ca: lateCa,
    publicKeySpkiDer: keys.publicKeySpkiDer,
    node: "n1",
    clusterId: CLUSTER,
    now,
    ttlMs: 48 * 3600_000,
  });
  assert.equal(leaf.notAfter, Date.UTC(2050, 0, 2, 0, 0, 0));
  assert.equal(certInfo(leaf.certPem).notAfter, leaf.notAfter);
  withPemFiles({ "ca.pem": lateCa.certPem, "leaf.pem": leaf.certPem }, (dir) => {
    const at = String(now.getTime() / 1000);
    const r = openssl(["verify", "-attime", at, "-CAfile", "ca.pem", "leaf.pem"], dir);
    assert.ok(r.ok, r.out);
    const dates = openssl(["x509", "-noout", "-enddate", "-in", "leaf.pem"], dir).out;
    assert.equal(dates.trim(), "notAfter=Jan  2 00:00:00 2050 GMT");
    const asn1 = openssl(["asn1parse", "-in", "leaf.pem"], dir).out;
    assert.match(asn1, /UTCTIME\s+:491230235500Z\n.*GENERALIZEDTIME\s+:20500102000000Z/);
  });
});

Deno.test("issueCertificate() cuts the lifetime at the CA's notAfter and refuses once the CA expired", () => {
  const shortCa = createCa({ clusterId: CLUSTER, now: NOW, ttlMs: 3600_000 });
  const keys = generateKeyPair();
  const leaf = issueCertificate({
    ca: shortCa,
    publicKeySpkiDer: keys.publicKeySpkiDer,
    node: "n1",
    clusterId: CLUSTER,
    now: NOW,
    ttlMs: 72 * 3600_000,
  });
  assert.equal(leaf.notAfter, NOW.getTime() + 3600_000);
  const later = new Date(NOW.getTime() + 3600_000);
  assert.throws(
    () =>
      issueCertificate({
        ca: shortCa,
        publicKeySpkiDer: keys.publicKeySpkiDer,
        node: "n1",
        clusterId: CLUSTER,
        now: later,
        ttlMs: 3600_000,
      }),
    /^Error: CA certificate: expired on 2026-06-01T13:00:00.000Z$/,
  );
});

Deno.test("issueCertificate() refuses bad names, addresses, keys and lifetimes with one line", async (t) => {
  const cases: [string, Partial<IssueOptions>, RegExp][] = [
    [
      "node name with a space",
      { node: "a b" } as Partial<IssueOptions>,
      /^node name "a b": has " "$/,
    ],
    ["empty node name", { node: "" }, /^node name "": empty$/],
    ["cluster id with a slash", { clusterId: "a/b" }, /^cluster id "a\/b": expected/],
    ["bad IP", { ipAddresses: ["1.2.3.256"] }, /^IP address "1.2.3.256": not an IP literal$/],
    ["bad DNS name", { dnsNames: ["a..b"] }, /^DNS name "a..b"/],
    ["zero lifetime", { ttlMs: 0 }, /^certificate lifetime 0 ms: expected at least 1 s$/],
    [
      "garbage key",
      { publicKeySpkiDer: Uint8Array.of(1, 2, 3) },
      /^public key: not a SubjectPublicKeyInfo DER$/,
    ],
  ];
  for (const [name, extra, re] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => issue(extra.node ?? "n1", extra),
        (e: Error) => re.test(e.message) && !e.message.includes("\n"),
      );
    });
  }
  await t.step("RSA public key", async () => {
    const { generateKeyPairSync } = await import("node:crypto");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
    const der = new Uint8Array(rsa.export({ type: "spki", format: "der" }));
    assert.throws(
      () => issue("n1", { publicKeySpkiDer: der }),
      /^Error: public key: an RSA key, expected ECDSA P-256$/,
    );
  });
});

Deno.test("certInfo() reads node, cluster, serial, times, fingerprint and key hash from PEM or DER", () => {
  const leaf = issue("db.2");
  const info = certInfo(leaf.certPem);
  const der = new Uint8Array(new X509Certificate(leaf.certPem).raw);
  assert.deepEqual(info, {
    node: "db.2",
    clusterId: CLUSTER,
    serial: leaf.serial,
    notBefore: NOW.getTime() - CLOCK_SKEW_MS,
    notAfter: leaf.notAfter,
    fingerprint: "sha256:" + createHash("sha256").update(der).digest("hex"),
    // The key's own SPKI bytes: a renewal for the same key carries the same hash.
    keyHash: createHash("sha256").update(leaf.spki).digest("hex"),
  });
  assert.deepEqual(certInfo(der), info);
});

Deno.test("certInfo() throws one line on certificates that are not berth member certificates", () => {
  const oneLine = (re: RegExp) => (e: Error) => re.test(e.message) && !e.message.includes("\n");
  assert.throws(
    () => certInfo("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"),
    oneLine(/^certificate: not a PEM or DER certificate$/),
  );
  assert.throws(
    () => certInfo(Uint8Array.of(0x30, 0x03, 1, 2, 3)),
    oneLine(/not a PEM or DER certificate/),
  );
  assert.throws(
    () => certInfo(ca.certPem),
    oneLine(
      /^not a berth member certificate \(subject O=berth, CN=berth CA .*\): 0 berth:\/\/ URI names, expected 1$/,
    ),
  );
  const foreign = withPemFiles({}, (dir) => {
    const r = openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "k.pem",
      "-out",
      "c.pem",
      "-subj",
      "/CN=n2",
      "-days",
      "1",
      "-addext",
      `subjectAltName=URI:berth://${CLUSTER}/node/n1`,
    ], dir);
    assert.ok(r.ok, r.out);
    return Deno.readTextFileSync(`${dir}/c.pem`);
  });
  assert.throws(
    () => certInfo(foreign),
    oneLine(/^not a berth member certificate: CN "n2" differs from the URI's node "n1"$/),
  );
});

Deno.test("caPin() is sha256 of the CA's SubjectPublicKeyInfo, as openssl computes it", () => {
  const pin = caPin(ca.certPem);
  assert.match(pin, /^sha256:[0-9a-f]{64}$/);
  const spki = new X509Certificate(ca.certPem).publicKey.export({ type: "spki", format: "der" });
  assert.equal(pin, "sha256:" + createHash("sha256").update(spki).digest("hex"));
  const viaOpenssl = withPemFiles({ "ca.pem": ca.certPem }, (dir) => {
    const r = openssl(["x509", "-in", "ca.pem", "-noout", "-pubkey", "-out", "pub.pem"], dir);
    assert.ok(r.ok, r.out);
    const der = openssl(
      ["pkey", "-pubin", "-in", "pub.pem", "-outform", "DER", "-out", "pub.der"],
      dir,
    );
    assert.ok(der.ok, der.out);
    return createHash("sha256").update(Deno.readFileSync(`${dir}/pub.der`)).digest("hex");
  });
  assert.equal(pin, `sha256:${viaOpenssl}`);
  assert.notEqual(caPin(createCa({ clusterId: CLUSTER, now: NOW }).certPem), pin);
  assert.throws(() => caPin("garbage"), /^Error: CA certificate: not a PEM or DER certificate$/);
});
