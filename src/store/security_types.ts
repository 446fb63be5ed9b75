/**
 * Plain data types of the replicated state's security records: edge certificates (the HTTPS
 * listener's), member certificates and join tokens (src/pki/), ACL policies and tokens
 * (src/acl/). Re-exported by types.ts, whose Command union carries them.
 *
 * @module
 */

/**
 * A certificate the HTTPS listener serves, as the replicated store keeps it. The facts read
 * from the certificate (names, issuer, times, serial, fingerprint) are read by the proposer
 * (src/pki/edge_cert.ts) and carried in `cert.put`, so apply never parses X.509.
 */
export interface EdgeCert {
  /** The name it is managed by (`berth cert add --name`, the ACME name). */
  name: string;
  /** SAN DNS names (else the CN), lower-case; may be `*.example.com`. */
  names: string[];
  /** PEM: the leaf, then its chain. */
  certPem: string;
  /** The private key, sealed under the cluster key (src/pki/cluster_key.ts), context `edge-cert:NAME`. */
  keySealed: string;
  /** The issuer's distinguished name, on one line. */
  issuer: string;
  /** ms since the epoch. */
  notBefore: number;
  notAfter: number;
  source: "manual" | "acme";
  /** Served for a name no other certificate has (at most one certificate is the default). */
  isDefault: boolean;
  /** Lower-case hex. */
  serial: string;
  /** sha256 of the leaf's DER, lower-case hex. */
  fingerprint: string;
}

/** A member certificate as the replicated state keeps it (its serial for the deny list). */
export interface CertRecord {
  /** Lower-case hex. */
  serial: string;
  node: string;
  notAfter: number;
  /** sha256 (lower-case hex) of the certificate's public key (SPKI DER). */
  key: string;
}

/** A join token as `berth token list` shows it (never its secret or hash). */
export interface JoinTokenInfo {
  id: string;
  created: number;
  /** null: no expiry. */
  expires: number | null;
  /** null: any number of joins. */
  usesLeft: number | null;
  revokedAt: number | null;
  description: string;
}

/** An ACL policy as proposed (Consul's fields; rules checked by src/acl/rules.ts). */
export interface AclPolicySpec {
  /** A UUID. */
  id: string;
  name: string;
  description: string;
  rules: string;
  datacenters: string[];
}

export interface AclPolicy extends AclPolicySpec {
  createIndex: number;
  modifyIndex: number;
}

/** A token's link to a policy, by id or by name (Consul's `Policies: [{ID}|{Name}]`). */
export interface AclPolicyLink {
  id?: string;
  name?: string;
}

/** An ACL token as proposed: never its secret, only the secret's sha256 (hex). */
export interface AclTokenSpec {
  /** A UUID: how the token is named in lists and deletes (Consul's AccessorID). */
  accessorId: string;
  /** sha256 hex of the secret; absent: keep the existing token's. */
  secretHash?: string;
  description: string;
  policies: AclPolicyLink[];
  local: boolean;
  /** When the proposer created it (ms since epoch). */
  createTimeMs: number;
}

/** A stored token: its policies as ids (a link to a deleted policy is dropped when read). */
export interface AclToken {
  accessorId: string;
  description: string;
  policyIds: string[];
  local: boolean;
  createTimeMs: number;
  createIndex: number;
  modifyIndex: number;
}
