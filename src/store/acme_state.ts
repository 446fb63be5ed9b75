/**
 * The ACME state in the replicated store, applied the same way on every replica (times come in
 * the commands, stamped by the leader):
 *
 * - `acme_lease`: the term and member of the leader that orders. `acme.claim` takes it for a
 *   term at or above the lease's; every other leader-written ACME command carries the term it
 *   claimed in and is refused unless that is the lease's term, so a deposed leader's late write
 *   (forwarded, or decided before it lost) changes nothing once its successor claimed.
 * - `acme_accounts`: one account per directory. `acme.account.create` stores the key (sealed)
 *   and is refused when the directory has one: the first key wins, and every leader registers
 *   that same key, which the CA answers with the same account (RFC 8555 §7.3.1).
 * - `acme_names`: one row per name being ordered: the order in flight (URL, status, the
 *   certificate key sealed, made before finalize so a new leader finishes the same order), its
 *   failures and next attempt, the CA's last error. Writes name the row's modifyIndex they
 *   read (`expectIndex`, 0: no row) and are refused when it changed: at most one order per name.
 * - `acme_challenges`: the challenges of those orders by token (HTTP-01: token → key
 *   authorization) and by name (TLS-ALPN-01), kept with their row, so any member answers them.
 *
 * Changes are announced on the change feed as table `acme`.
 *
 * @module
 */
import type { ApplyStep } from "./apply_step.ts";
import type { Row, StoreDb } from "./db.ts";
import type {
  AcmeAccount,
  AcmeChallenge,
  AcmeChallengeType,
  AcmeCommand,
  AcmeLease,
  AcmeNameSpec,
  AcmeNameState,
} from "./acme_types.ts";
import type { ApplyResult } from "./types.ts";

export const ACME_SCHEMA = `
CREATE TABLE IF NOT EXISTS acme_lease (
  id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, node TEXT NOT NULL,
  since_ms INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS acme_accounts (directory TEXT PRIMARY KEY, data TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS acme_names (
  name TEXT PRIMARY KEY, data TEXT NOT NULL, create_index INTEGER NOT NULL,
  modify_index INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS acme_challenges (
  token TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, key_auth TEXT NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS acme_challenges_name ON acme_challenges(name);
`;

/** The ACME tables, for the snapshot formats and table classes. */
export const ACME_TABLES = ["acme_lease", "acme_accounts", "acme_names", "acme_challenges"];

/** Most names ordered at once; a new name past it is refused (the manager logs it). */
export const ACME_NAMES_MAX = 10_000;

/** Applies an ACME command (module comment). */
export function applyAcme(step: ApplyStep, cmd: AcmeCommand): ApplyResult {
  const a = new AcmeState(step.sql);
  if (cmd.type === "acme.claim") {
    const lease = a.lease();
    if (lease !== undefined && cmd.term < lease.term) {
      return { ok: false, error: `acme: term ${cmd.term} is below the lease's ${lease.term}` };
    }
    step.sql.stmt(
      "INSERT INTO acme_lease VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET " +
        "term=excluded.term, node=excluded.node, since_ms=excluded.since_ms",
    ).run(cmd.term, cmd.node, cmd.nowMs);
    step.change.tables.add("acme");
    return { ok: true };
  }
  if (cmd.type === "acme.renew") return a.renew(step, cmd.name, cmd.nowMs);
  const fenced = a.fence(cmd.term);
  if (fenced !== undefined) return { ok: false, error: fenced };
  switch (cmd.type) {
    case "acme.account.create": {
      if (a.account(cmd.account.directory) !== undefined) {
        return { ok: false, error: `acme: ${cmd.account.directory} has an account` };
      }
      const data: AcmeAccount = { ...cmd.account, url: null };
      step.sql.stmt("INSERT INTO acme_accounts VALUES (?, ?)")
        .run(cmd.account.directory, JSON.stringify(data));
      break;
    }
    case "acme.account.url": {
      const account = a.account(cmd.directory);
      if (account === undefined) {
        return { ok: false, error: `acme: ${cmd.directory} has no account` };
      }
      step.sql.stmt("UPDATE acme_accounts SET data=? WHERE directory=?")
        .run(JSON.stringify({ ...account, url: cmd.url }), cmd.directory);
      break;
    }
    case "acme.name.set":
    case "acme.name.drop": {
      const name = cmd.type === "acme.name.set" ? cmd.state.name : cmd.name;
      const row = a.name(name);
      const at = row?.modifyIndex ?? 0;
      if (at !== cmd.expectIndex) {
        return {
          ok: false,
          error: `acme: ${name} changed at index ${at} (expected ${cmd.expectIndex})`,
        };
      }
      if (cmd.type === "acme.name.drop") {
        if (row === undefined) return { ok: false, error: `acme: no order state for ${name}` };
        a.drop(name);
        break;
      }
      const problem = a.put(cmd.state, row?.createIndex ?? step.index, step.index);
      if (problem !== undefined) return { ok: false, error: problem };
      break;
    }
  }
  step.change.tables.add("acme");
  return { ok: true };
}

/** The ACME tables over the store's connection: apply steps and reads. */
export class AcmeState {
  readonly #sql: StoreDb;

  constructor(sql: StoreDb) {
    this.#sql = sql;
  }

  lease(): AcmeLease | undefined {
    const r = this.#sql.stmt("SELECT term, node, since_ms FROM acme_lease WHERE id=1").get() as
      | Row
      | undefined;
    return r === undefined
      ? undefined
      : { term: Number(r.term), node: String(r.node), sinceMs: Number(r.since_ms) };
  }

  account(directory: string): AcmeAccount | undefined {
    const r = this.#sql.stmt("SELECT data FROM acme_accounts WHERE directory=?").get(directory) as
      | Row
      | undefined;
    return r === undefined ? undefined : JSON.parse(String(r.data)) as AcmeAccount;
  }

  /** Every account, by directory. */
  accounts(): AcmeAccount[] {
    const rows = this.#sql.stmt("SELECT data FROM acme_accounts ORDER BY directory").all() as Row[];
    return rows.map((r) => JSON.parse(String(r.data)) as AcmeAccount);
  }

  /** The state of `name`, or undefined when ACME works on no order for it. */
  name(name: string): AcmeNameState | undefined {
    const r = this.#sql.stmt(
      "SELECT name, data, create_index, modify_index FROM acme_names WHERE name=?",
    ).get(name) as Row | undefined;
    return r === undefined ? undefined : nameState(r);
  }

  /** Every name ACME works on, by name. */
  names(): AcmeNameState[] {
    const rows = this.#sql.stmt(
      "SELECT name, data, create_index, modify_index FROM acme_names ORDER BY name",
    ).all() as Row[];
    return rows.map(nameState);
  }

  /** HTTP-01: the key authorization for `token`, or null. */
  keyAuthorization(token: string): string | null {
    const r = this.#sql.stmt(
      "SELECT key_auth FROM acme_challenges WHERE token=? AND type='http-01'",
    ).get(token) as Row | undefined;
    return r === undefined ? null : String(r.key_auth);
  }

  /** Every challenge being answered, with its name. */
  challenges(): (AcmeChallenge & { name: string })[] {
    const rows = this.#sql.stmt(
      "SELECT token, name, type, key_auth FROM acme_challenges ORDER BY name, token",
    ).all() as Row[];
    return rows.map((r) => ({
      name: String(r.name),
      type: String(r.type) as AcmeChallengeType,
      token: String(r.token),
      keyAuthorization: String(r.key_auth),
    }));
  }

  /** Why a leader write in `term` is refused, or undefined when the lease is that term's. */
  fence(term: number): string | undefined {
    const lease = this.lease();
    if (lease === undefined) return `acme: no lease claimed (term ${term})`;
    if (lease.term !== term) {
      return `acme: term ${term} does not hold the lease (term ${lease.term}, ${lease.node})`;
    }
    return undefined;
  }

  // ---- apply ----

  put(s: AcmeNameSpec, createIndex: number, index: number): string | undefined {
    const exists = this.#sql.stmt("SELECT 1 FROM acme_names WHERE name=?").get(s.name);
    if (exists === undefined) {
      const n = Number((this.#sql.stmt("SELECT count(*) AS n FROM acme_names").get() as Row).n);
      if (n >= ACME_NAMES_MAX) return `acme: ${ACME_NAMES_MAX} names are being ordered`;
    }
    for (const c of s.challenges) {
      const other = this.#sql.stmt("SELECT name FROM acme_challenges WHERE token=?").get(c.token) as
        | Row
        | undefined;
      if (other !== undefined && other.name !== s.name) {
        return `acme: challenge token of ${s.name} is already ${other.name}'s`;
      }
    }
    const { name, ...rest } = s;
    this.#sql.stmt(
      "INSERT INTO acme_names VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET " +
        "data=excluded.data, modify_index=excluded.modify_index",
    ).run(name, JSON.stringify(rest), createIndex, index);
    this.#sql.stmt("DELETE FROM acme_challenges WHERE name=?").run(name);
    for (const c of s.challenges) {
      this.#sql.stmt("INSERT INTO acme_challenges VALUES (?, ?, ?, ?)")
        .run(c.token, name, c.type, c.keyAuthorization);
    }
    return undefined;
  }

  drop(name: string): void {
    this.#sql.stmt("DELETE FROM acme_names WHERE name=?").run(name);
    this.#sql.stmt("DELETE FROM acme_challenges WHERE name=?").run(name);
  }

  /** `acme.renew`: the name is ordered again from `nowMs`, its failures forgiven. */
  renew(step: ApplyStep, name: string, nowMs: number): ApplyResult {
    const row = this.name(name);
    const spec: AcmeNameSpec = row === undefined
      ? {
        name,
        directory: "",
        order: null,
        challenges: [],
        failures: 0,
        nextAttemptMs: nowMs,
        lastError: "",
        lastErrorMs: 0,
        renew: true,
      }
      : { ...stripIndexes(row), failures: 0, nextAttemptMs: nowMs, renew: true };
    const problem = this.put(spec, row?.createIndex ?? step.index, step.index);
    if (problem !== undefined) return { ok: false, error: problem };
    step.change.tables.add("acme");
    return { ok: true };
  }
}

function stripIndexes(s: AcmeNameState): AcmeNameSpec {
  const { createIndex: _c, modifyIndex: _m, ...spec } = s;
  return spec;
}

function nameState(r: Row): AcmeNameState {
  const data = JSON.parse(String(r.data)) as Omit<AcmeNameSpec, "name">;
  return {
    name: String(r.name),
    ...data,
    createIndex: Number(r.create_index),
    modifyIndex: Number(r.modify_index),
  };
}
