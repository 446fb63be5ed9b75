/**
 * The replicated state machine: SQLite tables for nodes, instances and KV, changed only by
 * apply(index, command). apply() is deterministic (no clock, no randomness: what it needs comes
 * inside the command) and idempotent (an entry at or below the applied index is skipped; an
 * identical re-registration changes nothing and bumps no index). The applied index is written in
 * the same transaction as the change, so a crash never applies an entry twice or loses one.
 *
 * After each commit, subscribers get a Change {index, tables, services, keys, and the instance
 * and node rows before and after it}: the DNS zone, the proxy's route table and blocking API
 * queries update from the rows; a snapshot install or a restore is a `reset` (they rebuild).
 *
 * This file is the `Store` class, the one way in; the parts live beside it: schema.ts (tables,
 * open, migrate), apply.ts and its families (apply_catalog.ts, apply_kv.ts, apply_members.ts,
 * restore_staging.ts), queries.ts (reads), change_feed.ts (who hears of a change),
 * snapshot_file.ts and snapshot_io.ts (snapshots), snapshot_thread.ts (snapshot files written
 * and installed off the event loop).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type {
  AclPolicy,
  AclToken,
  ApplyResult,
  Change,
  EdgeCert,
  Instance,
  KvEntry,
  Member,
  NodeInfo,
  Table,
} from "./types.ts";
import { CommandError, validateCommand } from "./validate.ts";
import type { SnapshotKind } from "./snapshot_format.ts";
import { type Seal, SnapshotSource } from "./snapshot_io.ts";
import { RestoreStaging } from "./restore_staging.ts";
import { type Row, StoreDb } from "./db.ts";
import { openDatabase, type StoreOptions } from "./schema.ts";
import { applyCommand } from "./apply.ts";
import { ChangeFeed, ChangeSet } from "./change_feed.ts";
import * as q from "./queries.ts";
import {
  type InstallOutcome,
  installSnapshotFile,
  type SnapshotFileInfo,
  writeSnapshotFile,
} from "./snapshot_file.ts";
import { runSnapshotJob } from "./snapshot_thread.ts";
import { Sessions } from "./sessions.ts";
import * as acl from "./acl_tables.ts";
import { PkiState } from "./pki_state.ts";
import * as ec from "./edge_certs.ts";
import { AcmeState } from "./acme_state.ts";
import { rollback } from "../lib/sqlite_rollback.ts";
import { checkHolder } from "./check_holders.ts";

export type { StoreOptions } from "./schema.ts";
export type { SnapshotFileInfo } from "./snapshot_file.ts";

/** How many log entries a request id is remembered for (retries come within seconds). */
export const REQUEST_WINDOW_ENTRIES = 100_000;
const REQUEST_PRUNE_EVERY = 1024;

/** One log entry for applyMany(). `requestId` makes a retried proposal apply once. */
export interface ApplyEntry {
  index: number;
  command: unknown;
  requestId?: string;
}

export class Store {
  readonly #sql: StoreDb;
  readonly #path: string;
  readonly #synchronous: NonNullable<StoreOptions["synchronous"]>;
  readonly #feed = new ChangeFeed();
  readonly #restore: RestoreStaging;
  /** Sessions and the KV locks they hold (sessions.ts): read them through this. */
  readonly sessions: Sessions;
  /** The cluster CA, join tokens and member certificates (pki_state.ts): read them here. */
  readonly pki: PkiState;
  /** The ACME lease, accounts, names being ordered and their challenges (acme_state.ts). */
  readonly acme: AcmeState;
  #applied = 0;
  /** A snapshot install runs on the snapshot thread: nothing may write meanwhile. */
  #installing = false;

  private constructor(db: DatabaseSync, path: string, options: StoreOptions) {
    this.#sql = new StoreDb(db);
    this.#path = path;
    this.#synchronous = options.synchronous ?? "FULL";
    this.#restore = new RestoreStaging(db, (sql) => this.#sql.stmt(sql));
    this.#applied = this.#sql.metaGet("applied");
    this.sessions = new Sessions(this.#sql);
    this.pki = new PkiState(this.#sql);
    this.acme = new AcmeState(this.#sql);
  }

  /** Opens (creating if needed) the store at `path`; `:memory:` for tests. */
  static open(path: string, options: StoreOptions = {}): Store {
    return new Store(openDatabase(path, options), path, options);
  }

  close(): void {
    this.#feed.clear();
    this.#sql.db.close();
  }

  /** Highest log index applied. */
  appliedIndex(): number {
    return this.#applied;
  }

  /** Index of the last change to a table (what `X-Consul-Index` reports for list reads). */
  tableIndex(table: Table): number {
    return q.tableIndex(this.#sql, table);
  }

  /** Index of the last change to a service's instances, including deregistrations. */
  serviceIndex(service: string): number {
    return q.serviceIndex(this.#sql, service);
  }

  /** Calls `fn` after every committed apply that reached a new index. Returns an unsubscribe. */
  subscribe(fn: (c: Change) => void): () => void {
    return this.#feed.subscribe(fn);
  }

  /**
   * Applies one log entry. Entries at or below the applied index are skipped (already applied
   * before a restart). A command that fails validation changes nothing but still advances the
   * applied index, identically on every replica.
   */
  apply(index: number, command: unknown, requestId?: string): ApplyResult {
    return this.applyMany([{ index, command, requestId }])[0] ?? { ok: true };
  }

  /** Applies consecutive entries in one transaction (one fsync), then notifies subscribers once. */
  applyMany(entries: readonly ApplyEntry[]): ApplyResult[] {
    // Invariant: the caller awaits an install before it applies (its write would wait on the
    // snapshot thread's transaction, then be overwritten by it).
    if (this.#installing) throw new Error("apply: a snapshot install is under way");
    const results: ApplyResult[] = [];
    const change = new ChangeSet();
    const sql = this.#sql;
    const before = this.#applied;
    sql.db.exec("BEGIN IMMEDIATE");
    try {
      for (const { index, command, requestId } of entries) {
        if (index <= this.#applied) {
          results.push({ ok: true });
          continue;
        }
        if (index !== this.#applied + 1 && this.#applied !== 0) {
          throw new Error(`apply: index ${index} after ${this.#applied} leaves a gap`);
        }
        const seen = requestId === undefined ? undefined : this.#requestResult(requestId);
        let result: ApplyResult;
        if (seen !== undefined) {
          // A retried proposal that is already in the log: applied once, same answer.
          result = seen;
        } else {
          try {
            const cmd = validateCommand(command);
            result = applyCommand({ sql, restore: this.#restore, index, change }, cmd);
          } catch (e) {
            if (!(e instanceof CommandError)) throw e;
            result = { ok: false, error: e.message };
          }
          if (requestId !== undefined) this.#rememberRequest(requestId, index, result);
        }
        results.push(result);
        this.#applied = index;
      }
      for (const t of change.tables) sql.metaSet(`index.${t}`, this.#applied);
      for (const s of change.services) {
        sql.stmt(
          "INSERT INTO service_index VALUES (?, ?) ON CONFLICT(service) DO UPDATE SET idx=excluded.idx",
        ).run(s, this.#applied);
      }
      sql.metaSet("applied", this.#applied);
      sql.db.exec("COMMIT");
    } catch (e) {
      rollback(sql.db);
      this.#applied = before;
      throw e;
    }
    if (this.#applied > before) {
      this.#feed.announce(change.toChange(this.#applied));
    }
    return results;
  }

  #requestResult(id: string): ApplyResult | undefined {
    const row = this.#sql.stmt("SELECT result FROM requests WHERE id=?").get(id) as
      | Row
      | undefined;
    return row === undefined ? undefined : JSON.parse(String(row.result)) as ApplyResult;
  }

  #rememberRequest(id: string, index: number, result: ApplyResult): void {
    this.#sql.stmt("INSERT OR REPLACE INTO requests VALUES (?, ?, ?)")
      .run(id, index, JSON.stringify(result));
    // Deterministic pruning: every REQUEST_PRUNE_EVERY indexes, forget ids older than the window.
    if (index % REQUEST_PRUNE_EVERY === 0) {
      this.#sql.stmt("DELETE FROM requests WHERE idx <= ?").run(index - REQUEST_WINDOW_ENTRIES);
    }
  }

  // ---- reads (queries.ts) ----

  instance(id: string): Instance | undefined {
    return q.instance(this.#sql, id);
  }

  /** All instances, or those of one service, ordered by id. */
  instances(service?: string): Instance[] {
    return q.instances(this.#sql, service);
  }

  /** Up to `limit` instances whose id sorts after `afterId`, ordered by id (chunked rebuilds). */
  instancesPage(afterId: string, limit: number): Instance[] {
    return q.instancesPage(this.#sql, afterId, limit);
  }

  instancesOfNode(node: string): Instance[] {
    return q.instancesOfNode(this.#sql, node);
  }

  /** Service names with the union of their instances' tags. */
  services(): Map<string, string[]> {
    return q.services(this.#sql);
  }

  node(name: string): NodeInfo | undefined {
    return q.node(this.#sql, name);
  }

  /** The instance on `node` whose registered checks include check `id` (one indexed read). */
  checkHolder(node: string, id: string): Instance | undefined {
    return checkHolder(this.#sql, node, id);
  }

  nodes(): NodeInfo[] {
    return q.nodes(this.#sql);
  }

  kvGet(key: string): KvEntry | undefined {
    return q.kvGet(this.#sql, key);
  }

  /** Entries whose key starts with `prefix`, in key order. */
  kvList(prefix: string): KvEntry[] {
    return q.kvList(this.#sql, prefix);
  }

  /** Keys starting with `prefix`, in key order, without loading values. */
  kvKeys(prefix: string): string[] {
    return q.kvKeys(this.#sql, prefix);
  }

  /** The Raft membership as of the applied index (empty before the first conf change). */
  confState(): { voters: number[]; learners: number[] } {
    return q.confState(this.#sql);
  }

  /** Members with their role, by id. Members added without a name are listed as `node-<id>`. */
  members(): Member[] {
    return q.members(this.#sql);
  }

  /** Names of removed members that no current member uses (see apply_members.ts). */
  formerMembers(): string[] {
    return q.formerMembers(this.#sql);
  }

  /** Highest member id ever assigned; new members get a higher one (ids are never reused). */
  memberIdMax(): number {
    return q.memberIdMax(this.#sql);
  }

  // ---- ACL policies and tokens (acl_tables.ts) ----

  aclPolicy(id: string): AclPolicy | undefined {
    return acl.aclPolicy(this.#sql, id);
  }

  aclPolicyByName(name: string): AclPolicy | undefined {
    return acl.aclPolicyByName(this.#sql, name);
  }

  /** Every policy, by name. */
  aclPolicies(): AclPolicy[] {
    return acl.aclPolicies(this.#sql);
  }

  aclToken(accessorId: string): AclToken | undefined {
    return acl.aclToken(this.#sql, accessorId);
  }

  /** The token whose secret hashes to `secretHash`, and the stored hash (compare in constant time). */
  aclTokenByHash(secretHash: string): { token: AclToken; secretHash: string } | undefined {
    return acl.aclTokenByHash(this.#sql, secretHash);
  }

  /** Every token, oldest first. */
  aclTokens(): AclToken[] {
    return acl.aclTokens(this.#sql);
  }

  // ---- edge certificates (edge_certs.ts) ----

  /** Every certificate the HTTPS listener serves, by name (keys sealed: src/pki/cluster_key.ts). */
  edgeCerts(): EdgeCert[] {
    return ec.edgeCerts(this.#sql);
  }

  edgeCert(name: string): EdgeCert | undefined {
    return ec.edgeCertByName(this.#sql, name);
  }

  /** The fingerprint of the cluster key (src/pki/cluster_key.ts), once `clusterkey.set` applied. */
  clusterKeyFingerprint(): string | undefined {
    return ec.clusterKeyFingerprint(this.#sql);
  }

  // ---- snapshots (snapshot_file.ts) ----

  /**
   * A consistent snapshot stream of the store at its applied index: "raft" carries what a
   * replica needs (request ids included), "user" only nodes, services and KV (and, with `seal`,
   * the secret tables sealed: store/table_classes.ts). On a file-backed
   * store it reads through its own connection, so applies go on while it is read.
   */
  snapshotSource(kind: SnapshotKind, opts: { seal?: Seal } = {}): SnapshotSource {
    if (this.#inMemory) {
      return new SnapshotSource(this.#sql.db, kind, false, opts.seal);
    }
    const db = new DatabaseSync(this.#path, { readOnly: true });
    return new SnapshotSource(db, kind, true, opts.seal);
  }

  get #inMemory(): boolean {
    return this.#path === ":memory:" || this.#path === "";
  }

  /**
   * Writes a snapshot stream to `path` (synced), piece by piece: on a file-backed store on the
   * snapshot thread (snapshot_thread.ts), through its own read connection, so neither reading
   * nor encoding the tables holds up the event loop; applies go on meanwhile.
   */
  async writeSnapshotFile(path: string, kind: SnapshotKind): Promise<SnapshotFileInfo> {
    if (this.#inMemory) return await writeSnapshotFile(this.snapshotSource(kind), path);
    return await runSnapshotJob<SnapshotFileInfo>({
      op: "write",
      db: this.#path,
      file: path,
      kind,
    });
  }

  /**
   * Replaces the whole state with a "raft" snapshot file's, atomically (one transaction; a row
   * that does not fit or a truncated file changes nothing), on this thread. Subscribers then
   * hear one reset naming every table and every service present before or after.
   * installSnapshotFileAsync() does the same off the event loop.
   */
  installSnapshotFile(path: string): void {
    if (this.#installing) throw new Error("snapshot: an install is already under way");
    this.#installed(installSnapshotFile(this.#sql.db, path));
  }

  /**
   * installSnapshotFile() on the snapshot thread (snapshot_thread.ts) through its own
   * connection: meanwhile reads see the state as it was (WAL), applies are refused (the caller
   * awaits this first), and subscribers hear one reset once the new state is committed. Rejects,
   * with nothing changed, when the file does not check out. A `:memory:` store (tests) installs
   * on this thread.
   */
  async installSnapshotFileAsync(path: string): Promise<void> {
    if (this.#inMemory) return this.installSnapshotFile(path);
    if (this.#installing) throw new Error("snapshot: an install is already under way");
    this.#installing = true;
    let out: InstallOutcome;
    try {
      out = await runSnapshotJob<InstallOutcome>({
        op: "install",
        db: this.#path,
        file: path,
        synchronous: this.#synchronous,
      });
    } finally {
      this.#installing = false;
    }
    this.#installed(out);
  }

  /** Takes up the state an install committed and announces it (one reset). */
  #installed(out: InstallOutcome): void {
    this.#applied = this.#sql.metaGet("applied");
    this.#feed.announce({
      index: this.#applied,
      tables: new Set<Table>([
        "nodes",
        "instances",
        "kv",
        "members",
        "sessions",
        "acl",
        "edge_certs",
        "acme",
      ]),
      services: new Set(out.services),
      keys: new Set(),
      instances: [],
      nodes: [],
      reset: true,
    });
  }
}
