import assert from "node:assert/strict";
import { type ServedCert, SniIndex } from "./sni_index.ts";

function cert(name: string, names: string[], over: Partial<ServedCert> = {}): ServedCert {
  return {
    name,
    names,
    certPem: "",
    keyPem: "",
    isDefault: false,
    fingerprint: name,
    notAfter: 1_000,
    ...over,
  };
}

Deno.test("SniIndex.lookup() picks the exact name, then a one-label wildcard, then the default", () => {
  const exact = cert("exact", ["a.example.com"]);
  const wild = cert("wild", ["*.example.com"]);
  const def = cert("def", ["default.test"], { isDefault: true });
  const index = new SniIndex([wild, exact, def]);
  const cases: [string, ServedCert][] = [
    ["a.example.com", exact],
    ["A.Example.COM.", exact],
    ["b.example.com", wild],
    ["example.com", def], // a wildcard does not cover its own parent
    ["x.b.example.com", def], // nor two labels
    ["default.test", def],
    ["other.test", def],
    ["", def], // no SNI
    ["x".repeat(300), def],
  ];
  for (const [name, want] of cases) assert.equal(index.lookup(name)?.name, want.name, name);
});

Deno.test("SniIndex.lookup() finds nothing for an unknown name when there is no default", () => {
  const index = new SniIndex([cert("a", ["a.test"]), cert("w", ["*.w.test"])]);
  assert.equal(index.lookup("b.test"), null);
  assert.equal(index.lookup(""), null);
  assert.equal(index.lookup("w.test"), null);
  assert.equal(SniIndex.EMPTY.lookup("a.test"), null);
});

Deno.test("SniIndex serves the certificate valid longest when several name one host", () => {
  const old = cert("old", ["a.test", "b.test"], { notAfter: 1_000 });
  const renewed = cert("renewed", ["a.test"], { notAfter: 2_000 });
  for (const order of [[old, renewed], [renewed, old]]) {
    const index = new SniIndex(order);
    assert.equal(index.lookup("a.test")?.name, "renewed");
    assert.equal(index.lookup("b.test")?.name, "old");
  }
});

Deno.test("SniIndex.covering() ignores the default certificate", () => {
  const def = cert("def", ["*.w.test"], { isDefault: true });
  const index = new SniIndex([def, cert("a", ["a.test"])]);
  assert.equal(index.covering("x.w.test")?.name, "def"); // by its names, it covers
  assert.equal(index.covering("b.test"), null);
  assert.equal(index.lookup("b.test")?.name, "def");
  assert.equal(index.covering("a.test")?.name, "a");
});
