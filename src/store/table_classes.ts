/**
 * Which store tables a user snapshot (`berth snapshot save`, GET /v1/snapshot) may carry, and how.
 * Every table of the store has one class, and a test fails on a table without one, so a new
 * table holding secrets cannot slip into backups unnoticed:
 *
 * - `user`: in every user snapshot, replaced by a restore (services, nodes, KV);
 * - `secret`: keys, token hashes and what goes with them; only in a snapshot saved with
 *   `--include-secrets`, sealed with the passphrase. A restore replaces only those in
 *   SECRET_TABLES_RESTORED, and only when given the passphrase;
 * - `local`: this cluster's own (membership, request ids, sessions, certificates issued to its
 *   members, restore staging): never in a user snapshot, never replaced by a restore.
 *
 * @module
 */
export type TableClass = "user" | "secret" | "local";

/** Every table of the store (staging twins `restore_*` are `local` by name), by class. */
export const TABLE_CLASSES: Readonly<Record<string, TableClass>> = {
  nodes: "user",
  instances: "user",
  service_index: "user",
  kv: "user",
  meta: "local",
  members: "local",
  cluster: "local",
  requests: "local",
  restore_staging: "local",
  sessions: "local",
  kv_locks: "local",
  // Derived from instances (check_holders.ts), rebuilt after a restore or an install.
  check_holders: "local",
  lock_delays: "local",
  // ACL policies are not secret, but tokens name them by id: the two travel and restore together.
  acl_policies: "secret",
  acl_tokens: "secret",
  // The cluster CA (its key) and the join tokens: backed up sealed, never restored (a cluster
  // keeps its own CA and tokens).
  pki: "secret",
  join_tokens: "secret",
  // Certificates issued to this cluster's members, and their revocations.
  certs: "local",
  // Certificates the proxy serves, their keys sealed under the cluster key: in a snapshot only
  // with the secrets, their keys then opened inside the passphrase seal and sealed again under
  // the target cluster's key by the restore (src/api/snapshot_secrets.ts).
  edge_certs: "secret",
  // ACME: the account and certificate keys in them are sealed with this cluster's key, which no
  // other cluster has; a restored or new cluster makes its own account and orders.
  acme_lease: "local",
  acme_accounts: "local",
  acme_names: "local",
  acme_challenges: "local",
};

/** Secret tables, in the order a sealed section carries them. */
export const SECRET_TABLES: readonly string[] = Object.entries(TABLE_CLASSES)
  .filter(([, c]) => c === "secret").map(([t]) => t);

/** Secret tables a restore replaces, when it opens the snapshot's sealed section. */
export const SECRET_TABLES_RESTORED = ["acl_policies", "acl_tokens", "edge_certs"] as const;

/** The class of `table`; undefined for a table nobody classified (a bug the test catches). */
export function tableClass(table: string): TableClass | undefined {
  if (table.startsWith("restore_") && table !== "restore_staging") return "local";
  return TABLE_CLASSES[table];
}
