/**
 * Cluster security in the replicated state, applied the same way on every replica (times come
 * in the commands, stamped by the leader):
 *
 * - `pki` holds the cluster CA (`ca_cert`, `ca_key`), set once by `pki.init` at bootstrap.
 * - `join_tokens`: one row per token, its secret only as a sha256 hash. `token.create` adds one
 *   (expiry `nowMs + ttlMs`), `token.revoke` marks it revoked, `token.use` spends one use of a
 *   token that is known, has this hash, is not revoked, expired or used up, and records the
 *   certificate the leader issued with it, all in one apply (or nothing, with the reason).
 * - `certs`: every member certificate issued (serial, node, notAfter); `revoked` is the log
 *   index of its revocation, 0 while valid. Removing a member (a conf change: remove-peer,
 *   leave, force-leave) revokes every certificate of its name in that same apply
 *   (`revokeNode`), so its connections are refused from then on. A peer's certificate is
 *   accepted only while its row says issued and not revoked (an allow-list, _security.ts).
 *   Rows go once their notAfter is over CLOCK_SKEW_MS past (the applying command's time): TLS
 *   refuses such a certificate anyway, on any member whose clock is within the skew.
 *
 * Nothing here is ever logged or returned by an API: the CA key, the hashes.
 *
 * @module
 */
import { CLOCK_SKEW_MS, sameHash } from "../pki/mod.ts";
import type { ApplyStep } from "./apply_step.ts";
import type { Row, StoreDb } from "./db.ts";
import { members } from "./queries.ts";
import type { ApplyResult, CertRecord, Command, JoinTokenInfo } from "./types.ts";

export const PKI_SCHEMA = `
CREATE TABLE IF NOT EXISTS pki (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS join_tokens (
  id TEXT PRIMARY KEY, hash TEXT NOT NULL, data TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS certs (
  serial TEXT PRIMARY KEY, node TEXT NOT NULL, not_after INTEGER NOT NULL,
  revoked INTEGER NOT NULL, key TEXT NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS certs_node ON certs(node);
`;

/** Most join tokens kept; a create past it is refused (revoke or let some expire). */
export const JOIN_TOKENS_MAX = 1024;
/** Revoked, expired or used-up tokens are pruned this long after they stopped working. */
export const TOKEN_KEEP_MS = 7 * 86_400_000;

type PkiCommand = Extract<
  Command,
  { type: "pki.init" | "token.create" | "token.revoke" | "token.use" | "cert.record" }
>;

/** The token fields stored as JSON (everything but id and hash). */
type TokenData = Omit<JoinTokenInfo, "id">;

/** The cluster CA as stored. */
export interface StoredCa {
  certPem: string;
  keyPem: string;
}

/** Applies a cluster-security command (module comment). */
export function applyPki(step: ApplyStep, cmd: PkiCommand): ApplyResult {
  const p = new PkiState(step.sql);
  switch (cmd.type) {
    case "pki.init":
      if (p.ca() !== undefined) return { ok: false, error: "the cluster CA is already set" };
      step.sql.stmt("INSERT INTO pki VALUES ('ca_cert', ?), ('ca_key', ?)")
        .run(cmd.caCert, cmd.caKey);
      return { ok: true };
    case "token.create":
      return p.create(cmd);
    case "token.revoke": {
      const t = p.token(cmd.id);
      if (t === undefined) return { ok: false, error: `no join token ${cmd.id}` };
      if (t.revokedAt === null) p.putToken(cmd.id, { ...t, revokedAt: cmd.nowMs });
      return { ok: true };
    }
    case "token.use": {
      const problem = p.tokenProblem(cmd.id, cmd.hash, cmd.nowMs) ??
        p.enrollProblem(cmd.cert.node, cmd.cert.key, cmd.nowMs);
      if (problem !== undefined) return { ok: false, error: problem };
      const t = p.token(cmd.id)!;
      if (t.usesLeft !== null) p.putToken(cmd.id, { ...t, usesLeft: t.usesLeft - 1 });
      return p.record(cmd.cert, cmd.nowMs);
    }
    case "cert.record":
      if (!members(step.sql).some((m) => m.name === cmd.cert.node)) {
        return { ok: false, error: `${cmd.cert.node} is not a member` };
      }
      return p.record(cmd.cert, cmd.nowMs);
  }
}

/**
 * In the apply of a conf change removing member `name`: every certificate of that name is
 * revoked at `index`.
 */
export function revokeNode(sql: StoreDb, name: string, index: number): void {
  sql.stmt("UPDATE certs SET revoked=? WHERE node=? AND revoked=0").run(index, name);
}

/** The security tables over the store's connection: apply steps and reads. */
export class PkiState {
  readonly #sql: StoreDb;

  constructor(sql: StoreDb) {
    this.#sql = sql;
  }

  /** The cluster CA; undefined in a store made without TLS (or before bootstrap applied). */
  ca(): StoredCa | undefined {
    const rows = this.#sql.stmt("SELECT key, value FROM pki").all() as Row[];
    const get = (k: string) => rows.find((r) => r.key === k)?.value;
    const certPem = get("ca_cert");
    const keyPem = get("ca_key");
    return certPem === undefined || keyPem === undefined
      ? undefined
      : { certPem: String(certPem), keyPem: String(keyPem) };
  }

  /** Every join token, oldest first (never a hash). */
  tokens(): JoinTokenInfo[] {
    const rows = this.#sql.stmt("SELECT id, data FROM join_tokens").all() as Row[];
    return rows.map((r) => ({ id: String(r.id), ...JSON.parse(String(r.data)) as TokenData }))
      .sort((a, b) => a.created - b.created || a.id.localeCompare(b.id));
  }

  token(id: string): JoinTokenInfo | undefined {
    const r = this.#sql.stmt("SELECT data FROM join_tokens WHERE id=?").get(id) as Row | undefined;
    return r === undefined ? undefined : { id, ...JSON.parse(String(r.data)) as TokenData };
  }

  /**
   * Why token `id` with secret hash `hash` cannot be used at `nowMs` (one line naming the
   * token by id, never the secret), or undefined when it can.
   */
  tokenProblem(id: string, hash: string, nowMs: number): string | undefined {
    const r = this.#sql.stmt("SELECT hash, data FROM join_tokens WHERE id=?").get(id) as
      | Row
      | undefined;
    if (r === undefined) return `join token ${id} is not known`;
    if (!sameHash(String(r.hash), hash)) return `join token ${id}: wrong secret`;
    const t = JSON.parse(String(r.data)) as TokenData;
    if (t.revokedAt !== null) return `join token ${id} was revoked`;
    if (t.expires !== null && nowMs >= t.expires) return `join token ${id} has expired`;
    if (t.usesLeft === 0) return `join token ${id} is used up`;
    return undefined;
  }

  /**
   * Why a certificate for `node` with public key hash `key` may not be issued by enrollment at
   * `nowMs`: `node` is a current member (a token must not hand out a member's identity; a
   * member whose certificate expired issues itself a new one, _security.ts), or the name has a
   * valid certificate for another key (a token holder cannot take a name someone enrolled
   * under; the same key may enroll again, its first answer lost).
   */
  enrollProblem(node: string, key: string, nowMs: number): string | undefined {
    if (members(this.#sql).some((m) => m.name === node)) {
      return `${node} is a member; remove it first (berth raft remove-peer) to enroll that name`;
    }
    const other = this.#sql.stmt(
      "SELECT 1 FROM certs WHERE node=? AND revoked=0 AND not_after>? AND key<>? LIMIT 1",
    ).get(node, nowMs, key);
    return other === undefined
      ? undefined
      : `${node} has a valid certificate for another key (enrolled by another host)`;
  }

  /**
   * The certificate with `serial` (lower-case hex): recorded as issued and not revoked
   * ("valid"), revoked, or not recorded ("unknown": never issued by this cluster, pruned after
   * its end, or issued by an entry this replica has not applied yet).
   */
  certStatus(serial: string): "valid" | "revoked" | "unknown" {
    const r = this.#sql.stmt("SELECT revoked FROM certs WHERE serial=?").get(serial) as
      | Row
      | undefined;
    return r === undefined ? "unknown" : Number(r.revoked) !== 0 ? "revoked" : "valid";
  }

  /** Whether the certificate with `serial` (lower-case hex) was revoked. */
  revoked(serial: string): boolean {
    const r = this.#sql.stmt("SELECT revoked FROM certs WHERE serial=?").get(serial) as
      | Row
      | undefined;
    return r !== undefined && Number(r.revoked) !== 0;
  }

  /** The certificates recorded for `node`, newest first. */
  certsOf(node: string): (CertRecord & { revoked: boolean })[] {
    const rows = this.#sql.stmt(
      "SELECT serial, not_after, revoked, key FROM certs WHERE node=? ORDER BY not_after DESC",
    ).all(node) as Row[];
    return rows.map((r) => ({
      serial: String(r.serial),
      node,
      notAfter: Number(r.not_after),
      key: String(r.key),
      revoked: Number(r.revoked) !== 0,
    }));
  }

  // ---- apply ----

  create(cmd: Extract<Command, { type: "token.create" }>): ApplyResult {
    this.#prune(cmd.nowMs);
    if (this.#sql.stmt("SELECT 1 FROM join_tokens WHERE id=?").get(cmd.id) !== undefined) {
      return { ok: false, error: `join token ${cmd.id} exists` };
    }
    const count = Number(
      (this.#sql.stmt("SELECT count(*) AS n FROM join_tokens").get() as Row).n,
    );
    if (count >= JOIN_TOKENS_MAX) {
      return {
        ok: false,
        error: `${JOIN_TOKENS_MAX} join tokens exist; revoke some (berth token revoke ID)`,
      };
    }
    this.#sql.stmt("INSERT INTO join_tokens VALUES (?, ?, ?)").run(
      cmd.id,
      cmd.hash,
      JSON.stringify(
        {
          created: cmd.nowMs,
          expires: cmd.ttlMs === null ? null : cmd.nowMs + cmd.ttlMs,
          usesLeft: cmd.uses,
          revokedAt: null,
          description: cmd.description,
        } satisfies TokenData,
      ),
    );
    return { ok: true };
  }

  putToken(id: string, t: JoinTokenInfo): void {
    const data: TokenData = {
      created: t.created,
      expires: t.expires,
      usesLeft: t.usesLeft,
      revokedAt: t.revokedAt,
      description: t.description,
    };
    this.#sql.stmt("UPDATE join_tokens SET data=? WHERE id=?").run(JSON.stringify(data), id);
  }

  record(cert: CertRecord, nowMs: number): ApplyResult {
    if (this.#sql.stmt("SELECT 1 FROM certs WHERE serial=?").get(cert.serial) !== undefined) {
      return { ok: false, error: `certificate serial ${cert.serial} is already recorded` };
    }
    // Kept for the clock skew past their end: a member whose clock runs behind the leader's
    // still sees a revoked certificate as revoked, not as unknown.
    this.#sql.stmt("DELETE FROM certs WHERE not_after<?").run(nowMs - CLOCK_SKEW_MS);
    this.#sql.stmt(
      "INSERT INTO certs (serial, node, not_after, revoked, key) VALUES (?, ?, ?, 0, ?)",
    )
      .run(cert.serial, cert.node, cert.notAfter, cert.key);
    return { ok: true };
  }

  /** Tokens that stopped working (revoked, expired, used up) over TOKEN_KEEP_MS ago go. */
  #prune(nowMs: number): void {
    for (const t of this.tokens()) {
      const ended = t.revokedAt ?? t.expires ?? (t.usesLeft === 0 ? t.created : null);
      if (ended !== null && ended <= nowMs && nowMs - ended > TOKEN_KEEP_MS) {
        this.#sql.stmt("DELETE FROM join_tokens WHERE id=?").run(t.id);
      }
    }
  }
}
