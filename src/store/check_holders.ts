/**
 * Which instance holds a registered check: `check_holders` maps (node, CheckID) to the instance
 * whose `checks` carry it, so finding a check by its id (a TTL report, a `check.*` command, a
 * registration's CheckID clash, a session's checks) reads one row instead of every instance of
 * the node (a node can hold 100,000). Derived from `instances`: written beside every instance
 * write (apply_catalog.ts), never in a snapshot (class `local`), rebuilt from `instances` when a
 * store is opened, a snapshot installed or a restore committed.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import type { Row, StoreDb } from "./db.ts";
import type { CheckReader } from "./checks.ts";
import { instance, instancesOfNode, node } from "./queries.ts";
import type { Instance } from "./types.ts";

export const CHECK_HOLDERS_SCHEMA = `
CREATE TABLE IF NOT EXISTS check_holders (
  node TEXT NOT NULL, id TEXT NOT NULL, instance TEXT NOT NULL, PRIMARY KEY (node, id)
) STRICT, WITHOUT ROWID;
`;

type Holder = Pick<Instance, "id" | "node" | "checks">;

/** Moves the instance's entries from what `before` held to what `after` holds (null: none). */
export function noteCheckHolders(sql: StoreDb, before: Holder | null, after: Holder | null): void {
  const had = before?.checks ?? [];
  const has = after?.checks ?? [];
  if (had.length === 0 && has.length === 0) return;
  if (
    before !== null && after !== null && before.node === after.node && had.length === has.length &&
    had.every((c, n) => c.id === has[n]!.id)
  ) {
    return; // the same ids on the same node (a result changed)
  }
  const del = sql.stmt("DELETE FROM check_holders WHERE node=? AND id=? AND instance=?");
  for (const c of had) del.run(before!.node, c.id, before!.id);
  const put = sql.stmt("INSERT OR REPLACE INTO check_holders VALUES (?, ?, ?)");
  for (const c of has) put.run(after!.node, c.id, after!.id);
}

/** The id of the instance on `node` whose registered checks include `id`, if any. */
export function checkHolderId(sql: StoreDb, node: string, id: string): string | undefined {
  const row = sql.stmt("SELECT instance FROM check_holders WHERE node=? AND id=?").get(node, id) as
    | Row
    | undefined;
  return row === undefined ? undefined : String(row.instance);
}

/** The instance on `node` whose registered checks include `id`, if any. */
export function checkHolder(sql: StoreDb, node: string, id: string): Instance | undefined {
  const holder = checkHolderId(sql, node, id);
  return holder === undefined ? undefined : instance(sql, holder);
}

/** Check lookups (checks.ts) on the store's tables, inside an apply or out of one. */
export function checkReader(sql: StoreDb): CheckReader {
  return {
    node: (name) => node(sql, name),
    instancesOfNode: (name) => instancesOfNode(sql, name),
    instance: (id) => instance(sql, id),
    checkHolder: (n, id) => checkHolder(sql, n, id),
  };
}

/**
 * Fills `check_holders` from `instances` again, in SQL (no row reaches JavaScript). Where two
 * instances of a node held the same id (the apply rules keep ids unique on a node), the first
 * by instance id is kept, as a scan of the node's instances in id order finds it.
 */
export function rebuildCheckHolders(db: DatabaseSync): void {
  db.exec("DELETE FROM check_holders");
  db.exec(`INSERT OR IGNORE INTO check_holders
    SELECT i.node, json_extract(c.value, '$.id'), i.id
    FROM instances i, json_each(i.data, '$.checks') c
    WHERE json_type(i.data, '$.checks') = 'array'
    ORDER BY i.id`);
}
