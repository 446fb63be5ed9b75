/**
 * `kv.put` and `kv.delete`: a key's createIndex stays from its first write, modifyIndex is the
 * entry's index; `cas` (the modifyIndex expected, 0 for "absent") fails the command with no error
 * text when the key moved, as Consul answers `false` (a CAS delete of a key already gone
 * succeeds, as in Consul). Deleting a key frees its lock (sessions.ts).
 *
 * @module
 */
import type { ApplyStep } from "./apply_step.ts";
import { kvGet, kvList } from "./queries.ts";
import { Sessions } from "./sessions.ts";
import type { ApplyResult, Command } from "./types.ts";

type KvCommand = Extract<Command, { type: "kv.put" | "kv.delete" }>;

/** A key's modifyIndex (undefined when absent), without reading its value. */
function kvModifyIndex(sql: ApplyStep["sql"], key: string): number | undefined {
  const row = sql.stmt("SELECT modify_index FROM kv WHERE key=?").get(key) as
    | { modify_index: number }
    | undefined;
  return row === undefined ? undefined : Number(row.modify_index);
}

export function applyKv(step: ApplyStep, cmd: KvCommand): ApplyResult {
  const { sql, index, change } = step;
  if (cmd.type === "kv.put") {
    if (cmd.cas !== undefined && (kvModifyIndex(sql, cmd.key) ?? 0) !== cmd.cas) {
      return { ok: false };
    }
    // A new key's createIndex is this index; an existing key keeps its own (not in the SET).
    sql.stmt(
      `INSERT INTO kv VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT(key) DO UPDATE SET
       value=excluded.value, flags=excluded.flags, modify_index=excluded.modify_index`,
    ).run(cmd.key, cmd.value, cmd.flags, index, index);
    change.tables.add("kv");
    change.keys.add(cmd.key);
    return { ok: true };
  }
  if (cmd.recurse) {
    const keys = kvList(sql, cmd.key).map((e) => e.key);
    if (keys.length === 0) return { ok: true };
    sql.stmt("DELETE FROM kv WHERE substr(key, 1, ?) = ?").run(cmd.key.length, cmd.key);
    new Sessions(sql).keysDeleted(cmd.key, true);
    for (const k of keys) change.keys.add(k);
    change.tables.add("kv");
    return { ok: true };
  }
  const old = kvGet(sql, cmd.key);
  // A key already gone is deleted, whatever `cas` says (Consul answers true).
  if (old === undefined) return { ok: true };
  if (cmd.cas !== undefined && old.modifyIndex !== cmd.cas) return { ok: false };
  sql.stmt("DELETE FROM kv WHERE key=?").run(cmd.key);
  new Sessions(sql).keysDeleted(cmd.key, false);
  change.tables.add("kv");
  change.keys.add(cmd.key);
  return { ok: true };
}
