import assert from "node:assert/strict";
import type { EdgeCert } from "../store/mod.ts";
import { ServedCerts } from "./served_certs.ts";

function edge(name: string, keySealed = `sealed-${name}`): EdgeCert {
  return {
    name,
    names: [name],
    certPem: `cert-${name}`,
    keySealed,
    issuer: "CN=test",
    notBefore: 0,
    notAfter: 1_000,
    source: "manual",
    isDefault: false,
    serial: "01",
    fingerprint: `fp-${name}`,
  };
}

Deno.test("ServedCerts.certs() opens each key once and leaves out one that does not open, logged once", () => {
  let certs = [edge("a.test"), edge("bad.test")];
  const opened: string[] = [];
  const log: string[] = [];
  const served = new ServedCerts({
    edgeCerts: () => certs,
    openKey: (c) => {
      opened.push(c.name);
      if (c.name === "bad.test") throw new Error("sealed under another cluster key");
      return `key-${c.name}`;
    },
    log: (l) => log.push(l),
  });
  for (let i = 0; i < 3; i++) {
    const out = served.certs();
    assert.deepEqual(out.map((c) => [c.name, c.keyPem, c.certPem]), [
      ["a.test", "key-a.test", "cert-a.test"],
    ]);
  }
  assert.deepEqual(opened, ["a.test", "bad.test"]);
  assert.deepEqual(log, [
    "proxy: certificate bad.test not served: its key: sealed under another cluster key",
  ]);
  // A replaced certificate (new sealed key) is opened again.
  certs = [edge("a.test"), edge("bad.test", "sealed-again")];
  assert.equal(served.certs().length, 1);
  assert.deepEqual(opened, ["a.test", "bad.test", "bad.test"]);
});

Deno.test("ServedCerts.certs() serves nothing while keys cannot be opened, said once, then opens them", () => {
  let ready = false;
  const log: string[] = [];
  const served = new ServedCerts({
    edgeCerts: () => [edge("a.test")],
    openKey: (c) => `key-${c.name}`,
    keysReady: () => ready,
    log: (l) => log.push(l),
  });
  assert.deepEqual(served.certs(), []);
  assert.deepEqual(served.certs(), []);
  assert.deepEqual(log, ["proxy: no certificate served until this member has the cluster key"]);
  ready = true;
  assert.deepEqual(served.certs().map((c) => c.name), ["a.test"]);
});
