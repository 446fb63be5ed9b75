/**
 * The log entry being applied, as every apply function sees it (apply.ts and its families).
 *
 * @module
 */
import type { StoreDb } from "./db.ts";
import type { ChangeSet } from "./change_feed.ts";
import type { RestoreStaging } from "./restore_staging.ts";

/** Where the entry writes, its index, and what it has changed so far. */
export interface ApplyStep {
  sql: StoreDb;
  restore: RestoreStaging;
  index: number;
  change: ChangeSet;
}
