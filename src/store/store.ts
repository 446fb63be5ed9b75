/**
 * The replicated state machine: SQLite tables for nodes, instances and KV, changed only by
 * apply(index, command). apply() is deterministic (no clock, no randomness: what it needs comes
 * inside the command) and idempotent (an entry at or below the applied index is skipped; an
 * identical re-registration changes nothing and bumps no index). The applied index is written in
 * the same transaction as the change, so a crash never applies an entry twice or loses one.
 *
 * After each commit, subscribers get a Change {index, tables, services, keys}: the DNS zone,
 * the proxy's route table and blocking API queries rebuild from it.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { createHash } from "node:crypto";
import type {
  ApplyResult,
  Change,
  Command,
  Instance,
  InstanceSpec,
  KvEntry,
  Member,
  NodeInfo,
  NodeStatus,
  Table,
} from "./types.ts";
import { CommandError, validateCommand } from "./validate.ts";
import { checkDefinitionKey, hasCheckSource } from "./health.ts";
import { migrateInstanceRows } from "./migrate.ts";
import { SNAPSHOT_BYTES_MAX } from "./snapshot_limits.ts";
import {
  RAFT_TABLES,
  SNAPSHOT_SCHEMA,
  SnapshotDecoder,
  type SnapshotKind,
} from "./snapshot_format.ts";
import { insertFrame, SnapshotSource } from "./snapshot_io.ts";
import { RestoreStaging, USER_SCHEMA } from "./restore_staging.ts";

/** 2: instance health kept per source (`docker`, `checkResult`); 1 is read through migrate.ts. */
const SCHEMA_VERSION = SNAPSHOT_SCHEMA;
const SCHEMA_VERSIONS_READ = [1, 2];

/** How many log entries a request id is remembered for (retries come within seconds). */
export const REQUEST_WINDOW_ENTRIES = 100_000;
const REQUEST_PRUNE_EVERY = 1024;

/** One log entry for applyMany(). `requestId` makes a retried proposal apply once. */
export interface ApplyEntry {
  index: number;
  command: unknown;
  requestId?: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS members (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL, nonce TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS cluster (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS requests (
  id TEXT PRIMARY KEY, idx INTEGER NOT NULL, result TEXT NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS requests_idx ON requests(idx);
${USER_SCHEMA}`;

/** A snapshot file written by Store.writeSnapshotFile(). */
export interface SnapshotFileInfo {
  /** Applied index the snapshot is consistent at. */
  index: number;
  confState: { voters: number[]; learners: number[] };
  bytes: number;
  /** SHA-256 of the file, hex. */
  sha256: string;
}

type Row = Record<string, unknown>;

/** Instance fields stored as JSON, in a fixed order so equal specs give equal text. */
function canonicalInstance(s: InstanceSpec): string {
  const sortedMeta = Object.fromEntries(Object.entries(s.meta).sort(([a], [b]) => a < b ? -1 : 1));
  return JSON.stringify({
    id: s.id,
    service: s.service,
    node: s.node,
    address: s.address,
    port: s.port,
    tags: s.tags,
    meta: sortedMeta,
    weight: s.weight,
    containerId: s.containerId,
    httpHosts: s.httpHosts,
    httpPath: s.httpPath,
    tcpPort: s.tcpPort,
    check: s.check,
    docker: s.docker === null ? null : { state: s.docker.state, detail: s.docker.detail },
    checkResult: s.checkResult === null
      ? null
      : { status: s.checkResult.status, output: s.checkResult.output },
  });
}

/**
 * The check result a `register` stores: the one already stored while the check it came from
 * still runs unchanged (same container, same definition), so a re-registration never resets what
 * the health checker found; otherwise the registrant's (none for a Docker instance).
 */
function registeredCheckResult(spec: InstanceSpec, old: Instance | undefined): InstanceSpec {
  if (
    old === undefined || spec.check === null || old.containerId !== spec.containerId ||
    checkDefinitionKey(old.check) !== checkDefinitionKey(spec.check)
  ) {
    return spec;
  }
  return { ...spec, checkResult: old.checkResult };
}

interface NodeData {
  address: string;
  status: NodeStatus;
  meta: Record<string, string>;
}

class ChangeBuilder {
  tables = new Set<Table>();
  services = new Set<string>();
  keys = new Set<string>();
}

export interface StoreOptions {
  /** SQLite `synchronous` level; FULL (the default) fsyncs every commit. */
  synchronous?: "FULL" | "NORMAL" | "OFF";
}

export class Store {
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #subscribers = new Set<(c: Change) => void>();
  readonly #stmts: Record<string, StatementSync> = {};
  readonly #restore: RestoreStaging;
  #applied = 0;

  private constructor(db: DatabaseSync, path: string) {
    this.#db = db;
    this.#path = path;
    this.#restore = new RestoreStaging(db, (sql) => this.#stmt(sql));
    this.#applied = this.#metaGet("applied");
  }

  /** Opens (creating if needed) the store at `path`; `:memory:` for tests. */
  static open(path: string, options: StoreOptions = {}): Store {
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode=WAL");
    db.exec(`PRAGMA synchronous=${options.synchronous ?? "FULL"}`);
    db.exec("PRAGMA busy_timeout=5000");
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
    return new Store(db, path);
  }

  close(): void {
    this.#subscribers.clear();
    this.#db.close();
  }

  #stmt(sql: string): StatementSync {
    return this.#stmts[sql] ??= this.#db.prepare(sql);
  }

  #metaGet(key: string): number {
    const row = this.#stmt("SELECT value FROM meta WHERE key=?").get(key) as Row | undefined;
    return row === undefined ? 0 : Number(row.value);
  }

  #metaSet(key: string, value: number): void {
    this.#stmt("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value")
      .run(key, value);
  }

  /** Highest log index applied. */
  appliedIndex(): number {
    return this.#applied;
  }

  /** Index of the last change to a table (what `X-Consul-Index` reports for list reads). */
  tableIndex(table: Table): number {
    return this.#metaGet(`index.${table}`);
  }

  /** Index of the last change to a service's instances, including deregistrations. */
  serviceIndex(service: string): number {
    const row = this.#stmt("SELECT idx FROM service_index WHERE service=?").get(service) as
      | Row
      | undefined;
    return row === undefined ? 0 : Number(row.idx);
  }

  /** Calls `fn` after every committed apply that reached a new index. Returns an unsubscribe. */
  subscribe(fn: (c: Change) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
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
    const results: ApplyResult[] = [];
    const change = new ChangeBuilder();
    const db = this.#db;
    const before = this.#applied;
    db.exec("BEGIN IMMEDIATE");
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
            result = this.#applyOne(index, cmd, change);
          } catch (e) {
            if (!(e instanceof CommandError)) throw e;
            result = { ok: false, error: e.message };
          }
          if (requestId !== undefined) this.#rememberRequest(requestId, index, result);
        }
        results.push(result);
        this.#applied = index;
      }
      for (const t of change.tables) this.#metaSet(`index.${t}`, this.#applied);
      for (const s of change.services) {
        this.#stmt(
          "INSERT INTO service_index VALUES (?, ?) ON CONFLICT(service) DO UPDATE SET idx=excluded.idx",
        ).run(s, this.#applied);
      }
      this.#metaSet("applied", this.#applied);
      db.exec("COMMIT");
    } catch (e) {
      db.exec("ROLLBACK");
      this.#applied = before;
      throw e;
    }
    if (this.#applied > before) {
      this.#emit({ index: this.#applied, ...change });
    }
    return results;
  }

  #requestResult(id: string): ApplyResult | undefined {
    const row = this.#stmt("SELECT result FROM requests WHERE id=?").get(id) as Row | undefined;
    return row === undefined ? undefined : JSON.parse(String(row.result)) as ApplyResult;
  }

  #rememberRequest(id: string, index: number, result: ApplyResult): void {
    this.#stmt("INSERT OR REPLACE INTO requests VALUES (?, ?, ?)")
      .run(id, index, JSON.stringify(result));
    // Deterministic pruning: every REQUEST_PRUNE_EVERY indexes, forget ids older than the window.
    if (index % REQUEST_PRUNE_EVERY === 0) {
      this.#stmt("DELETE FROM requests WHERE idx <= ?").run(index - REQUEST_WINDOW_ENTRIES);
    }
  }

  #emit(c: Change): void {
    for (const fn of this.#subscribers) {
      try {
        fn(c);
      } catch (e) {
        console.error(`store: change subscriber failed: ${e}`);
      }
    }
  }

  #applyOne(index: number, cmd: Command, ch: ChangeBuilder): ApplyResult {
    switch (cmd.type) {
      case "noop":
        return { ok: true };
      case "batch":
        return this.#applyBatch(index, cmd.commands, ch);
      case "restore.begin":
        return this.#restore.begin(cmd.id);
      case "restore.chunk":
        return this.#restore.chunk(cmd.id, cmd.seq, cmd.data);
      case "restore.commit": {
        const before = this.#distinctServices();
        const r = this.#restore.commit(index, cmd);
        if (!r.ok) return r;
        for (const s of before) ch.services.add(s);
        for (const s of this.#distinctServices()) ch.services.add(s);
        for (const t of ["nodes", "instances", "kv"] as const) ch.tables.add(t);
        return r;
      }
      case "restore.abort":
        return this.#restore.abort(cmd.id);
      case "conf": {
        this.#stmt(
          "INSERT INTO cluster VALUES ('conf', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        ).run(JSON.stringify({ voters: cmd.voters, learners: cmd.learners }));
        if (cmd.upsert !== undefined) {
          const m = cmd.upsert;
          this.#stmt(
            `INSERT INTO members VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET
             name=excluded.name, address=excluded.address, nonce=excluded.nonce`,
          ).run(m.id, m.name, m.address, m.nonce ?? "");
          const max = this.#metaGet("member_id_max");
          if (m.id > max) this.#metaSet("member_id_max", m.id);
        }
        if (cmd.remove !== undefined) this.#stmt("DELETE FROM members WHERE id=?").run(cmd.remove);
        ch.tables.add("members");
        return { ok: true };
      }
      case "node.register": {
        const old = this.node(cmd.name);
        const data: NodeData = {
          address: cmd.address,
          status: old?.status ?? "alive",
          meta: cmd.meta,
        };
        return this.#putNode(index, cmd.name, data, old, ch);
      }
      case "node.status": {
        const old = this.node(cmd.name);
        if (old === undefined) return { ok: false, error: `no node ${cmd.name}` };
        const data: NodeData = { address: old.address, status: cmd.status, meta: old.meta };
        const r = this.#putNode(index, cmd.name, data, old, ch);
        if (old.status !== cmd.status) {
          for (const i of this.instancesOfNode(cmd.name)) ch.services.add(i.service);
          ch.tables.add("instances");
        }
        return r;
      }
      case "register": {
        const old = this.instance(cmd.instance.id);
        const spec = registeredCheckResult(cmd.instance, old);
        const text = canonicalInstance(spec);
        if (old !== undefined && canonicalInstance(old) === text) return { ok: true };
        this.#stmt(
          `INSERT INTO instances VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET
           service=excluded.service, node=excluded.node, data=excluded.data,
           modify_index=excluded.modify_index`,
        ).run(spec.id, spec.service, spec.node, text, old?.createIndex ?? index, index);
        ch.tables.add("instances");
        ch.services.add(spec.service);
        if (old !== undefined) ch.services.add(old.service);
        return { ok: true };
      }
      case "deregister": {
        const old = this.instance(cmd.id);
        if (old === undefined) return { ok: true };
        this.#stmt("DELETE FROM instances WHERE id=?").run(cmd.id);
        ch.tables.add("instances");
        ch.services.add(old.service);
        return { ok: true };
      }
      case "check": {
        const old = this.instance(cmd.id);
        if (old === undefined) return { ok: false, error: `no instance ${cmd.id}` };
        if (!hasCheckSource(old)) {
          return { ok: false, error: `instance ${cmd.id} is a Docker instance without a check` };
        }
        const checkResult = { status: cmd.status, output: cmd.output };
        return this.#putHealth(index, old, { ...old, checkResult }, ch);
      }
      case "docker": {
        const old = this.instance(cmd.id);
        if (old === undefined) return { ok: false, error: `no instance ${cmd.id}` };
        if (old.containerId === null) {
          return { ok: false, error: `instance ${cmd.id} has no container` };
        }
        const docker = { state: cmd.state, detail: cmd.detail };
        return this.#putHealth(index, old, { ...old, docker }, ch);
      }
      case "kv.put": {
        const old = this.kvGet(cmd.key);
        if (cmd.cas !== undefined && (old?.modifyIndex ?? 0) !== cmd.cas) return { ok: false };
        this.#stmt(
          `INSERT INTO kv VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT(key) DO UPDATE SET
           value=excluded.value, flags=excluded.flags, modify_index=excluded.modify_index`,
        ).run(cmd.key, cmd.value, cmd.flags, old?.createIndex ?? index, index);
        ch.tables.add("kv");
        ch.keys.add(cmd.key);
        return { ok: true };
      }
      case "kv.delete": {
        if (cmd.recurse) {
          const keys = this.kvList(cmd.key).map((e) => e.key);
          if (keys.length === 0) return { ok: true };
          this.#stmt("DELETE FROM kv WHERE substr(key, 1, ?) = ?").run(cmd.key.length, cmd.key);
          for (const k of keys) ch.keys.add(k);
          ch.tables.add("kv");
          return { ok: true };
        }
        const old = this.kvGet(cmd.key);
        if (cmd.cas !== undefined && (old?.modifyIndex ?? 0) !== cmd.cas) return { ok: false };
        if (old === undefined) return { ok: true };
        this.#stmt("DELETE FROM kv WHERE key=?").run(cmd.key);
        ch.tables.add("kv");
        ch.keys.add(cmd.key);
        return { ok: true };
      }
    }
  }

  /**
   * A `batch` applies whole or not at all: the first sub-command that fails (invalid target, failed
   * CAS) rolls the others back inside a savepoint, the same on every replica, and the result names
   * it by position.
   */
  #applyBatch(index: number, commands: readonly Command[], ch: ChangeBuilder): ApplyResult {
    const inner = new ChangeBuilder();
    this.#db.exec("SAVEPOINT batch");
    let failed: ApplyResult | undefined;
    try {
      for (const [n, c] of commands.entries()) {
        const r = this.#applyOne(index, c, inner);
        if (!r.ok) {
          failed = {
            ok: false,
            error: `batch command ${n} (${c.type}): ${r.error ?? "compare-and-set failed"}`,
          };
          break;
        }
      }
    } catch (e) {
      this.#db.exec("ROLLBACK TO batch");
      this.#db.exec("RELEASE batch");
      throw e;
    }
    if (failed !== undefined) {
      this.#db.exec("ROLLBACK TO batch");
      this.#db.exec("RELEASE batch");
      return failed;
    }
    this.#db.exec("RELEASE batch");
    for (const t of inner.tables) ch.tables.add(t);
    for (const s of inner.services) ch.services.add(s);
    for (const k of inner.keys) ch.keys.add(k);
    return { ok: true };
  }

  /** Stores an instance whose health source changed; nothing when it did not. */
  #putHealth(index: number, old: Instance, spec: InstanceSpec, ch: ChangeBuilder): ApplyResult {
    const text = canonicalInstance(spec);
    if (text === canonicalInstance(old)) return { ok: true };
    this.#stmt("UPDATE instances SET data=?, modify_index=? WHERE id=?").run(text, index, old.id);
    ch.tables.add("instances");
    ch.services.add(old.service);
    return { ok: true };
  }

  #distinctServices(): Set<string> {
    return new Set(
      (this.#stmt("SELECT DISTINCT service FROM instances").all() as Row[]).map((r) =>
        String(r.service)
      ),
    );
  }

  #putNode(
    index: number,
    name: string,
    data: NodeData,
    old: NodeInfo | undefined,
    ch: ChangeBuilder,
  ): ApplyResult {
    const text = JSON.stringify(data);
    if (old !== undefined) {
      const oldText = JSON.stringify({ address: old.address, status: old.status, meta: old.meta });
      if (oldText === text) return { ok: true };
    }
    this.#stmt(
      `INSERT INTO nodes VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET
       data=excluded.data, modify_index=excluded.modify_index`,
    ).run(name, text, old?.createIndex ?? index, index);
    ch.tables.add("nodes");
    return { ok: true };
  }

  // ---- reads ----

  #instanceFrom(row: Row): Instance {
    const spec = JSON.parse(String(row.data)) as InstanceSpec;
    return {
      ...spec,
      createIndex: Number(row.create_index),
      modifyIndex: Number(row.modify_index),
    };
  }

  #nodeFrom(row: Row): NodeInfo {
    const d = JSON.parse(String(row.data)) as NodeData;
    return {
      name: String(row.name),
      address: d.address,
      status: d.status,
      meta: d.meta,
      createIndex: Number(row.create_index),
      modifyIndex: Number(row.modify_index),
    };
  }

  instance(id: string): Instance | undefined {
    const row = this.#stmt("SELECT * FROM instances WHERE id=?").get(id) as Row | undefined;
    return row === undefined ? undefined : this.#instanceFrom(row);
  }

  /** All instances, or those of one service, ordered by id. */
  instances(service?: string): Instance[] {
    const rows = service === undefined
      ? this.#stmt("SELECT * FROM instances ORDER BY id").all()
      : this.#stmt("SELECT * FROM instances WHERE service=? ORDER BY id").all(service);
    return (rows as Row[]).map((r) => this.#instanceFrom(r));
  }

  instancesOfNode(node: string): Instance[] {
    const rows = this.#stmt("SELECT * FROM instances WHERE node=? ORDER BY id").all(node);
    return (rows as Row[]).map((r) => this.#instanceFrom(r));
  }

  /** Service names with the union of their instances' tags. */
  services(): Map<string, string[]> {
    const out = new Map<string, Set<string>>();
    for (const i of this.instances()) {
      const tags = out.get(i.service) ?? new Set<string>();
      for (const t of i.tags) tags.add(t);
      out.set(i.service, tags);
    }
    return new Map([...out].map(([k, v]) => [k, [...v].sort()]));
  }

  node(name: string): NodeInfo | undefined {
    const row = this.#stmt("SELECT * FROM nodes WHERE name=?").get(name) as Row | undefined;
    return row === undefined ? undefined : this.#nodeFrom(row);
  }

  nodes(): NodeInfo[] {
    return (this.#stmt("SELECT * FROM nodes ORDER BY name").all() as Row[]).map((r) =>
      this.#nodeFrom(r)
    );
  }

  kvGet(key: string): KvEntry | undefined {
    const row = this.#stmt("SELECT * FROM kv WHERE key=?").get(key) as Row | undefined;
    return row === undefined ? undefined : kvFrom(row);
  }

  /** Entries whose key starts with `prefix`, in key order. */
  kvList(prefix: string): KvEntry[] {
    const rows = this.#stmt("SELECT * FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key")
      .all(prefix.length, prefix) as Row[];
    return rows.map(kvFrom);
  }

  /** Keys starting with `prefix`, in key order, without loading values. */
  kvKeys(prefix: string): string[] {
    const rows = this.#stmt("SELECT key FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key")
      .all(prefix.length, prefix) as Row[];
    return rows.map((r) => String(r.key));
  }

  /** The Raft membership as of the applied index (empty before the first conf change). */
  confState(): { voters: number[]; learners: number[] } {
    const row = this.#stmt("SELECT value FROM cluster WHERE key='conf'").get() as Row | undefined;
    return row === undefined
      ? { voters: [], learners: [] }
      : JSON.parse(String(row.value)) as { voters: number[]; learners: number[] };
  }

  /** Members with their role, by id. Members added without a name are listed as `node-<id>`. */
  members(): Member[] {
    const cs = this.confState();
    const rows = this.#stmt("SELECT * FROM members").all() as Row[];
    const byId = new Map(rows.map((r) => [Number(r.id), r]));
    const out: Member[] = [];
    for (const [ids, role] of [[cs.voters, "voter"], [cs.learners, "learner"]] as const) {
      for (const id of ids) {
        const r = byId.get(id);
        out.push({
          id,
          name: r === undefined ? `node-${id}` : String(r.name),
          address: r === undefined ? "" : String(r.address),
          nonce: r === undefined ? "" : String(r.nonce),
          role,
        });
      }
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** Highest member id ever assigned; new members get a higher one (ids are never reused). */
  memberIdMax(): number {
    return this.#metaGet("member_id_max");
  }

  // ---- snapshots ----

  /**
   * A consistent snapshot stream of the store at its applied index: "raft" carries what a
   * replica needs (request ids included), "user" only nodes, services and KV. On a file-backed
   * store it reads through its own connection, so applies go on while it is read.
   */
  snapshotSource(kind: SnapshotKind): SnapshotSource {
    if (this.#path === ":memory:" || this.#path === "") {
      return new SnapshotSource(this.#db, kind, false);
    }
    return new SnapshotSource(new DatabaseSync(this.#path, { readOnly: true }), kind, true);
  }

  /** Writes a snapshot stream to `path` (synced), piece by piece. */
  async writeSnapshotFile(path: string, kind: SnapshotKind): Promise<SnapshotFileInfo> {
    const src = this.snapshotSource(kind);
    const hash = createHash("sha256");
    let bytes = 0;
    try {
      using file = await Deno.open(path, { write: true, create: true, truncate: true });
      for (let piece = src.next(); piece !== null; piece = src.next()) {
        hash.update(piece);
        bytes += piece.byteLength;
        if (bytes > SNAPSHOT_BYTES_MAX) {
          throw new Error(`snapshot: the store is over ${SNAPSHOT_BYTES_MAX} bytes`);
        }
        await writeAll(file, piece);
      }
      await file.sync();
    } finally {
      src.close();
    }
    return { index: src.index, confState: src.confState, bytes, sha256: hash.digest("hex") };
  }

  /**
   * Replaces the whole state with a "raft" snapshot file's, atomically (one transaction; a row
   * that does not fit or a truncated file changes nothing). Subscribers then see every table
   * change, and every service present before or after.
   */
  installSnapshotFile(path: string): void {
    const db = this.#db;
    const before = this.#distinctServices();
    const dec = new SnapshotDecoder();
    db.exec("BEGIN IMMEDIATE");
    try {
      for (const t of RAFT_TABLES) db.exec(`DELETE FROM ${t}`);
      db.exec("DELETE FROM meta WHERE key != 'schema'");
      dec.readFile(path, (f) => {
        if (dec.header?.kind !== "raft") {
          throw new Error("snapshot: a user snapshot cannot be installed as a Raft snapshot");
        }
        insertFrame(db, f);
      });
      if (dec.header?.kind !== "raft") {
        throw new Error("snapshot: a user snapshot cannot be installed as a Raft snapshot");
      }
      db.exec("COMMIT");
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
    this.#applied = this.#metaGet("applied");
    const services = this.#distinctServices();
    for (const s of before) services.add(s);
    this.#emit({
      index: this.#applied,
      tables: new Set<Table>(["nodes", "instances", "kv", "members"]),
      services,
      keys: new Set(),
    });
  }
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.byteLength;) off += await file.write(data.subarray(off));
}

function kvFrom(row: Row): KvEntry {
  return {
    key: String(row.key),
    value: row.value as Uint8Array,
    flags: Number(row.flags),
    createIndex: Number(row.create_index),
    modifyIndex: Number(row.modify_index),
    lockIndex: Number(row.lock_index),
  };
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
