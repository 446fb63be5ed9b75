/**
 * ACL policies and tokens in the replicated state: their tables, the built-ins every store has
 * (Consul's `global-management` policy and anonymous token, same ids), how the `acl.*` commands
 * apply, and the reads. Tokens are kept by accessor with only the sha256 of their secret; a
 * token is found by that hash (src/acl/mod.ts resolveToken).
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { DatabaseSync } from "node:sqlite";
import type { ApplyStep } from "./apply_step.ts";
import type { Row, StoreDb } from "./db.ts";
import type { AclPolicy, AclToken, ApplyResult, Command } from "./types.ts";

/** Consul's id of the built-in management policy. */
export const GLOBAL_MANAGEMENT_ID = "00000000-0000-0000-0000-000000000001";
export const GLOBAL_MANAGEMENT_NAME = "global-management";
/** Consul's accessor of the anonymous token (what a request without a token is). */
export const ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002";
/** The anonymous token's secret, as in Consul. */
export const ANONYMOUS_SECRET = "anonymous";

export const ACL_SCHEMA = `
CREATE TABLE IF NOT EXISTS acl_policies (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL, rules TEXT NOT NULL,
  datacenters TEXT NOT NULL, create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS acl_tokens (
  accessor_id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL UNIQUE, description TEXT NOT NULL,
  policies TEXT NOT NULL, local INTEGER NOT NULL, create_time INTEGER NOT NULL,
  create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL) STRICT;
`;

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** Puts the built-in policy and anonymous token in when missing (new store, old snapshot). */
export function seedAclBuiltins(db: DatabaseSync): void {
  db.prepare("INSERT OR IGNORE INTO acl_policies VALUES (?, ?, ?, '', '[]', 0, 0)")
    .run(
      GLOBAL_MANAGEMENT_ID,
      GLOBAL_MANAGEMENT_NAME,
      "Builtin Policy that grants unlimited access",
    );
  db.prepare("INSERT OR IGNORE INTO acl_tokens VALUES (?, ?, ?, '[]', 0, 0, 0, 0)")
    .run(ANONYMOUS_ACCESSOR, sha256(ANONYMOUS_SECRET), "Anonymous Token");
}

/** An `acl.bootstrap`'s refusal once the cluster was bootstrapped (Consul's words). */
export const ACL_BOOTSTRAP_DONE = "ACL bootstrap no longer allowed";

/**
 * The `cluster` row that marks ACLs bootstrapped (Consul's bootstrap index): the index at which a
 * management token was first seen. Set when `--bootstrap`'s token or the first `acl.bootstrap`
 * is stored (or, for a store from before the marker, the first `acl.*` command or restore that
 * finds a management token); never cleared, and `cluster` is a table no restore replaces
 * (table_classes.ts), so bootstrap stays closed when the management tokens are deleted later.
 */
const BOOTSTRAP_KEY = "acl_bootstrap";

/** The index ACLs were bootstrapped at; undefined while `acl.bootstrap` is still open. */
export function aclBootstrapIndex(sql: StoreDb): number | undefined {
  const r = sql.stmt("SELECT value FROM cluster WHERE key=?").get(BOOTSTRAP_KEY) as
    | Row
    | undefined;
  return r === undefined ? undefined : Number(r.value);
}

/** Sets the bootstrap marker when a management token exists and it is not set yet. */
export function markAclBootstrapped(step: Pick<ApplyStep, "sql" | "index">): void {
  if (aclBootstrapIndex(step.sql) !== undefined) return;
  if (!aclTokens(step.sql).some((t) => t.policyIds.includes(GLOBAL_MANAGEMENT_ID))) return;
  step.sql.stmt("INSERT INTO cluster VALUES (?, ?)").run(BOOTSTRAP_KEY, String(step.index));
}

type AclCommand = Extract<Command, { type: `acl.${string}` }>;

/** Applies an `acl.*` command; a refusal changes nothing. */
export function applyAcl(step: ApplyStep, cmd: AclCommand): ApplyResult {
  // Before: a store from before the marker whose management token this command removes.
  markAclBootstrapped(step);
  const r = applyAclCommand(step, cmd);
  if (r.ok) {
    markAclBootstrapped(step);
    step.change.tables.add("acl");
  }
  return r;
}

function applyAclCommand(step: ApplyStep, cmd: AclCommand): ApplyResult {
  const { sql, index } = step;
  switch (cmd.type) {
    case "acl.policy.set": {
      const p = cmd.policy;
      const before = aclPolicy(sql, p.id);
      const named = aclPolicyByName(sql, p.name);
      if (named !== undefined && named.id !== p.id) {
        return refused(`a policy named ${p.name} already exists (id ${named.id})`);
      }
      if (
        p.id === GLOBAL_MANAGEMENT_ID && before !== undefined &&
        (p.name !== before.name || p.rules !== before.rules)
      ) {
        return refused(
          `the builtin ${GLOBAL_MANAGEMENT_NAME} policy's name and rules cannot change`,
        );
      }
      sql.stmt(
        `INSERT INTO acl_policies VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET
          name=excluded.name, description=excluded.description, rules=excluded.rules,
          datacenters=excluded.datacenters, modify_index=excluded.modify_index`,
      ).run(p.id, p.name, p.description, p.rules, JSON.stringify(p.datacenters), index, index);
      return { ok: true };
    }
    case "acl.policy.delete":
      if (cmd.id === GLOBAL_MANAGEMENT_ID) {
        return refused(`the builtin ${GLOBAL_MANAGEMENT_NAME} policy cannot be deleted`);
      }
      if (aclPolicy(sql, cmd.id) === undefined) return refused(`no policy with id ${cmd.id}`);
      sql.stmt("DELETE FROM acl_policies WHERE id=?").run(cmd.id);
      return { ok: true };
    case "acl.token.set": {
      const t = cmd.token;
      const before = sql.stmt("SELECT secret_hash FROM acl_tokens WHERE accessor_id=?")
        .get(t.accessorId) as Row | undefined;
      if (before === undefined && t.secretHash === undefined) {
        return refused(`no token with accessor ${t.accessorId} (a new token needs a secret)`);
      }
      if (
        before !== undefined && t.secretHash !== undefined && t.secretHash !== before.secret_hash
      ) {
        return refused("a token's secret cannot change");
      }
      const hash = t.secretHash ?? String(before!.secret_hash);
      const holder = sql.stmt("SELECT accessor_id FROM acl_tokens WHERE secret_hash=?").get(hash) as
        | Row
        | undefined;
      if (holder !== undefined && holder.accessor_id !== t.accessorId) {
        return refused("another token has this secret");
      }
      const ids: string[] = [];
      for (const l of t.policies) {
        const p = l.id !== undefined ? aclPolicy(sql, l.id) : aclPolicyByName(sql, l.name!);
        if (p === undefined) return refused(`no policy ${l.id ?? l.name}`);
        if (!ids.includes(p.id)) ids.push(p.id);
      }
      sql.stmt(
        `INSERT INTO acl_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(accessor_id) DO UPDATE
          SET description=excluded.description, policies=excluded.policies, local=excluded.local,
          modify_index=excluded.modify_index`,
      ).run(
        t.accessorId,
        hash,
        t.description,
        JSON.stringify(ids),
        t.local ? 1 : 0,
        t.createTimeMs,
        index,
        index,
      );
      return { ok: true };
    }
    case "acl.bootstrap": {
      if (aclBootstrapIndex(sql) !== undefined) return refused(ACL_BOOTSTRAP_DONE);
      const token = { ...cmd.token, policies: [{ id: GLOBAL_MANAGEMENT_ID }] };
      return applyAclCommand(step, { type: "acl.token.set", token });
    }
    case "acl.token.delete":
      if (cmd.accessorId === ANONYMOUS_ACCESSOR) {
        return refused("the anonymous token cannot be deleted");
      }
      if (aclToken(sql, cmd.accessorId) === undefined) {
        return refused(`no token with accessor ${cmd.accessorId}`);
      }
      sql.stmt("DELETE FROM acl_tokens WHERE accessor_id=?").run(cmd.accessorId);
      return { ok: true };
  }
}

const refused = (error: string): ApplyResult => ({ ok: false, error });

// ---- reads ----

function policyOf(r: Row): AclPolicy {
  return {
    id: String(r.id),
    name: String(r.name),
    description: String(r.description),
    rules: String(r.rules),
    datacenters: JSON.parse(String(r.datacenters)) as string[],
    createIndex: Number(r.create_index),
    modifyIndex: Number(r.modify_index),
  };
}

function tokenOf(sql: StoreDb, r: Row): AclToken {
  const ids = JSON.parse(String(r.policies)) as string[];
  return {
    accessorId: String(r.accessor_id),
    description: String(r.description),
    // A policy deleted after the token linked it is no longer one of its policies.
    policyIds: ids.filter((id) => aclPolicy(sql, id) !== undefined),
    local: r.local === 1,
    createTimeMs: Number(r.create_time),
    createIndex: Number(r.create_index),
    modifyIndex: Number(r.modify_index),
  };
}

export function aclPolicy(sql: StoreDb, id: string): AclPolicy | undefined {
  const r = sql.stmt("SELECT * FROM acl_policies WHERE id=?").get(id.toLowerCase()) as
    | Row
    | undefined;
  return r === undefined ? undefined : policyOf(r);
}

export function aclPolicyByName(sql: StoreDb, name: string): AclPolicy | undefined {
  const r = sql.stmt("SELECT * FROM acl_policies WHERE name=?").get(name) as Row | undefined;
  return r === undefined ? undefined : policyOf(r);
}

export function aclPolicies(sql: StoreDb): AclPolicy[] {
  return (sql.stmt("SELECT * FROM acl_policies ORDER BY name").all() as Row[]).map(policyOf);
}

export function aclToken(sql: StoreDb, accessorId: string): AclToken | undefined {
  const r = sql.stmt("SELECT * FROM acl_tokens WHERE accessor_id=?").get(
    accessorId.toLowerCase(),
  ) as Row | undefined;
  return r === undefined ? undefined : tokenOf(sql, r);
}

/** The token whose secret has this sha256 (hex), with that hash to compare in constant time. */
export function aclTokenByHash(
  sql: StoreDb,
  secretHash: string,
): { token: AclToken; secretHash: string } | undefined {
  const r = sql.stmt("SELECT * FROM acl_tokens WHERE secret_hash=?").get(secretHash) as
    | Row
    | undefined;
  return r === undefined
    ? undefined
    : { token: tokenOf(sql, r), secretHash: String(r.secret_hash) };
}

export function aclTokens(sql: StoreDb): AclToken[] {
  return (sql.stmt("SELECT * FROM acl_tokens ORDER BY create_index, accessor_id").all() as Row[])
    .map((r) => tokenOf(sql, r));
}
