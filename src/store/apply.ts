/**
 * One validated command applied inside the store's transaction: `applyCommand` sends it to its
 * family (apply_catalog.ts: nodes and instances; apply_checks.ts: registered checks; apply_kv.ts; apply_members.ts: Raft membership;
 * restore_staging.ts: `restore.*`) and applies a `batch` whole or not at all. What it changes is
 * noted in the step's `ChangeSet`. Deterministic: everything it needs is in the command and the
 * entry's index.
 *
 * @module
 */
import type { ApplyStep } from "./apply_step.ts";
import { ChangeSet } from "./change_feed.ts";
import type { ApplyResult, Command } from "./types.ts";
import { applyCatalog } from "./apply_catalog.ts";
import { applyKv } from "./apply_kv.ts";
import { applyCheck } from "./apply_checks.ts";
import { applyConf } from "./apply_members.ts";
import { distinctServices } from "./queries.ts";

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
      return applyCatalog(step, cmd);
    case "check.register":
    case "check.update":
    case "check.deregister":
      return applyCheck(step, cmd);
    case "kv.put":
    case "kv.delete":
      return applyKv(step, cmd);
    case "restore.begin":
      return step.restore.begin(cmd.id);
    case "restore.chunk":
      return step.restore.chunk(cmd.id, cmd.seq, cmd.data);
    case "restore.commit":
      return commitRestore(step, cmd);
    case "restore.abort":
      return step.restore.abort(cmd.id);
  }
}

/**
 * A `batch` applies whole or not at all: the first sub-command that fails (invalid target, failed
 * CAS) rolls the others back inside a savepoint, the same on every replica, and the result names
 * it by position.
 */
function applyBatch(step: ApplyStep, commands: readonly Command[]): ApplyResult {
  const db = step.sql.db;
  const inner: ApplyStep = { ...step, change: new ChangeSet() };
  db.exec("SAVEPOINT batch");
  let failed: ApplyResult | undefined;
  try {
    for (const [n, c] of commands.entries()) {
      const r = applyCommand(inner, c);
      if (!r.ok) {
        failed = {
          ok: false,
          error: `batch command ${n} (${c.type}): ${r.error ?? "compare-and-set failed"}`,
        };
        break;
      }
    }
  } catch (e) {
    db.exec("ROLLBACK TO batch");
    db.exec("RELEASE batch");
    throw e;
  }
  if (failed !== undefined) {
    db.exec("ROLLBACK TO batch");
    db.exec("RELEASE batch");
    return failed;
  }
  db.exec("RELEASE batch");
  step.change.merge(inner.change);
  return { ok: true };
}

/** Swaps a staged restore in; every service present before or after it has changed. */
function commitRestore(
  step: ApplyStep,
  cmd: Extract<Command, { type: "restore.commit" }>,
): ApplyResult {
  const before = distinctServices(step.sql);
  const r = step.restore.commit(step.index, cmd);
  if (!r.ok) return r;
  const ch = step.change;
  for (const s of before) ch.services.add(s);
  for (const s of distinctServices(step.sql)) ch.services.add(s);
  for (const t of ["nodes", "instances", "kv"] as const) ch.tables.add(t);
  return r;
}
