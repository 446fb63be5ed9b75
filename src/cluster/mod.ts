/**
 * Running consensus for real: the Raft cluster (raft_cluster.ts) on a durable SQLite log
 * (raft_storage.ts) and a TCP transport (transport.ts). LocalCluster commits on one node without
 * Raft, behind the same Cluster interface (tests of the parts above it use it).
 *
 * @module
 */
export * from "./types.ts";
export * from "./errors.ts";
export { GROUP_COMMIT_MAX, LocalCluster } from "./local.ts";
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
