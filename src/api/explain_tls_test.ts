import assert from "node:assert/strict";
import { tlsLines } from "./explain_tls.ts";
import type { AcmeNameState, EdgeCert } from "../store/mod.ts";

const NOW = Date.parse("2026-01-01T00:00:00Z");
const DAY = 86_400_000;

function cert(name: string, names: string[], over: Partial<EdgeCert> = {}): EdgeCert {
  return {
    name,
    names,
    certPem: "",
    keySealed: "",
    issuer: "CN=test",
    notBefore: NOW - DAY,
    notAfter: NOW + 30 * DAY,
    source: "manual",
    isDefault: false,
    serial: "01",
    fingerprint: name.padEnd(64, "0"),
    ...over,
  };
}

const base = { https: "127.0.0.1:443", acme: false, acmeState: undefined, nowMs: NOW };

Deno.test("tlsLines(): the certificate served for the host, by exact name or wildcard", () => {
  const certs = [cert("www", ["www.example.com"]), cert("wild", ["*.example.com"])];
  assert.deepEqual(tlsLines({ ...base, host: "www.example.com", certs }), [
    "certificate www (manual, for www.example.com) is served, valid until 2026-01-31T00:00:00.000Z (30 days left)",
  ]);
  assert.match(tlsLines({ ...base, host: "api.example.com", certs })[0]!, /^certificate wild /);
});

Deno.test("tlsLines(): no certificate refuses the handshake; only the default is a name mismatch; expired said", () => {
  assert.deepEqual(tlsLines({ ...base, host: "www.example.com", certs: [] }), [
    "no certificate for www.example.com (none names it, no default): the TLS handshake is refused",
  ]);
  const def = cert("def", ["other.test"], { isDefault: true, notAfter: NOW - DAY });
  assert.deepEqual(tlsLines({ ...base, host: "www.example.com", certs: [def] }), [
    "no certificate names www.example.com: the default certificate def (for other.test) is " +
    "served, which clients refuse as a name mismatch; expired at 2025-12-31T00:00:00.000Z: clients refuse it",
  ]);
});

Deno.test("tlsLines(): no HTTPS listener; an ACME host's order state", () => {
  assert.deepEqual(tlsLines({ ...base, https: null, host: "a.test", certs: [] }), [
    "this member serves no HTTPS (--proxy-https is off): the connection is refused",
  ]);
  const state: AcmeNameState = {
    name: "a.test",
    directory: "https://acme.test/dir",
    order: null,
    challenges: [],
    failures: 2,
    nextAttemptMs: NOW + 90_000,
    lastError: "urn:ietf:params:acme:error:dns: NXDOMAIN",
    lastErrorMs: NOW - 1000,
    renew: false,
    createIndex: 1,
    modifyIndex: 2,
  };
  assert.deepEqual(tlsLines({ ...base, host: "a.test", certs: [], acme: true, acmeState: state }), [
    "no certificate for a.test (none names it, no default): the TLS handshake is refused",
    "ACME (berth.tls=acme) for a.test: no order in flight; 2 failures in a row; last error: " +
    "urn:ietf:params:acme:error:dns: NXDOMAIN; next try in 90 s",
  ]);
  assert.equal(
    tlsLines({ ...base, host: "a.test", certs: [], acme: true })[1],
    "ACME (berth.tls=acme): no order for a.test yet",
  );
});
