/**
 * Test certificates for the TLS transport, issued with src/pki like the cluster's own: a CA and
 * member certificates (CN and DNS name = node, URI `berth://<clusterId>/node/<node>`). Test code
 * only.
 *
 * @module
 */
import { createCa, generateKeyPair, issueCertificate } from "../pki/mod.ts";
import type { TlsCredentials } from "./_transport_shared.ts";

export interface TestCa {
  caPem: string;
  /** A fresh key and a certificate for `node` (valid from `now` for one hour), signed by this CA. */
  issue(node: string, o?: { clusterId?: string; now?: Date }): TlsCredentials & { serial: string };
}

/** A new test CA (ECDSA P-256) of cluster `clusterId`, valid from `now` for ten years. */
export function testCa(clusterId = "c1", now = new Date()): TestCa {
  const ca = createCa({ clusterId, now });
  return {
    caPem: ca.certPem,
    issue(node, o = {}) {
      const keys = generateKeyPair();
      const cert = issueCertificate({
        ca,
        publicKeySpkiDer: keys.publicKeySpkiDer,
        node,
        clusterId: o.clusterId ?? clusterId,
        now: o.now ?? new Date(),
        ttlMs: 3_600_000,
      });
      return {
        keyPem: keys.privateKeyPem,
        certPem: cert.certPem,
        caPem: ca.certPem,
        serial: cert.serial,
      };
    },
  };
}
