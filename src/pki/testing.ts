/**
 * For tests anywhere in berth that need an edge certificate (store, API, CLI, proxy): a leaf
 * for some DNS names with its key, signed by a throwaway CA (ECDSA P-256), chain leaf first.
 * Not exported from mod.ts.
 *
 * @module
 */
import { createCa } from "./ca.ts";
import { generateKeyPair, issueCertificate } from "./x509.ts";

/** A test certificate: `certPem` is the leaf then its CA; `keyPem` the leaf's key (PKCS#8). */
export interface TestEdgeCert {
  certPem: string;
  leafPem: string;
  caPem: string;
  keyPem: string;
}

/**
 * A leaf for `names` (SAN DNS in that order; when the first is a wildcard `*.d`, `wild.d` comes
 * first, as the issuer needs one plain name), valid from `now` − 5 min for `ttlMs` (default 30
 * days): pass a past `now` for an expired one.
 */
export function testEdgeCert(
  names: readonly string[],
  opts: { now?: Date; ttlMs?: number } = {},
): TestEdgeCert {
  const now = opts.now ?? new Date();
  const ttlMs = opts.ttlMs ?? 30 * 86_400_000;
  const ca = createCa({ clusterId: "edge-test", now, ttlMs: ttlMs + 86_400_000 });
  const pair = generateKeyPair();
  const [first, ...rest] = names;
  if (first === undefined) throw new Error("testEdgeCert: no name");
  const { certPem } = issueCertificate({
    ca,
    publicKeySpkiDer: pair.publicKeySpkiDer,
    node: first.replace(/^\*\./, "wild."),
    clusterId: "edge-test",
    now,
    ttlMs,
    dnsNames: first.startsWith("*.") ? names.slice() : rest,
    serverOnly: true,
  });
  return {
    certPem: `${certPem.trim()}\n${ca.certPem.trim()}\n`,
    leafPem: certPem,
    caPem: ca.certPem,
    keyPem: pair.privateKeyPem,
  };
}
