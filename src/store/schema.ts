/**
 * The store's tables and how a store file is opened: pragmas, tables created when missing, the
 * schema version checked, and a schema-1 file brought to this schema in place (migrate.ts).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { Row } from "./db.ts";
import { migrateInstanceRows } from "./migrate.ts";
import { SNAPSHOT_SCHEMA, STAGING_PREFIX } from "./snapshot_format.ts";
import { ensureUserIndexes, USER_SCHEMA } from "./restore_staging.ts";
import { SESSION_SCHEMA } from "./sessions.ts";
import { ACL_SCHEMA, seedAclBuiltins } from "./acl_tables.ts";
import { PKI_SCHEMA } from "./pki_state.ts";
import { EDGE_CERTS_SCHEMA } from "./edge_certs.ts";
import { ACME_SCHEMA } from "./acme_state.ts";
import { CHECK_HOLDERS_SCHEMA, rebuildCheckHolders } from "./check_holders.ts";

/** 2: instance health kept per source (`docker`, `checkResult`); 1 is read through migrate.ts. */
const SCHEMA_VERSION = SNAPSHOT_SCHEMA;
const SCHEMA_VERSIONS_READ = [1, 2];

/** Staging twins of the ACL tables for a restore: their schema (keys, unique columns), renamed. */
const ACL_STAGING_SCHEMA = ACL_SCHEMA.replaceAll(
  "CREATE TABLE IF NOT EXISTS acl_",
  `CREATE TABLE IF NOT EXISTS ${STAGING_PREFIX}acl_`,
);

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS members (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL, nonce TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS cluster (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS requests (
  id TEXT PRIMARY KEY, idx INTEGER NOT NULL, result TEXT NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS requests_idx ON requests(idx);
${USER_SCHEMA}${SESSION_SCHEMA}${ACL_SCHEMA}${ACL_STAGING_SCHEMA}${PKI_SCHEMA}${EDGE_CERTS_SCHEMA}${ACME_SCHEMA}${CHECK_HOLDERS_SCHEMA}`;

export interface StoreOptions {
  /** SQLite `synchronous` level; FULL (the default) fsyncs every commit. */
  synchronous?: "FULL" | "NORMAL" | "OFF";
  /**
   * Whether a commit that grew the WAL past 1000 pages checkpoints it (default true). False when
   * another thread checkpoints the file (the agent's raft log worker, src/cluster/log_worker.ts),
   * so that no commit on the event loop copies the WAL into the database and fsyncs it.
   */
  autoCheckpoint?: boolean;
}

/**
 * Opens (creating if needed) the SQLite file at `path` with the store's tables at this schema;
 * throws, with the file closed, on a schema this berth does not read.
 */
export function openDatabase(path: string, options: StoreOptions = {}): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec(`PRAGMA synchronous=${options.synchronous ?? "FULL"}`);
  db.exec("PRAGMA busy_timeout=5000");
  if (options.autoCheckpoint === false) db.exec("PRAGMA wal_autocheckpoint=0");
  db.exec(SCHEMA);
  const version = db.prepare("SELECT value FROM meta WHERE key='schema'").get() as
    | Row
    | undefined;
  if (version === undefined) {
    db.prepare("INSERT INTO meta VALUES ('schema', ?)").run(SCHEMA_VERSION);
  } else if (!SCHEMA_VERSIONS_READ.includes(Number(version.value))) {
    db.close();
    throw new Error(
      `store at ${path} has schema ${version.value}, this berth reads ${
        SCHEMA_VERSIONS_READ.join(" and ")
      }`,
    );
  } else if (version.value !== SCHEMA_VERSION) {
    migrateStore(db);
  }
  ensureUserIndexes(db);
  seedAclBuiltins(db);
  // Derived from the instances, whoever wrote the file last (an install, an older berth).
  db.exec("BEGIN IMMEDIATE");
  try {
    rebuildCheckHolders(db);
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    db.close();
    throw e;
  }
  return db;
}

/** Brings a schema-1 store file to this schema in one transaction (migrate.ts). */
function migrateStore(db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const rows = db.prepare("SELECT id, data FROM instances").all() as Row[];
    migrateInstanceRows(rows);
    const update = db.prepare("UPDATE instances SET data=? WHERE id=?");
    for (const r of rows) update.run(String(r.data), String(r.id));
    db.prepare("UPDATE meta SET value=? WHERE key='schema'").run(SCHEMA_VERSION);
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    throw e;
  }
}
