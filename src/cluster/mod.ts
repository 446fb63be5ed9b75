/**
 * Running consensus for real: the Raft cluster (raft_cluster.ts) on a durable SQLite log
 * (raft_storage.ts) and a TCP transport (transport.ts). Tests of the parts above it use
 * LocalCluster (testing.ts, not exported here), which commits on one node without Raft.
 *
 * @module
 */
export * from "./types.ts";
export * from "./errors.ts";
export { RaftCluster, type RaftClusterOptions } from "./raft_cluster.ts";
export { type Identity, SqliteRaftStorage } from "./raft_storage.ts";
export {
  FRAME_BYTES_MAX_DEFAULT,
  type Hello,
  PROTOCOL_VERSION,
  RemoteError,
  Transport,
  TransportError,
  type TransportOptions,
} from "./transport.ts";
export {
  CA_CERT_FILE,
  JOIN_TOKEN_FILE,
  NODE_CERT_FILE,
  NODE_KEY_FILE,
  NodeCredentials,
} from "./credentials.ts";
export { BOOTSTRAP_TOKEN_TTL_MS, MIGRATE_HINT } from "./_security.ts";
