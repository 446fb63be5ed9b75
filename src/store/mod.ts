/**
 * The replicated store: types, command validation and the SQLite state machine.
 *
 * @module
 */
export * from "./types.ts";
export {
  type ApplyEntry,
  decodeSnapshot as checkSnapshot,
  isServed,
  REQUEST_WINDOW_ENTRIES,
  Store,
  type StoreOptions,
} from "./store.ts";
export {
  BATCH_COMMANDS_MAX,
  CommandError,
  instanceId,
  NAME_BYTES_MAX,
  RESTORE_BYTES_MAX,
  validateCommand,
  validateInstance,
  VALUE_BYTES_MAX,
} from "./validate.ts";
