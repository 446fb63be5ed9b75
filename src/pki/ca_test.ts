import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { createCa, loadCa } from "./ca.ts";
import { certInfo, generateKeyPair, issueCertificate, verifyIssued } from "./x509.ts";
import { openssl, withPemFiles } from "./_testing.ts";

const NOW = new Date(Date.UTC(2026, 5, 1, 12, 0, 0));
const ca = createCa({ clusterId: "c1", now: NOW });
const oneLine = (re: RegExp) => (e: Error) => re.test(e.message) && !e.message.includes("\n");

/** An openssl-made CA (SEC1 "EC PRIVATE KEY"), with `ext` as extra -addext arguments. */
function opensslCa(
  ext: string[],
  keyArgs = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
) {
  return withPemFiles({}, (dir) => {
    const r = openssl([
      "req",
      "-x509",
      ...keyArgs,
      "-nodes",
      "-keyout",
      "k.pem",
      "-out",
      "c.pem",
      "-subj",
      "/CN=ops CA",
      "-days",
      "3650",
      ...ext.flatMap((e) => ["-addext", e]),
    ], dir);
    assert.ok(r.ok, r.out);
    const ec = openssl(["ec", "-in", "k.pem", "-out", "sec1.pem"], dir);
    return {
      certPem: Deno.readTextFileSync(`${dir}/c.pem`),
      keyPem: ec.ok
        ? Deno.readTextFileSync(`${dir}/sec1.pem`)
        : Deno.readTextFileSync(`${dir}/k.pem`),
    };
  });
}

Deno.test("loadCa() accepts a CA made by createCa() and gives it back", () => {
  const loaded = loadCa(ca.certPem, ca.keyPem, { now: NOW });
  assert.equal(loaded.certPem, ca.certPem);
  assert.equal(loaded.keyPem, ca.keyPem);
});

Deno.test("loadCa() accepts an openssl-made P-256 CA with a SEC1 key, and it issues verifiable leaves", () => {
  const ops = opensslCa([
    "basicConstraints=critical,CA:TRUE",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  assert.match(ops.keyPem, /BEGIN EC PRIVATE KEY/);
  const loaded = loadCa(ops.certPem, ops.keyPem);
  assert.match(loaded.keyPem, /BEGIN PRIVATE KEY/, "normalized to PKCS#8");
  const leaf = issueCertificate({
    ca: loaded,
    publicKeySpkiDer: generateKeyPair().publicKeySpkiDer,
    node: "n1",
    clusterId: "c1",
    now: new Date(),
    ttlMs: 3600_000,
  });
  assert.equal(verifyIssued(leaf.certPem, ops.certPem), true);
  assert.equal(certInfo(leaf.certPem).node, "n1");
  withPemFiles({ "ca.pem": ops.certPem, "leaf.pem": leaf.certPem }, (dir) => {
    const r = openssl(["verify", "-CAfile", "ca.pem", "leaf.pem"], dir);
    assert.ok(r.ok, r.out);
  });
});

Deno.test("loadCa() refuses bad CA input with one line each", async (t) => {
  await t.step("garbage certificate PEM", () => {
    assert.throws(
      () => loadCa("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ca.keyPem),
      oneLine(/^CA certificate: not a PEM or DER certificate$/),
    );
    assert.throws(
      () => loadCa("", ca.keyPem),
      oneLine(/^CA certificate: not a PEM or DER certificate$/),
    );
  });
  await t.step("a bundle of two certificates", () => {
    const other = createCa({ clusterId: "c1", now: NOW });
    assert.throws(
      () => loadCa(ca.certPem + other.certPem, ca.keyPem, { now: NOW }),
      oneLine(/^CA certificate: the file holds 2 certificates, expected only the CA's$/),
    );
  });
  await t.step("garbage key PEM", () => {
    assert.throws(() => loadCa(ca.certPem, "not a key"), oneLine(/^CA key: not a PEM private key/));
    assert.throws(() => loadCa(ca.certPem, ca.certPem), oneLine(/^CA key: not a PEM private key/));
  });
  await t.step("RSA key", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    }).toString();
    assert.throws(
      () => loadCa(ca.certPem, rsa),
      oneLine(/^CA key: an RSA key, expected ECDSA P-256$/),
    );
  });
  await t.step("P-384 key", () => {
    const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    }).toString();
    assert.throws(
      () => loadCa(ca.certPem, p384),
      oneLine(/^CA key: an EC secp384r1 key, expected ECDSA P-256$/),
    );
  });
  await t.step("RSA CA certificate and key", () => {
    const rsaCa = opensslCa(["basicConstraints=critical,CA:TRUE"], ["-newkey", "rsa:2048"]);
    assert.throws(
      () => loadCa(rsaCa.certPem, rsaCa.keyPem),
      oneLine(/^CA key: an RSA key, expected ECDSA P-256$/),
    );
  });
  await t.step("not a CA (a leaf)", () => {
    const keys = generateKeyPair();
    const leaf = issueCertificate({
      ca,
      publicKeySpkiDer: keys.publicKeySpkiDer,
      node: "n1",
      clusterId: "c1",
      now: NOW,
      ttlMs: 3600_000,
    });
    assert.throws(
      () => loadCa(leaf.certPem, keys.privateKeyPem, { now: NOW }),
      oneLine(/^CA certificate: not a CA \(basicConstraints CA:true missing\)$/),
    );
  });
  await t.step("CA without keyCertSign", () => {
    const noSign = opensslCa([
      "basicConstraints=critical,CA:TRUE",
      "keyUsage=critical,digitalSignature",
    ]);
    assert.throws(
      () => loadCa(noSign.certPem, noSign.keyPem),
      oneLine(/^CA certificate: its keyUsage lacks keyCertSign$/),
    );
  });
  await t.step("key of another CA", () => {
    const other = createCa({ clusterId: "c1", now: NOW });
    assert.throws(
      () => loadCa(ca.certPem, other.keyPem, { now: NOW }),
      oneLine(/^CA key does not match the CA certificate$/),
    );
  });
  await t.step("expired CA", () => {
    const old = createCa({
      clusterId: "c1",
      now: new Date(Date.UTC(2020, 0, 1)),
      ttlMs: 24 * 3600_000,
    });
    assert.throws(
      () => loadCa(old.certPem, old.keyPem, { now: NOW }),
      oneLine(/^CA certificate: expired on 2020-01-02T00:00:00.000Z$/),
    );
  });
  await t.step("CA not valid yet", () => {
    assert.throws(
      () => loadCa(ca.certPem, ca.keyPem, { now: new Date(Date.UTC(2020, 0, 1)) }),
      oneLine(/^CA certificate: not valid before 2026-06-01T11:55:00.000Z$/),
    );
  });
});

Deno.test("createCa() refuses a cluster id that cannot go into a URI, and a lifetime under 1 s", () => {
  assert.throws(
    () => createCa({ clusterId: "a b", now: NOW }),
    oneLine(/^cluster id "a b": expected/),
  );
  assert.throws(
    () => createCa({ clusterId: "c1", now: NOW, ttlMs: 10 }),
    oneLine(/^CA lifetime 10 ms/),
  );
});
