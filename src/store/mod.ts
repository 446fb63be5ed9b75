/**
 * The replicated store: types, command validation, the SQLite state machine, and how an
 * instance's health is derived from its sources (health.ts).
 *
 * @module
 */
export * from "./types.ts";
export {
  type ApplyEntry,
  decodeSnapshot as checkSnapshot,
  REQUEST_WINDOW_ENTRIES,
  Store,
  type StoreOptions,
} from "./store.ts";
export {
  AWAITING_CHECK_OUTPUT,
  checkDefinitionKey,
  type Health,
  type HealthSources,
  instanceHealth,
  type Verdict,
} from "./health.ts";
export {
  BATCH_COMMANDS_MAX,
  CHECK_INTERVAL_MAX_MS,
  CHECK_INTERVAL_MIN_MS,
  CHECK_TIMEOUT_MAX_MS,
  CHECK_TIMEOUT_MIN_MS,
  CommandError,
  instanceId,
  LB_META_KEY,
  LB_POLICIES,
  type LbPolicy,
  NAME_BYTES_MAX,
  parseLbPolicy,
  RESTORE_BYTES_MAX,
  rules,
  SERVICE_NAME_CHARS_MAX,
  TAGS_MAX,
  validateCommand,
  validateInstance,
  VALUE_BYTES_MAX,
} from "./validate.ts";
