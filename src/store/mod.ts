/**
 * The replicated store: types, command validation, the SQLite state machine, and how an
 * instance's health is derived from its sources (health.ts).
 *
 * @module
 */
export * from "./types.ts";
export * from "./tls_meta.ts";
export * from "./edge_meta.ts";
export * from "./acme_types.ts";
export * from "./acme_commands.ts";
export type { AcmeState } from "./acme_state.ts";
export { ACME_NAMES_MAX } from "./acme_state.ts";
export {
  type ApplyEntry,
  REQUEST_WINDOW_ENTRIES,
  type SnapshotFileInfo,
  Store,
  type StoreOptions,
} from "./store.ts";
export * from "./snapshot_limits.ts";
export * from "./session_commands.ts";
export type { Sessions } from "./sessions.ts";
export type { PkiState, StoredCa } from "./pki_state.ts";
export * from "./pki_commands.ts";
export {
  EDGE_CERT_ISSUER_CHARS_MAX,
  EDGE_CERT_NAME_RE,
  EDGE_CERT_PEM_CHARS_MAX,
  EDGE_CERTS_MAX,
  EDGE_KEY_SEALED_CHARS_MAX,
  edgeCertNameProblem,
} from "./edge_cert_rules.ts";
export { isReadOnlyTxn, runTxn, type TxnStore } from "./txn.ts";
export {
  encodeFrame,
  encodeHeader,
  SEALED_BYTES_MAX,
  SnapshotDecoder,
  type SnapshotFrame,
  type SnapshotHeader,
  type SnapshotKind,
  USER_TABLES,
} from "./snapshot_format.ts";
export type { Seal, SnapshotSource } from "./snapshot_io.ts";
export {
  SECRET_TABLES,
  SECRET_TABLES_RESTORED,
  TABLE_CLASSES,
  type TableClass,
  tableClass,
} from "./table_classes.ts";
export {
  isLegacySnapshot,
  LEGACY_SNAPSHOT_BYTES_MAX,
  legacySnapshotFrames,
  legacySnapshotStream,
} from "./snapshot_legacy.ts";
export {
  AWAITING_CHECK_OUTPUT,
  checkDefinitionKey,
  type Health,
  type HealthSources,
  instanceHealth,
  type NodeHealthSource,
  ownCheckVerdict,
  type Verdict,
} from "./health.ts";
export {
  checkOnNode,
  type CheckReader,
  checksOfNode,
  checkStatus,
  type CheckView,
  instanceChecks,
  type NodeCheckSource,
  nodeLevelChecks,
  SERF_CHECK_ID,
  serfCheck,
} from "./checks.ts";
export {
  BATCH_COMMANDS_MAX,
  CHECK_INTERVAL_MAX_MS,
  CHECK_INTERVAL_MIN_MS,
  CHECK_OUTPUT_CHARS_MAX,
  CHECK_TIMEOUT_MAX_MS,
  CHECK_TIMEOUT_MIN_MS,
  CHECK_TTL_MAX_MS,
  CHECKS_PER_TARGET_MAX,
  CommandError,
  instanceId,
  NAME_BYTES_MAX,
  rules,
  SERVICE_NAME_CHARS_MAX,
  TAGS_MAX,
  validateCommand,
  validateInstance,
  VALUE_BYTES_MAX,
} from "./validate.ts";
export {
  ACL_BOOTSTRAP_DONE,
  ANONYMOUS_ACCESSOR,
  ANONYMOUS_SECRET,
  GLOBAL_MANAGEMENT_ID,
  GLOBAL_MANAGEMENT_NAME,
} from "./acl_tables.ts";
export {
  ACL_DESCRIPTION_CHARS_MAX,
  ACL_LINKS_MAX,
  ACL_UUID_RE,
  aclPolicyName,
  aclRules,
  aclUuid,
} from "./acl_commands.ts";
export { LB_META_KEY, LB_POLICIES, type LbPolicy, parseLbPolicy } from "./lb_policy.ts";
export { HTTP_PROTO_META_KEY, HTTP_PROTOS, type HttpProto, parseHttpProto } from "./http_proto.ts";
export * from "./route_key.ts";
export * from "./route_keys.ts";
export * from "./route_keys_http.ts";
export * from "./route_keys_limits.ts";
export * from "./route_keys_lb.ts";
export * from "./route_keys_l4.ts";
