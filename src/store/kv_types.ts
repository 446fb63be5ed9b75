/**
 * Plain data types of the KV store's Consul features: sessions (sessions.ts) and transactions
 * (txn.ts). Re-exported by types.ts, whose Command union carries them.
 *
 * @module
 */

/** What a session does with the keys it holds when it ends. */
export type SessionBehavior = "release" | "delete";

/** A session as its creator gives it (Consul's session fields; sessions.ts). */
export interface SessionSpec {
  /** A UUID, chosen by the proposer. */
  id: string;
  name: string;
  node: string;
  /** Check ids of the node's own checks (`serfHealth`: the node's liveness). */
  nodeChecks: string[];
  /** Check ids of service checks on the node (`service:<instance-id>`). */
  serviceChecks: string[];
  /** How long the keys it held refuse a new lock after it ends. */
  lockDelayMs: number;
  behavior: SessionBehavior;
  /** The TTL as the creator wrote it (`"15s"`), empty for none; `ttlMs` is its value. */
  ttl: string;
  ttlMs: number;
}

export interface Session extends SessionSpec {
  createIndex: number;
  modifyIndex: number;
}

/** The KV operations of a transaction, as Consul names them. */
export const TXN_VERBS = [
  "set",
  "cas",
  "lock",
  "unlock",
  "get",
  "get-tree",
  "check-index",
  "check-session",
  "check-not-exists",
  "delete",
  "delete-tree",
  "delete-cas",
] as const;
export type TxnVerb = typeof TXN_VERBS[number];

/** One operation of a `txn` (which fields it uses depends on its verb, as in Consul). */
export interface TxnOp {
  verb: TxnVerb;
  key: string;
  value: Uint8Array;
  flags: number;
  /** The ModifyIndex `cas`, `delete-cas` and `check-index` compare with. */
  index: number;
  /** The session of `lock`, `unlock` and `check-session` (empty: none). */
  session: string;
}

/** A KV entry a transaction reports; `value` (base64) is null for writes and checks. */
export interface TxnEntry {
  key: string;
  value: string | null;
  flags: number;
  session: string | null;
  lockIndex: number;
  createIndex: number;
  modifyIndex: number;
}

export type TxnOutcome =
  | { results: TxnEntry[] }
  | { errors: { opIndex: number; what: string }[] };
