/**
 * A restore of a user snapshot replicated in bounded pieces (the `restore.*` commands), applied
 * the same way on every replica:
 *
 * - `begin(id)` empties the staging area and starts restore `id` (a restore under way is
 *   replaced: its next chunk is refused);
 * - `chunk(id, seq, data)` takes chunks strictly in order: the complete frames in it are checked
 *   (SnapshotDecoder) and their rows staged in the restore_* tables; the bytes of an unfinished
 *   frame wait in restore_staging for the next chunk, and the decoder's state in the `cluster`
 *   table. A chunk that does not check out ends the restore. A chunk sent again (seq below the
 *   one expected: its sender did not learn that it applied) is taken as done and changes
 *   nothing; one ahead of its turn is refused with `restoreNext` and changes nothing either, so
 *   the sender can send again from there;
 * - `commit(index, {id, chunks, bytes, acl})`: every chunk must be there and the snapshot's end
 *   seen; then the staged tables become the live ones by renaming (no copy of the data, and no
 *   index built: the staged rows were indexed as they came, so the apply that swaps a large
 *   store in stays short), or nothing changes. With `acl` (the member
 *   that streamed the restore opened the snapshot's sealed section with its passphrase) the
 *   staged ACL policies and tokens replace the live ones too (copied: they are small); without
 *   it the cluster's ACL tables stay as they are. With `certs` (the same member re-sealed the
 *   section's certificate keys under this cluster's key, src/api/snapshot_secrets.ts) the staged
 *   edge certificates, checked by `cert.put`'s rules, replace the live ones. The staging area is
 *   emptied either way;
 * - `abort(id)` empties it.
 *
 * The staging tables are part of the store, so a Raft snapshot taken mid-restore carries them.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { errorText } from "../lib/error_text.ts";
import {
  type DecoderState,
  SnapshotDecoder,
  STAGED_TABLES,
  STAGING_PREFIX,
  type USER_TABLES,
} from "./snapshot_format.ts";
import { insertFrame } from "./snapshot_io.ts";
import type { ApplyResult } from "./types.ts";
import { stagedEdgeCertsProblem } from "./edge_cert_rules.ts";

/** Columns of the tables a restore replaces; the restore_* staging tables have the same. */
const USER_TABLE_COLUMNS: Record<typeof USER_TABLES[number], string> = {
  nodes: `name TEXT PRIMARY KEY, data TEXT NOT NULL,
  create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL`,
  instances: `id TEXT PRIMARY KEY, service TEXT NOT NULL, node TEXT NOT NULL, data TEXT NOT NULL,
  create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL`,
  service_index: `service TEXT PRIMARY KEY, idx INTEGER NOT NULL`,
  kv: `key TEXT PRIMARY KEY, value BLOB NOT NULL, flags INTEGER NOT NULL,
  create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL, lock_index INTEGER NOT NULL`,
};
/**
 * The indexes of `instances` (and of its staging twin), by their columns: by service, and by
 * node then service (which serves a node's instances too).
 */
const INSTANCE_INDEXES = [["service"], ["node", "service"]] as const;
/** Indexes an older store has that INSTANCE_INDEXES replaced. */
const INSTANCE_INDEXES_DROPPED = ["node"];

/**
 * Gives `instances` and `restore_instances` each index of INSTANCE_INDEXES they lack, and drops
 * the replaced ones (at open, and after a commit). The staging table's indexes fill as chunks
 * stage rows, so the commit that renames it in builds no index (building them took ~250 ms at
 * 100,000 instances, in one apply). An index keeps its name when its table is renamed, so the
 * names alternate between `instances_<columns>` and `restore_instances_<columns>`: a new one
 * takes whichever is free.
 */
export function ensureUserIndexes(db: DatabaseSync): void {
  const taken = new Set(
    (db.prepare("SELECT name FROM sqlite_master WHERE type='index'").all() as Row[])
      .map((r) => String(r.name)),
  );
  for (const table of ["instances", `${STAGING_PREFIX}instances`]) {
    const indexed = new Set<string>();
    for (const ix of db.prepare(`PRAGMA index_list(${table})`).all() as Row[]) {
      const name = String(ix.name);
      const cols = (db.prepare(`PRAGMA index_info("${name}")`).all() as Row[])
        .map((c) => String(c.name)).join(",");
      if (ix.origin === "c" && INSTANCE_INDEXES_DROPPED.includes(cols)) {
        db.exec(`DROP INDEX "${name}"`);
        taken.delete(name);
      } else indexed.add(cols);
    }
    for (const cols of INSTANCE_INDEXES) {
      if (indexed.has(cols.join(","))) continue;
      const suffix = cols.join("_");
      const name = [`instances_${suffix}`, `${STAGING_PREFIX}instances_${suffix}`]
        .find((n) => !taken.has(n))!;
      db.exec(`CREATE INDEX ${name} ON ${table}(${cols.join(", ")})`);
      taken.add(name);
    }
  }
}

function createTable(name: string, columns: string): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (\n  ${columns}) STRICT;\n`;
}

/**
 * The user tables, their staging twins and the staging area, for the store's schema (their
 * indexes: ensureUserIndexes()).
 */
export const USER_SCHEMA = `
CREATE TABLE IF NOT EXISTS restore_staging (seq INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT;
${
  Object.entries(USER_TABLE_COLUMNS).map(([t, cols]) =>
    createTable(t, cols) + createTable(STAGING_PREFIX + t, cols)
  ).join("")
}`;

const ACL_TABLES = ["acl_policies", "acl_tokens"] as const;

/** The restore under way, kept in the `cluster` table. */
interface Staging {
  id: string;
  /** The chunk expected next. */
  next: number;
  decoder: DecoderState;
}

type Row = Record<string, unknown>;

export class RestoreStaging {
  readonly #db: DatabaseSync;
  readonly #stmt: (sql: string) => StatementSync;

  /** `stmt`: the store's cache of prepared statements. */
  constructor(db: DatabaseSync, stmt: (sql: string) => StatementSync) {
    this.#db = db;
    this.#stmt = stmt;
  }

  begin(id: string): ApplyResult {
    this.#drop();
    this.#set({ id, next: 0, decoder: new SnapshotDecoder().state });
    return { ok: true };
  }

  abort(id: string): ApplyResult {
    if (this.#get()?.id === id) this.#drop();
    return { ok: true };
  }

  chunk(id: string, seq: number, data: Uint8Array): ApplyResult {
    const st = this.#get();
    if (st?.id !== id) return notUnderWay(id);
    if (seq < st.next) return { ok: true };
    if (seq > st.next) {
      return {
        ok: false,
        error: `restore: chunk ${seq} arrived, chunk ${st.next} expected`,
        restoreNext: st.next,
      };
    }
    const db = this.#db;
    const dec = new SnapshotDecoder(st.decoder, this.#tail());
    db.exec("SAVEPOINT chunk");
    try {
      for (const f of dec.push(data)) {
        insertFrame(db, f, { only: STAGED_TABLES, prefix: STAGING_PREFIX });
      }
      this.#stmt("DELETE FROM restore_staging").run();
      if (dec.remainder.byteLength > 0) {
        this.#stmt("INSERT INTO restore_staging VALUES (0, ?)").run(dec.remainder);
      }
      db.exec("RELEASE chunk");
    } catch (e) {
      db.exec("ROLLBACK TO chunk");
      db.exec("RELEASE chunk");
      this.#drop();
      const msg = errorText(e);
      return { ok: false, error: msg.startsWith("restore: ") ? msg : `restore: ${msg}` };
    }
    this.#set({ id, next: seq + 1, decoder: dec.state });
    return { ok: true };
  }

  /** Swaps the staged tables in (see the module comment), stamping service indexes `index`. */
  commit(
    index: number,
    cmd: { id: string; chunks: number; bytes: number; acl?: true; certs?: true },
  ): ApplyResult {
    const st = this.#get();
    if (st?.id !== cmd.id) return notUnderWay(cmd.id);
    try {
      if (st.next !== cmd.chunks || st.decoder.bytes !== cmd.bytes) {
        throw new Error(
          `restore: ${st.next} chunks (${st.decoder.bytes} bytes) arrived of ${cmd.chunks} ` +
            `(${cmd.bytes} bytes); nothing restored`,
        );
      }
      new SnapshotDecoder(st.decoder, this.#tail()).finish();
      if (cmd.acl && this.#stmt(`SELECT 1 FROM ${STAGING_PREFIX}acl_tokens`).get() === undefined) {
        throw new Error("restore: the sealed section carried no ACL tokens; nothing restored");
      }
      const problem = cmd.certs
        ? stagedEdgeCertsProblem({ all: (q) => this.#stmt(q).all() as Row[] })
        : undefined;
      if (problem !== undefined) throw new Error(`restore: ${problem}; nothing restored`);
    } catch (e) {
      this.#drop();
      return { ok: false, error: errorText(e) };
    }
    const db = this.#db;
    for (const [t, cols] of Object.entries(USER_TABLE_COLUMNS)) {
      db.exec(`DROP TABLE ${t}`);
      db.exec(`ALTER TABLE ${STAGING_PREFIX}${t} RENAME TO ${t}`);
      db.exec(createTable(STAGING_PREFIX + t, cols));
    }
    ensureUserIndexes(db);
    if (cmd.certs) {
      db.exec("DELETE FROM edge_certs");
      db.exec(`INSERT INTO edge_certs SELECT * FROM ${STAGING_PREFIX}edge_certs`);
    }
    if (cmd.acl) {
      for (const t of ACL_TABLES) {
        db.exec(`DELETE FROM ${t}`);
        db.exec(`INSERT INTO ${t} SELECT * FROM ${STAGING_PREFIX}${t}`);
      }
    }
    this.#stmt("UPDATE service_index SET idx = ?").run(index);
    this.#drop();
    return { ok: true };
  }

  #tail(): Uint8Array | undefined {
    const row = this.#stmt("SELECT data FROM restore_staging WHERE seq=0").get() as
      | Row
      | undefined;
    return row?.data as Uint8Array | undefined;
  }

  #get(): Staging | undefined {
    const row = this.#stmt("SELECT value FROM cluster WHERE key='restore'").get() as
      | Row
      | undefined;
    return row === undefined ? undefined : JSON.parse(String(row.value)) as Staging;
  }

  #set(st: Staging): void {
    this.#stmt(
      "INSERT INTO cluster VALUES ('restore', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
    ).run(JSON.stringify(st));
  }

  #drop(): void {
    this.#stmt("DELETE FROM restore_staging").run();
    for (const t of STAGED_TABLES) this.#db.exec(`DELETE FROM ${STAGING_PREFIX}${t}`);
    this.#stmt("DELETE FROM cluster WHERE key='restore'").run();
  }
}

function notUnderWay(id: string): ApplyResult {
  return { ok: false, error: `restore: restore ${id} is not under way (replaced or aborted)` };
}
