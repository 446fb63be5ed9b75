/**
 * Edge certificates in the replicated state: the certificates the HTTPS listener serves, by
 * name, with their private keys sealed under the cluster key (the store and the Raft log never
 * hold a key in clear; src/pki/cluster_key.ts).
 *
 * - `cert.put` adds or replaces the certificate `cert.name`. When it is the default, every other
 *   certificate stops being the default in the same apply: at most one is.
 * - `cert.rm` removes one (refused, with the name, when there is none).
 * - `clusterkey.set` names the cluster key by its fingerprint (row `cluster_key` of the
 *   `cluster` table; never the key itself): the first one set stays, another is refused, so
 *   every member agrees on one key (src/cluster/_cluster_key.ts fetches the key that won).
 *
 * The rules (edge_cert_rules.ts) check every field's shape first, so a bad command is refused
 * with one line and never reaches a table.
 *
 * @module
 */
import type { ApplyStep } from "./apply_step.ts";
import type { Row, StoreDb } from "./db.ts";
import { EDGE_CERTS_MAX } from "./edge_cert_rules.ts";
import type { ApplyResult, Command, EdgeCert } from "./types.ts";

const EDGE_CERTS_COLUMNS = "name TEXT PRIMARY KEY, data TEXT NOT NULL, is_default INTEGER NOT NULL";
/** The table and its staging twin for a restore (restore_staging.ts). */
export const EDGE_CERTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS edge_certs (${EDGE_CERTS_COLUMNS}) STRICT;
CREATE TABLE IF NOT EXISTS restore_edge_certs (${EDGE_CERTS_COLUMNS}) STRICT;
`;

const CLUSTER_KEY_ROW = "cluster_key";

type EdgeCertCommand = Extract<Command, { type: "cert.put" | "cert.rm" | "clusterkey.set" }>;

/** Applies `cert.put` or `cert.rm` (module comment). */
export function applyEdgeCert(step: ApplyStep, cmd: EdgeCertCommand): ApplyResult {
  const sql = step.sql;
  switch (cmd.type) {
    case "cert.put": {
      const c = cmd.cert;
      const exists = sql.stmt("SELECT 1 FROM edge_certs WHERE name=?").get(c.name) !== undefined;
      if (!exists) {
        const n = Number((sql.stmt("SELECT count(*) AS n FROM edge_certs").get() as Row).n);
        if (n >= EDGE_CERTS_MAX) {
          return {
            ok: false,
            error: `${EDGE_CERTS_MAX} certificates exist; remove some (berth cert rm NAME)`,
          };
        }
      }
      if (c.isDefault) sql.stmt("UPDATE edge_certs SET is_default=0 WHERE is_default=1").run();
      const { name, isDefault, ...data } = c;
      sql.stmt(
        "INSERT INTO edge_certs VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET data=excluded.data, is_default=excluded.is_default",
      ).run(name, JSON.stringify(data), isDefault ? 1 : 0);
      step.change.tables.add("edge_certs");
      return { ok: true };
    }
    case "cert.rm": {
      const r = sql.stmt("DELETE FROM edge_certs WHERE name=?").run(cmd.name);
      if (Number(r.changes) === 0) return { ok: false, error: `no certificate ${cmd.name}` };
      step.change.tables.add("edge_certs");
      return { ok: true };
    }
    case "clusterkey.set": {
      const now = clusterKeyFingerprint(sql);
      if (now === cmd.fingerprint) return { ok: true };
      if (now !== undefined) {
        return { ok: false, error: `the cluster key is already set (${now.slice(0, 16)})` };
      }
      sql.stmt("INSERT INTO cluster VALUES (?, ?)").run(
        CLUSTER_KEY_ROW,
        JSON.stringify(cmd.fingerprint),
      );
      return { ok: true };
    }
  }
}

/** The fingerprint of the cluster key every member must hold, once one was set. */
export function clusterKeyFingerprint(sql: StoreDb): string | undefined {
  const r = sql.stmt("SELECT value FROM cluster WHERE key=?").get(CLUSTER_KEY_ROW) as
    | Row
    | undefined;
  return r === undefined ? undefined : JSON.parse(String(r.value)) as string;
}

function fromRow(r: Row): EdgeCert {
  const data = JSON.parse(String(r.data)) as Omit<EdgeCert, "name" | "isDefault">;
  return { name: String(r.name), ...data, isDefault: Number(r.is_default) !== 0 };
}

/** Every edge certificate, by name. */
export function edgeCerts(sql: StoreDb): EdgeCert[] {
  const rows = sql.stmt("SELECT name, data, is_default FROM edge_certs ORDER BY name").all();
  return (rows as Row[]).map(fromRow);
}

/** The edge certificate `name`, or undefined. */
export function edgeCertByName(sql: StoreDb, name: string): EdgeCert | undefined {
  const r = sql.stmt("SELECT name, data, is_default FROM edge_certs WHERE name=?").get(name);
  return r === undefined ? undefined : fromRow(r as Row);
}
