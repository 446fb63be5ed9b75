/**
 * `conf`: the Raft membership after a configuration change, applied at the change's index so
 * every replica (and every snapshot) holds the same members. A member's id is never reused:
 * `member_id_max` only grows. A removed member's row stays (its id is no longer in the conf
 * state): its name is how the leader finds the registrations it left behind (`formerMembers`).
 * Removing a member revokes its certificates in the same apply (pki_state.ts `revokeNode`).
 *
 * @module
 */
import type { ApplyStep } from "./apply_step.ts";
import type { ApplyResult, Command } from "./types.ts";
import { revokeNode } from "./pki_state.ts";

export function applyConf(
  step: ApplyStep,
  cmd: Extract<Command, { type: "conf" }>,
): ApplyResult {
  const { sql } = step;
  sql.stmt(
    "INSERT INTO cluster VALUES ('conf', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
  ).run(JSON.stringify({ voters: cmd.voters, learners: cmd.learners }));
  if (cmd.remove !== undefined) {
    // A removed member's certificates are revoked in the same apply (pki_state.ts).
    const row = sql.stmt("SELECT name FROM members WHERE id=?").get(cmd.remove) as
      | { name: string }
      | undefined;
    if (row !== undefined) revokeNode(sql, String(row.name), step.index);
  }
  if (cmd.upsert !== undefined) {
    const m = cmd.upsert;
    sql.stmt(
      `INSERT INTO members VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET
       name=excluded.name, address=excluded.address, nonce=excluded.nonce`,
    ).run(m.id, m.name, m.address, m.nonce ?? "");
    if (m.id > sql.metaGet("member_id_max")) sql.metaSet("member_id_max", m.id);
  }
  step.change.tables.add("members");
  return { ok: true };
}
