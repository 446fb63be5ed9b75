/**
 * # pki — berth's cluster CA, member certificates and secrets
 *
 * | file         | what                                                                 |
 * |--------------|----------------------------------------------------------------------|
 * | `der.ts`     | ASN.1 DER encoder and element reader                                 |
 * | `x509.ts`    | key pairs, leaf certificates, `certInfo`, CA pin, `verifyIssued`     |
 * | `ca.ts`      | `createCa` at bootstrap, `loadCa` for `--ca-cert/--ca-key`           |
 * | `secrets.ts` | random token secrets, their hashes, constant-time comparison         |
 * | `seal.ts`    | passphrase encryption (scrypt + AES-256-GCM)                         |
 * | `acme_certs.ts` | ACME's PKCS#10 CSR and the TLS-ALPN-01 challenge certificate      |
 * | `cluster_key.ts` | the cluster key (`<data-dir>/cluster-key`) and its `SecretBox`   |
 * | `edge_cert.ts` | edge certificates handed in: checked, read, their key sealed         |
 *
 * Keys are ECDSA P-256 everywhere; certificates are X.509 v3 signed with ecdsa-with-SHA256.
 * Times stored or sent are ms since the epoch.
 *
 * @module
 */
export { CA_TTL_MS, createCa, loadCa } from "./ca.ts";
export {
  type Ca,
  caPin,
  type CertInfo,
  certInfo,
  CLOCK_SKEW_MS,
  generateKeyPair,
  issueCertificate,
  type IssueOptions,
  type KeyPair,
  publicKeyHash,
  verifyIssued,
} from "./x509.ts";
export { hashSecret, randomSecret, sameHash, SECRET_BYTES } from "./secrets.ts";
export { OPEN_FAILED, openWithPassphrase, sealWithPassphrase } from "./seal.ts";
export {
  CLUSTER_KEY_BYTES,
  CLUSTER_KEY_FILE,
  ClusterKey,
  ClusterKeyBox,
  loadClusterKey,
  loadOrCreateClusterKey,
  NoClusterKeyError,
  saveClusterKey,
  type SecretBox,
} from "./cluster_key.ts";
export {
  CERT_CHAIN_CHARS_MAX,
  CERT_CHAIN_MAX,
  CERT_KEY_CHARS_MAX,
  CERT_NAMES_MAX,
  type CertFacts,
  certFacts,
  checkCertAndKey,
  type CheckedCert,
  edgeKeyContext,
  isCertDnsName,
  openEdgeKey,
  parseChain,
  RSA_BITS_MIN,
  type SealedEdgeCert,
  sealEdgeCert,
} from "./edge_cert.ts";
export {
  ACME_IDENTIFIER_OID,
  type ChallengeCert,
  createCsr,
  CSR_NAMES_MAX,
  dnsNameProblem,
  tlsAlpnChallengeCertificate,
} from "./acme_certs.ts";
