/**
 * One validated command applied inside the store's transaction: `applyCommand` sends it to its
 * family (apply_catalog.ts: nodes and instances; apply_checks.ts: registered checks; apply_kv.ts; apply_members.ts: Raft membership;
 * sessions.ts: sessions and KV locks; acl_tables.ts: `acl.*`; restore_staging.ts: `restore.*`;
 * pki_state.ts: the CA, join tokens, certificates; edge_certs.ts: certificates the proxy serves;
 * acme_state.ts: ACME orders) and applies a `batch` and a
 * `txn` (txn.ts) whole or not at all. What it changes is
 * noted in the step's `ChangeSet`. Deterministic: everything it needs is in the command and the
 * entry's index.
 *
 * @module
 */
import type { ApplyStep } from "./apply_step.ts";
import { ChangeSet } from "./change_feed.ts";
import type { ApplyResult, CheckTimedCommand, Command } from "./types.ts";
import { applyCatalog } from "./apply_catalog.ts";
import { applyKv } from "./apply_kv.ts";
import { applyCheck } from "./apply_checks.ts";
import { applyConf } from "./apply_members.ts";
import { distinctServices, kvGet, kvList, nodeOfInstance } from "./queries.ts";
import { applySession, endSessionsOfFailedChecks, Sessions } from "./sessions.ts";
import { runTxn } from "./txn.ts";
import { applyAcl, markAclBootstrapped, seedAclBuiltins } from "./acl_tables.ts";
import { applyPki } from "./pki_state.ts";
import { applyEdgeCert } from "./edge_certs.ts";
import { applyAcme } from "./acme_state.ts";
import { rebuildCheckHolders } from "./check_holders.ts";

export function applyCommand(step: ApplyStep, cmd: Command): ApplyResult {
  switch (cmd.type) {
    case "noop":
      return { ok: true };
    case "batch":
      return applyBatch(step, cmd.commands);
    case "conf":
      return applyConf(step, cmd);
    case "node.register":
    case "node.status":
    case "register":
    case "deregister":
    case "check":
    case "docker":
    case "check.register":
    case "check.update":
    case "check.deregister":
      return applyCheckTimed(step, cmd);
    case "kv.put":
    case "kv.delete":
      return applyKv(step, cmd);
    case "session.create":
    case "session.destroy":
    case "kv.lock":
    case "kv.unlock":
      return applySession(step, cmd);
    case "txn":
      return atomically(step, (inner) =>
        runTxn({
          kvGet: (key) => kvGet(step.sql, key),
          kvList: (prefix) => kvList(step.sql, prefix),
          holder: (key) => new Sessions(step.sql).holder(key),
          apply: (c) => applyCommand(inner, c),
        }, cmd));
    case "acl.policy.set":
    case "acl.policy.delete":
    case "acl.token.set":
    case "acl.token.delete":
    case "acl.bootstrap":
      return applyAcl(step, cmd);
    case "restore.begin":
      return step.restore.begin(cmd.id);
    case "restore.chunk":
      return step.restore.chunk(cmd.id, cmd.seq, cmd.data);
    case "restore.commit":
      return commitRestore(step, cmd);
    case "restore.abort":
      return step.restore.abort(cmd.id);
    case "pki.init":
    case "token.create":
    case "token.revoke":
    case "token.use":
    case "cert.record":
      return applyPki(step, cmd);
    case "cert.put":
    case "cert.rm":
    case "clusterkey.set":
      return applyEdgeCert(step, cmd);
    case "acme.claim":
    case "acme.account.create":
    case "acme.account.url":
    case "acme.name.set":
    case "acme.name.drop":
    case "acme.renew":
      return applyAcme(step, cmd);
  }
}

/**
 * A command that can fail or remove a check, then (same transaction) the end of the sessions of
 * its node bound to a check that is now critical or gone (sessions.ts).
 */
function applyCheckTimed(step: ApplyStep, cmd: CheckTimedCommand): ApplyResult {
  let nodeName: string | undefined;
  switch (cmd.type) {
    case "node.register":
    case "node.status":
      nodeName = cmd.name;
      break;
    case "register":
      nodeName = cmd.instance.node;
      break;
    case "deregister":
    case "check":
    case "docker":
      nodeName = nodeOfInstance(step.sql, cmd.id); // before a deregister removes it
      break;
    default:
      nodeName = cmd.node;
  }
  const r = cmd.type.startsWith("check.")
    ? applyCheck(step, cmd as Extract<CheckTimedCommand, { type: `check.${string}` }>)
    : applyCatalog(step, cmd as Exclude<CheckTimedCommand, { type: `check.${string}` }>);
  if (r.ok && nodeName !== undefined) endSessionsOfFailedChecks(step, nodeName, cmd.nowMs ?? 0);
  return r;
}

/**
 * A `batch` applies whole or not at all: the first sub-command that fails (invalid target, failed
 * CAS) rolls the others back inside a savepoint, the same on every replica, and the result names
 * it by position.
 */
function applyBatch(step: ApplyStep, commands: readonly Command[]): ApplyResult {
  return atomically(step, (inner) => {
    for (const [n, c] of commands.entries()) {
      const r = applyCommand(inner, c);
      if (!r.ok) {
        return {
          ok: false,
          error: `batch command ${n} (${c.type}): ${r.error ?? "compare-and-set failed"}`,
        };
      }
    }
    return { ok: true };
  });
}

/**
 * Runs `fn` in a savepoint with a change set of its own: when it fails (`ok` false) everything
 * it changed is rolled back, the same on every replica, and none of it reaches the change feed.
 */
function atomically(step: ApplyStep, fn: (inner: ApplyStep) => ApplyResult): ApplyResult {
  const db = step.sql.db;
  const inner: ApplyStep = { ...step, change: new ChangeSet() };
  db.exec("SAVEPOINT batch");
  let r: ApplyResult;
  try {
    r = fn(inner);
  } catch (e) {
    db.exec("ROLLBACK TO batch");
    db.exec("RELEASE batch");
    throw e;
  }
  if (!r.ok) {
    db.exec("ROLLBACK TO batch");
    db.exec("RELEASE batch");
    return r;
  }
  db.exec("RELEASE batch");
  step.change.merge(inner.change);
  return r;
}

/** Swaps a staged restore in; every service present before or after it has changed. */
function commitRestore(
  step: ApplyStep,
  cmd: Extract<Command, { type: "restore.commit" }>,
): ApplyResult {
  const before = distinctServices(step.sql);
  // A store from before the bootstrap marker: its management tokens count before they go.
  if (cmd.acl) markAclBootstrapped(step);
  const r = step.restore.commit(step.index, cmd);
  if (!r.ok) return r;
  rebuildCheckHolders(step.sql.db);
  const ch = step.change;
  ch.reset = true;
  for (const s of before) ch.services.add(s);
  for (const s of distinctServices(step.sql)) ch.services.add(s);
  for (const t of ["nodes", "instances", "kv"] as const) ch.tables.add(t);
  if (cmd.certs) ch.tables.add("edge_certs");
  if (cmd.acl) {
    // The snapshot's store had them, but a store never goes without them.
    seedAclBuiltins(step.sql.db);
    markAclBootstrapped(step);
    ch.tables.add("acl");
  }
  const sessions = new Sessions(step.sql);
  sessions.restored();
  // Sessions whose checks the restore failed or removed end too (they hold no lock any more).
  for (const n of new Set(sessions.list().map((x) => x.node))) {
    endSessionsOfFailedChecks(step, n, 0);
  }
  return r;
}
