/**
 * The replicated ACME state (acme_state.ts) as plain data: the lease that fences the ordering
 * leader, the account per directory, and one row per name being ordered with its challenges.
 *
 * @module
 */

/** An order's status as the CA gives it (RFC 8555 §7.1.6). */
export type AcmeOrderStatus = "pending" | "ready" | "processing" | "valid" | "invalid";
export const ACME_ORDER_STATUSES: readonly AcmeOrderStatus[] = [
  "pending",
  "ready",
  "processing",
  "valid",
  "invalid",
];

/** The challenge types berth answers. */
export type AcmeChallengeType = "http-01" | "tls-alpn-01";
export const ACME_CHALLENGE_TYPES: readonly AcmeChallengeType[] = ["http-01", "tls-alpn-01"];

/** Who orders now: the leader that claimed it, in its Raft term. */
export interface AcmeLease {
  term: number;
  node: string;
  sinceMs: number;
}

/** The ACME account of one directory: made once per cluster (its key first, first wins). */
export interface AcmeAccount {
  directory: string;
  email: string;
  /** The account key (a private JWK, JSON) sealed with the cluster's SecretBox. */
  keySealed: string;
  /** The account URL once the CA registered the key; null before. */
  url: string | null;
  createdMs: number;
}

/** A challenge being answered: what any member needs to answer it. */
export interface AcmeChallenge {
  type: AcmeChallengeType;
  token: string;
  keyAuthorization: string;
}

/** The order in flight for a name. */
export interface AcmeOrder {
  url: string;
  status: AcmeOrderStatus;
  /** When the CA lets the order expire (ms), null when it did not say. */
  expiresMs: number | null;
  /** The certificate's private key (PKCS#8 PEM), sealed, made before the order is finalized. */
  keySealed: string;
}

/** One name ACME works on: its order in flight, its challenges, its failures. */
export interface AcmeNameSpec {
  name: string;
  /** The directory the order was made with ("" before the first order). */
  directory: string;
  order: AcmeOrder | null;
  challenges: AcmeChallenge[];
  /** Failed attempts in a row (the backoff grows with it). */
  failures: number;
  /** Not before this time (the leader's clock, ms) does the leader try again. */
  nextAttemptMs: number;
  /** The CA's (or the network's) last error, "" when none. */
  lastError: string;
  lastErrorMs: number;
  /** A renewal was asked (`berth cert renew`): ordered even while the certificate is fresh. */
  renew: boolean;
}

export interface AcmeNameState extends AcmeNameSpec {
  createIndex: number;
  modifyIndex: number;
}

/**
 * The ACME commands. Every one written by the ordering leader carries the `term` it claimed the
 * lease in; apply refuses it unless that is the lease's term, so a deposed leader's late write
 * changes nothing. Writes of a name carry the `expectIndex` (its row's modifyIndex when read, 0
 * for none) and are refused when the row changed meanwhile.
 */
export type AcmeCommand =
  /** A new leader takes the lease; refused for a term below the lease's. */
  | { type: "acme.claim"; term: number; node: string; nowMs: number }
  /** The account key, proposed before the CA sees it; refused when the directory has one. */
  | { type: "acme.account.create"; term: number; account: Omit<AcmeAccount, "url"> }
  /** The account URL the CA gave for the stored key. */
  | { type: "acme.account.url"; term: number; directory: string; url: string }
  | { type: "acme.name.set"; term: number; expectIndex: number; state: AcmeNameSpec }
  | { type: "acme.name.drop"; term: number; expectIndex: number; name: string }
  /** `berth cert renew NAME`: order the name again now (from any member, no lease). */
  | { type: "acme.renew"; name: string; nowMs: number };

export const ACME_COMMAND_TYPES: readonly AcmeCommand["type"][] = [
  "acme.claim",
  "acme.account.create",
  "acme.account.url",
  "acme.name.set",
  "acme.name.drop",
  "acme.renew",
];
