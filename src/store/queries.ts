/**
 * Reads of the store's tables, each a function of the `StoreDb` (the `Store` methods of the same
 * names call these; so do the apply functions, to find what a command changes).
 *
 * @module
 */
import type { Row, StoreDb } from "./db.ts";
import type {
  Instance,
  KvEntry,
  Member,
  NodeInfo,
  NodeStatus,
  RegisteredCheck,
  Table,
} from "./types.ts";

/** A node row's `data` column. */
export interface NodeData {
  address: string;
  status: NodeStatus;
  meta: Record<string, string>;
  /** Node-level checks; left out when there are none. */
  checks?: RegisteredCheck[];
}

/** A node's stored data, registered checks left out when there are none. */
export function nodeData(n: Pick<NodeInfo, "address" | "status" | "meta" | "checks">): NodeData {
  return {
    address: n.address,
    status: n.status,
    meta: n.meta,
    ...(n.checks === undefined || n.checks.length === 0 ? {} : { checks: n.checks }),
  };
}

/** The Raft membership as the `cluster` table keeps it. */
export interface ConfState {
  voters: number[];
  learners: number[];
}

/**
 * The instance a row holds: its stored JSON `data` and its indexes. Apply builds the rows it
 * announces (change_feed.ts) with this too, so they are what `instance()` reads back.
 */
export function instanceRow(data: string, createIndex: number, modifyIndex: number): Instance {
  const i = JSON.parse(data) as Instance;
  i.createIndex = createIndex;
  i.modifyIndex = modifyIndex;
  return i;
}

/** The columns an instance is read from, as `instanceFrom` takes them (array rows). */
const INSTANCE_COLUMNS = "data, create_index, modify_index";

/** An instance from an array row of INSTANCE_COLUMNS (no per-row column-name object). */
function instanceFrom(row: unknown[]): Instance {
  return instanceRow(row[0] as string, Number(row[1]), Number(row[2]));
}

function instancesFrom(rows: unknown[]): Instance[] {
  return (rows as unknown[][]).map(instanceFrom);
}

/** The node a row holds, like `instanceRow`. */
export function nodeRow(
  name: string,
  data: string,
  createIndex: number,
  modifyIndex: number,
): NodeInfo {
  const d = JSON.parse(data) as NodeData;
  return {
    name,
    address: d.address,
    status: d.status,
    meta: d.meta,
    ...(d.checks === undefined ? {} : { checks: d.checks }),
    createIndex,
    modifyIndex,
  };
}

function nodeFrom(row: Row): NodeInfo {
  return nodeRow(
    String(row.name),
    String(row.data),
    Number(row.create_index),
    Number(row.modify_index),
  );
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

/** Index of the last change to a table. */
export function tableIndex(sql: StoreDb, table: Table): number {
  return sql.metaGet(`index.${table}`);
}

/** Index of the last change to a service's instances, including deregistrations. */
export function serviceIndex(sql: StoreDb, service: string): number {
  const row = sql.stmt("SELECT idx FROM service_index WHERE service=?").get(service) as
    | Row
    | undefined;
  return row === undefined ? 0 : Number(row.idx);
}

export function instance(sql: StoreDb, id: string): Instance | undefined {
  const row = sql.arrays(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE id=?`).get(id);
  return row === undefined ? undefined : instanceFrom(row as unknown as unknown[]);
}

/** All instances, or those of one service, ordered by id. */
export function instances(sql: StoreDb, service?: string): Instance[] {
  return instancesFrom(
    service === undefined
      ? sql.arrays(`SELECT ${INSTANCE_COLUMNS} FROM instances ORDER BY id`).all()
      : sql.arrays(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE service=? ORDER BY id`)
        .all(service),
  );
}

/** The node of instance `id` (its row not parsed), or undefined when there is none. */
export function nodeOfInstance(sql: StoreDb, id: string): string | undefined {
  const row = sql.stmt("SELECT node FROM instances WHERE id=?").get(id) as Row | undefined;
  return row === undefined ? undefined : String(row.node);
}

/** Up to `limit` instances whose id sorts after `afterId`, ordered by id (chunked reads). */
export function instancesPage(sql: StoreDb, afterId: string, limit: number): Instance[] {
  return instancesFrom(
    sql.arrays(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE id > ? ORDER BY id LIMIT ?`)
      .all(afterId, limit),
  );
}

export function instancesOfNode(sql: StoreDb, node: string): Instance[] {
  return instancesFrom(
    sql.arrays(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE node=? ORDER BY id`).all(node),
  );
}

/** Names of the services with an instance on `node` (read from an index, no row parsed). */
export function servicesOfNode(sql: StoreDb, node: string): string[] {
  const rows = sql.stmt("SELECT DISTINCT service FROM instances WHERE node=?").all(node) as Row[];
  return rows.map((r) => String(r.service));
}

/** Names of the services with at least one instance. */
export function distinctServices(sql: StoreDb): Set<string> {
  const rows = sql.stmt("SELECT DISTINCT service FROM instances").all() as Row[];
  return new Set(rows.map((r) => String(r.service)));
}

/** Service names with the union of their instances' tags, sorted. */
export function services(sql: StoreDb): Map<string, string[]> {
  const out = new Map<string, Set<string>>();
  for (const i of instances(sql)) {
    const tags = out.get(i.service) ?? new Set<string>();
    for (const t of i.tags) tags.add(t);
    out.set(i.service, tags);
  }
  return new Map([...out].map(([k, v]) => [k, [...v].sort()]));
}

export function node(sql: StoreDb, name: string): NodeInfo | undefined {
  const row = sql.stmt("SELECT * FROM nodes WHERE name=?").get(name) as Row | undefined;
  return row === undefined ? undefined : nodeFrom(row);
}

export function nodes(sql: StoreDb): NodeInfo[] {
  return (sql.stmt("SELECT * FROM nodes ORDER BY name").all() as Row[]).map(nodeFrom);
}

export function kvGet(sql: StoreDb, key: string): KvEntry | undefined {
  const row = sql.stmt("SELECT * FROM kv WHERE key=?").get(key) as Row | undefined;
  return row === undefined ? undefined : kvFrom(row);
}

/** Entries whose key starts with `prefix`, in key order. */
export function kvList(sql: StoreDb, prefix: string): KvEntry[] {
  const rows = sql.stmt("SELECT * FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key")
    .all(prefix.length, prefix) as Row[];
  return rows.map(kvFrom);
}

/** Keys starting with `prefix`, in key order, without loading values. */
export function kvKeys(sql: StoreDb, prefix: string): string[] {
  const rows = sql.stmt("SELECT key FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key")
    .all(prefix.length, prefix) as Row[];
  return rows.map((r) => String(r.key));
}

/** The Raft membership as of the applied index (empty before the first conf change). */
export function confState(sql: StoreDb): ConfState {
  const row = sql.stmt("SELECT value FROM cluster WHERE key='conf'").get() as Row | undefined;
  return row === undefined
    ? { voters: [], learners: [] }
    : JSON.parse(String(row.value)) as ConfState;
}

/** Members with their role, by id. Members added without a name are listed as `node-<id>`. */
export function members(sql: StoreDb): Member[] {
  const cs = confState(sql);
  const rows = sql.stmt("SELECT * FROM members").all() as Row[];
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

/**
 * Names of members that were removed (their row stays, their id left the conf state) and that
 * no current member uses again, in id order.
 */
export function formerMembers(sql: StoreDb): string[] {
  const current = new Set(members(sql).map((m) => m.name));
  const cs = confState(sql);
  const ids = new Set([...cs.voters, ...cs.learners]);
  const rows = sql.stmt("SELECT id, name FROM members ORDER BY id").all() as Row[];
  const out: string[] = [];
  for (const r of rows) {
    const name = String(r.name);
    if (!ids.has(Number(r.id)) && !current.has(name) && !out.includes(name)) out.push(name);
  }
  return out;
}

/** Highest member id ever assigned; new members get a higher one (ids are never reused). */
export function memberIdMax(sql: StoreDb): number {
  return sql.metaGet("member_id_max");
}
