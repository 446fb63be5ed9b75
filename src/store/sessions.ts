/**
 * Sessions and the KV locks they hold, as Consul has them, applied the same way on every
 * replica (nothing here reads a clock: times come in the commands):
 *
 * - `session.create` stores a session bound to a node and its checks (check_status.ts); it is
 *   refused when the node is unknown, or a check is missing or critical.
 * - `kv.lock` (`?acquire=`) takes a key's lock for a session: refused (false) while another
 *   session holds it or the key's lock-delay runs; a new holder increments LockIndex, the
 *   holder re-acquiring only updates the value. `kv.unlock` (`?release=`) gives it up (false
 *   unless that session holds it). Both set the value and flags, and take an optional CAS.
 * - `session.destroy` ends a session (a client's destroy, or the leader's decision that its TTL
 *   passed): each key it holds is released (Behavior `release`) or deleted (`delete`), and
 *   refuses a new lock until the command's `nowMs` + LockDelay.
 * - A command that can turn a check critical or remove it (CHECK_TIMED_TYPES: a check result, a
 *   Docker verdict, a node marked down, a registration or deregistration) ends, in its own apply,
 *   every session of that node bound to a check that is now critical or gone, as a destroy at
 *   the command's `nowMs` (`endSessionsOfFailedChecks`), as Consul does in the state store
 *   transaction of the health update: a check that flaps critical → passing still ends it.
 *
 * A key's holder lives in `kv_locks` (one row per held key: so at most one holder), lock-delays
 * in `lock_delays` (pruned by later destroys once passed).
 *
 * @module
 */
import type { ApplyStep } from "./apply_step.ts";
import { checkStatus } from "./checks.ts";
import type { Row, StoreDb } from "./db.ts";
import { kvGet, node } from "./queries.ts";
import { checkReader } from "./check_holders.ts";
import type { ApplyResult, Command, KvEntry, Session, SessionSpec } from "./types.ts";

export const SESSION_SCHEMA = `
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY, node TEXT NOT NULL, data TEXT NOT NULL,
  create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS sessions_node ON sessions(node);
CREATE TABLE IF NOT EXISTS kv_locks (key TEXT PRIMARY KEY, session TEXT NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS kv_locks_session ON kv_locks(session);
CREATE TABLE IF NOT EXISTS lock_delays (key TEXT PRIMARY KEY, until_ms INTEGER NOT NULL) STRICT;
`;

type SessionCommand = Extract<
  Command,
  { type: "session.create" | "session.destroy" | "kv.lock" | "kv.unlock" }
>;
type LockCommand = Extract<Command, { type: "kv.lock" }>;
type UnlockCommand = Extract<Command, { type: "kv.unlock" }>;

/** Session fields stored as JSON, in a fixed order. */
function canonical(s: SessionSpec): string {
  return JSON.stringify({
    id: s.id,
    name: s.name,
    node: s.node,
    nodeChecks: s.nodeChecks,
    serviceChecks: s.serviceChecks,
    lockDelayMs: s.lockDelayMs,
    behavior: s.behavior,
    ttl: s.ttl,
    ttlMs: s.ttlMs,
  });
}

function sessionFrom(row: Row): Session {
  return {
    ...JSON.parse(String(row.data)) as SessionSpec,
    createIndex: Number(row.create_index),
    modifyIndex: Number(row.modify_index),
  };
}

/** Applies a session or lock command (module comment). */
export function applySession(step: ApplyStep, cmd: SessionCommand): ApplyResult {
  const s = new Sessions(step.sql);
  switch (cmd.type) {
    case "session.create":
      return s.create(step, cmd.session);
    case "session.destroy":
      return s.destroy(step, cmd);
    case "kv.lock":
      return s.lock(step, cmd);
    case "kv.unlock":
      return s.unlock(step, cmd);
  }
}

/**
 * After a check-timed command changed `node` (module comment): ends each session of the node
 * bound to a check that is critical or gone, with the lock-delay from `nowMs`.
 */
export function endSessionsOfFailedChecks(step: ApplyStep, node_: string, nowMs: number): void {
  const s = new Sessions(step.sql);
  const bound = s.ofNode(node_);
  if (bound.length === 0) return;
  const reader = checkReader(step.sql);
  for (const session of bound) {
    const failed = [...session.nodeChecks, ...session.serviceChecks].some((id) => {
      const status = checkStatus(reader, session.node, id);
      return status === undefined || status === "critical";
    });
    if (failed) s.destroy(step, { id: session.id, nowMs });
  }
}

/** Sessions and locks over the store's connection: the apply steps and the reads. */
export class Sessions {
  readonly #sql: StoreDb;

  constructor(sql: StoreDb) {
    this.#sql = sql;
  }

  #stmt(sql: string) {
    return this.#sql.stmt(sql);
  }

  // ---- apply ----

  create({ index, change: ch }: ApplyStep, spec: SessionSpec): ApplyResult {
    if (this.get(spec.id) !== undefined) return { ok: false, error: `session ${spec.id} exists` };
    const sql = this.#sql;
    if (node(sql, spec.node) === undefined) {
      return { ok: false, error: `Missing node registration: node "${spec.node}" is not known` };
    }
    const reader = checkReader(sql);
    for (const id of [...spec.nodeChecks, ...spec.serviceChecks]) {
      const status = checkStatus(reader, spec.node, id);
      if (status === undefined) {
        return { ok: false, error: `Missing check '${id}' registration on node ${spec.node}` };
      }
      if (status === "critical") return { ok: false, error: `Check '${id}' is in critical state` };
    }
    this.#stmt("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)")
      .run(spec.id, spec.node, canonical(spec), index, index);
    ch.tables.add("sessions");
    return { ok: true };
  }

  /** Ends session `id` (module comment); an unknown id changes nothing. */
  destroy({ index, change: ch }: ApplyStep, { id, nowMs }: { id: string; nowMs: number }) {
    const s = this.get(id);
    if (s === undefined) return { ok: true };
    this.#stmt("DELETE FROM lock_delays WHERE until_ms <= ?").run(nowMs);
    for (const key of this.heldKeys(id)) {
      if (s.lockDelayMs > 0) {
        this.#stmt(
          `INSERT INTO lock_delays VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET
           until_ms=max(until_ms, excluded.until_ms)`,
        ).run(key, nowMs + s.lockDelayMs);
      }
      if (s.behavior === "delete") {
        this.#stmt("DELETE FROM kv WHERE key=?").run(key);
      } else {
        this.#stmt("UPDATE kv SET modify_index=? WHERE key=?").run(index, key);
      }
      ch.keys.add(key);
      ch.tables.add("kv");
    }
    this.#stmt("DELETE FROM kv_locks WHERE session=?").run(id);
    this.#stmt("DELETE FROM sessions WHERE id=?").run(id);
    ch.tables.add("sessions");
    return { ok: true };
  }

  lock({ index, change: ch }: ApplyStep, cmd: LockCommand): ApplyResult {
    if (this.get(cmd.session) === undefined) {
      return { ok: false, error: `invalid session "${cmd.session}" (destroyed or never created)` };
    }
    const old = kvGet(this.#sql, cmd.key);
    if (cmd.cas !== undefined && (old?.modifyIndex ?? 0) !== cmd.cas) return { ok: false };
    const holder = this.holder(cmd.key);
    if (holder !== null && holder !== cmd.session) return { ok: false };
    if (holder === null && this.lockDelayUntil(cmd.key) > cmd.nowMs) return { ok: false };
    const lockIndex = holder === cmd.session ? old?.lockIndex ?? 1 : (old?.lockIndex ?? 0) + 1;
    this.#putKv(index, cmd, lockIndex, old);
    this.#stmt("INSERT OR REPLACE INTO kv_locks VALUES (?, ?)").run(cmd.key, cmd.session);
    this.#stmt("DELETE FROM lock_delays WHERE key=?").run(cmd.key);
    ch.tables.add("kv");
    ch.keys.add(cmd.key);
    return { ok: true };
  }

  unlock({ index, change: ch }: ApplyStep, cmd: UnlockCommand): ApplyResult {
    const old = kvGet(this.#sql, cmd.key);
    if (cmd.cas !== undefined && (old?.modifyIndex ?? 0) !== cmd.cas) return { ok: false };
    if (old === undefined || this.holder(cmd.key) !== cmd.session) return { ok: false };
    this.#putKv(index, cmd, old.lockIndex, old);
    this.#stmt("DELETE FROM kv_locks WHERE key=?").run(cmd.key);
    ch.tables.add("kv");
    ch.keys.add(cmd.key);
    return { ok: true };
  }

  #putKv(
    index: number,
    e: { key: string; value: Uint8Array; flags: number },
    lockIndex: number,
    old: KvEntry | undefined,
  ): void {
    this.#stmt(
      `INSERT INTO kv VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET
       value=excluded.value, flags=excluded.flags, modify_index=excluded.modify_index,
       lock_index=excluded.lock_index`,
    ).run(e.key, e.value, e.flags, old?.createIndex ?? index, index, lockIndex);
  }

  /** Keys deleted from the KV (`kv.delete`): their locks go with them. */
  keysDeleted(key: string, recurse: boolean): void {
    if (recurse) {
      this.#stmt("DELETE FROM kv_locks WHERE substr(key, 1, ?) = ?").run(key.length, key);
    } else {
      this.#stmt("DELETE FROM kv_locks WHERE key=?").run(key);
    }
  }

  /** A restore replaced the KV: restored keys come unlocked. */
  restored(): void {
    this.#stmt("DELETE FROM kv_locks").run();
    this.#stmt("DELETE FROM lock_delays").run();
  }

  // ---- reads ----

  get(id: string): Session | undefined {
    const row = this.#stmt("SELECT * FROM sessions WHERE id=?").get(id) as Row | undefined;
    return row === undefined ? undefined : sessionFrom(row);
  }

  /** Every session, by id. */
  list(): Session[] {
    return (this.#stmt("SELECT * FROM sessions ORDER BY id").all() as Row[]).map(sessionFrom);
  }

  /** The sessions of one node, by id. */
  ofNode(node: string): Session[] {
    const rows = this.#stmt("SELECT * FROM sessions WHERE node=? ORDER BY id").all(node) as Row[];
    return rows.map(sessionFrom);
  }

  /** The session holding `key`'s lock, or null. */
  holder(key: string): string | null {
    const row = this.#stmt("SELECT session FROM kv_locks WHERE key=?").get(key) as Row | undefined;
    return row === undefined ? null : String(row.session);
  }

  /** Keys whose lock session `id` holds, in key order. */
  heldKeys(id: string): string[] {
    const rows = this.#stmt("SELECT key FROM kv_locks WHERE session=? ORDER BY key")
      .all(id) as Row[];
    return rows.map((r) => String(r.key));
  }

  /** Until when (ms, the leader's clock) `key` refuses a new lock; 0: no delay. */
  lockDelayUntil(key: string): number {
    const row = this.#stmt("SELECT until_ms FROM lock_delays WHERE key=?").get(key) as
      | Row
      | undefined;
    return row === undefined ? 0 : Number(row.until_ms);
  }
}
