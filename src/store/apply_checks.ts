/**
 * The registered checks' commands (`check.register`, `check.update`, `check.deregister`):
 * checks.ts plans what changes, this writes it. A node-level check is part of the health of every
 * instance on its node, so changing one announces every service of the node.
 *
 * @module
 */
import type { ApplyStep } from "./apply_step.ts";
import { putHealth, putNode } from "./apply_catalog.ts";
import { planCheckCommand } from "./checks.ts";
import { node, nodeData } from "./queries.ts";
import { checkReader } from "./check_holders.ts";
import type { ApplyResult, Command } from "./types.ts";

type CheckCommand = Extract<Command, { type: `check.${string}` }>;

export function applyCheck(step: ApplyStep, cmd: CheckCommand): ApplyResult {
  const { sql } = step;
  const old = node(sql, cmd.node);
  const plan = planCheckCommand(cmd, old, checkReader(sql));
  if (typeof plan === "string") return { ok: false, error: plan };
  for (const { instance, checks } of plan.instances) {
    putHealth(step, instance, { ...instance, checks });
  }
  if (plan.nodeChecks !== undefined && old !== undefined) {
    // putNode announces every service of the node when the checks changed.
    putNode(step, { name: old.name, data: nodeData({ ...old, checks: plan.nodeChecks }), old });
  }
  return { ok: true };
}
