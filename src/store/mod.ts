/**
 * The replicated store: types, command validation and the SQLite state machine.
 *
 * @module
 */
export * from "./types.ts";
export { isServed, Store, type StoreOptions } from "./store.ts";
export {
  BATCH_COMMANDS_MAX,
  CommandError,
  instanceId,
  NAME_BYTES_MAX,
  validateCommand,
  validateInstance,
  VALUE_BYTES_MAX,
} from "./validate.ts";
