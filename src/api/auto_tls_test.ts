import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { certInfo, createCa } from "../pki/mod.ts";
import { AutoTls, serveAutoTls } from "./auto_tls.ts";
import type { TlsMaterial } from "./tls_files.ts";

const HOUR = 3_600_000;
const T0 = Date.parse("2026-12-01T00:00:00Z");

function auto(o: { ca?: () => ReturnType<typeof createCa> | undefined; now: () => number }) {
  const ca = createCa({ clusterId: "c1", now: new Date(T0) });
  return {
    ca,
    auto: new AutoTls({
      ca: o.ca ?? (() => ca),
      clusterId: () => "c1",
      node: "n1",
      http: { host: "10.0.0.5", port: 8500 },
      advertise: "10.0.0.6",
      ttlMs: 3 * HOUR,
      now: o.now,
    }),
  };
}

Deno.test("AutoTls.current() issues a certificate from the CA naming node, localhost and the addresses", () => {
  const { ca, auto: a } = auto({ now: () => T0 });
  const r = a.current()!;
  assert.equal(r.changed, true);
  const cert = new X509Certificate(r.tls.certPem);
  assert.ok(cert.verify(new X509Certificate(ca.certPem).publicKey));
  assert.ok(cert.checkPrivateKey(createPrivateKey(r.tls.keyPem)));
  for (
    const san of [
      "DNS:n1",
      "DNS:localhost",
      "IP Address:127.0.0.1",
      "IP Address:10.0.0.5",
      "IP Address:10.0.0.6",
    ]
  ) {
    assert.ok(cert.subjectAltName?.includes(san), `${san} in ${cert.subjectAltName}`);
  }
  assert.ok(!r.tls.certPem.includes("PRIVATE KEY") && !r.tls.keyPem.includes(ca.keyPem));
});

Deno.test("AutoTls.current() keeps its certificate until 2/3 of its lifetime, then reissues", () => {
  let now = T0;
  const { auto: a } = auto({ now: () => now });
  const first = a.current()!;
  assert.equal(a.renewAt(), T0 + 2 * HOUR);
  now = T0 + 2 * HOUR - 1;
  assert.deepEqual(a.current(), { tls: first.tls, changed: false });
  now = T0 + 2 * HOUR;
  const second = a.current()!;
  assert.equal(second.changed, true);
  assert.notEqual(second.tls.certPem, first.tls.certPem);
  assert.equal(second.tls.keyPem, first.tls.keyPem);
});

Deno.test("AutoTls.current() is null without a CA and reissues when the CA changes", () => {
  let ca: ReturnType<typeof createCa> | undefined;
  const { auto: a } = auto({ ca: () => ca, now: () => T0 });
  assert.equal(a.current(), null);
  ca = createCa({ clusterId: "c1", now: new Date(T0) });
  const one = a.current()!;
  ca = createCa({ clusterId: "c1", now: new Date(T0) });
  const two = a.current()!;
  assert.equal(two.changed, true);
  assert.ok(new X509Certificate(two.tls.certPem).verify(new X509Certificate(ca.certPem).publicKey));
  assert.notEqual(one.tls.certPem, two.tls.certPem);
});

Deno.test("serveAutoTls() waits for the CA without listening, then starts https once", async () => {
  // deno-lint-ignore prefer-const -- reassigned below (deno lint misses it after the awaits)
  let ca: ReturnType<typeof createCa> | undefined;
  const { auto: a } = auto({ ca: () => ca, now: () => Date.now() });
  const started: TlsMaterial[] = [];
  const lines: string[] = [];
  let notify = () => {};
  const serving = await serveAutoTls(a, {
    start: (tls) => (started.push(tls), Promise.resolve()),
    renew: () => Promise.reject(new Error("no renewal expected")),
    subscribe: (fn) => {
      notify = fn;
      return () => (notify = () => {});
    },
    log: (l) => lines.push(l),
    onFatal: (e) => assert.fail(String(e)),
  });
  assert.equal(started.length, 0);
  assert.deepEqual(lines, ["api: waiting for the cluster CA to serve https (--http-tls auto)"]);
  notify(); // a store change without a CA
  await Promise.resolve();
  assert.equal(started.length, 0);
  ca = createCa({ clusterId: "c1", now: new Date() });
  notify();
  notify();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(started.length, 1);
  const first = started[0]!;
  assert.ok(
    new X509Certificate(first.certPem).verify(new X509Certificate(ca.certPem).publicKey),
  );
  serving.stop();
});

Deno.test("AutoTls certificates are server-only: no member identity, refused for client use", async () => {
  const { ca, auto: a } = auto({ now: () => Date.now() });
  const { tls } = a.current()!;
  assert.throws(() => certInfo(tls.certPem), /not a berth member certificate/);
  assert.ok(!new X509Certificate(tls.certPem).subjectAltName?.includes("URI:"));
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, ca.certPem);
    await Deno.writeTextFile(`${dir}/api.pem`, tls.certPem);
    const verify = async (purpose: string) =>
      (await new Deno.Command("openssl", {
        args: ["verify", "-CAfile", `${dir}/ca.pem`, "-purpose", purpose, `${dir}/api.pem`],
        stdout: "null",
        stderr: "null",
      }).output()).success;
    assert.equal(await verify("sslserver"), true);
    assert.equal(await verify("sslclient"), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
