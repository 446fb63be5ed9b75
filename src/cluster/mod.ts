/**
 * Running consensus for real. For now a single-node LocalCluster; the Raft cluster sits behind
 * the same Cluster interface.
 *
 * @module
 */
export * from "./types.ts";
export { GROUP_COMMIT_MAX, LocalCluster } from "./local.ts";
