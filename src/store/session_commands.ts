/**
 * The rules for the session and lock commands (`session.create`, `session.destroy`, `kv.lock`,
 * `kv.unlock`, `txn`), called by validateCommand on every replica. Their limits are Consul's:
 * a TTL of 10 s to 24 h (or none), a lock delay of at most 60 s, at most 64 operations in a
 * transaction.
 *
 * @module
 */
import { bytes, fail, int, str } from "./rule_basics.ts";
import { type Command, type SessionSpec, TXN_VERBS, type TxnOp, type TxnVerb } from "./types.ts";

/** Shortest and longest session TTL (Consul's `session_ttl_min` default and its maximum). */
export const SESSION_TTL_MIN_MS = 10_000;
export const SESSION_TTL_MAX_MS = 86_400_000;
/** Longest lock delay (Consul's). */
export const LOCK_DELAY_MAX_MS = 60_000;
/** Lock delay when the creator gives none (Consul's). */
export const LOCK_DELAY_DEFAULT_MS = 15_000;
/** Most checks a session is bound to. */
export const SESSION_CHECKS_MAX = 64;
/** Most operations in one transaction (Consul's). */
export const TXN_OPS_MAX = 64;
/** A session id: a UUID in its canonical text form. */
export const SESSION_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const TYPES = new Set(["session.create", "session.destroy", "kv.lock", "kv.unlock", "txn"]);

/** Whether `type` is one of the commands this module checks. */
export function isSessionCommand(type: unknown): boolean {
  return typeof type === "string" && TYPES.has(type);
}

/** A session id: a UUID. */
export function sessionId(x: unknown, path: string): string {
  if (typeof x !== "string" || !SESSION_ID_RE.test(x)) fail(path, "a session id (a UUID)", x);
  return x;
}

function checkIds(x: unknown, path: string): string[] {
  if (!Array.isArray(x)) fail(path, "a list of check ids", x);
  if (x.length > SESSION_CHECKS_MAX) fail(path, `at most ${SESSION_CHECKS_MAX} checks`, "list");
  return x.map((v, i) => str(v, `${path}[${i}]`));
}

const now = (x: unknown, path: string) => int(x, path, 0, Number.MAX_SAFE_INTEGER);
const flags = (x: unknown, path: string) =>
  x === undefined ? 0 : int(x, path, 0, Number.MAX_SAFE_INTEGER);
const cas = (x: unknown, path: string) =>
  x === undefined || x === null ? {} : { cas: int(x, path, 0, Number.MAX_SAFE_INTEGER) };

function session(x: unknown, path: string): SessionSpec {
  if (typeof x !== "object" || x === null) fail(path, "an object", x);
  const s = x as Record<string, unknown>;
  if (s.behavior !== "release" && s.behavior !== "delete") {
    fail(`${path}.behavior`, "release|delete", s.behavior);
  }
  const ttlMs = typeof s.ttlMs === "number" && s.ttlMs === 0
    ? 0
    : int(s.ttlMs, `${path}.ttlMs`, SESSION_TTL_MIN_MS, SESSION_TTL_MAX_MS);
  return {
    id: sessionId(s.id, `${path}.id`),
    name: str(s.name, `${path}.name`, { empty: true }),
    node: str(s.node, `${path}.node`),
    nodeChecks: checkIds(s.nodeChecks, `${path}.nodeChecks`),
    serviceChecks: checkIds(s.serviceChecks, `${path}.serviceChecks`),
    lockDelayMs: int(s.lockDelayMs, `${path}.lockDelayMs`, 0, LOCK_DELAY_MAX_MS),
    behavior: s.behavior,
    ttl: ttlMs === 0 ? "" : str(s.ttl, `${path}.ttl`),
    ttlMs,
  };
}

function txnOp(x: unknown, path: string): TxnOp {
  if (typeof x !== "object" || x === null) fail(path, "an object", x);
  const o = x as Record<string, unknown>;
  if (!(TXN_VERBS as readonly unknown[]).includes(o.verb)) {
    fail(`${path}.verb`, TXN_VERBS.join("|"), o.verb);
  }
  const verb = o.verb as TxnVerb;
  const usesSession = verb === "lock" || verb === "unlock" || verb === "check-session";
  return {
    verb,
    key: str(o.key, `${path}.key`, { empty: verb === "get-tree" || verb === "delete-tree" }),
    value: o.value === undefined ? new Uint8Array(0) : bytes(o.value, `${path}.value`),
    flags: flags(o.flags, `${path}.flags`),
    index: o.index === undefined ? 0 : int(o.index, `${path}.index`, 0, Number.MAX_SAFE_INTEGER),
    session: usesSession && verb !== "check-session"
      ? sessionId(o.session, `${path}.session`)
      : o.session === undefined || o.session === ""
      ? ""
      : sessionId(o.session, `${path}.session`),
  };
}

/** Checks a session, lock or txn command (`o.type` passed isSessionCommand). */
export function validateSessionCommand(o: Record<string, unknown>, path: string): Command {
  switch (o.type) {
    case "session.create":
      return { type: "session.create", session: session(o.session, `${path}.session`) };
    case "session.destroy":
      return {
        type: "session.destroy",
        id: sessionId(o.id, `${path}.id`),
        nowMs: now(o.nowMs, `${path}.nowMs`),
      };
    case "kv.lock":
      return {
        type: "kv.lock",
        key: str(o.key, `${path}.key`),
        value: bytes(o.value, `${path}.value`),
        flags: flags(o.flags, `${path}.flags`),
        session: sessionId(o.session, `${path}.session`),
        nowMs: now(o.nowMs, `${path}.nowMs`),
        ...cas(o.cas, `${path}.cas`),
      };
    case "kv.unlock":
      return {
        type: "kv.unlock",
        key: str(o.key, `${path}.key`),
        value: bytes(o.value, `${path}.value`),
        flags: flags(o.flags, `${path}.flags`),
        session: sessionId(o.session, `${path}.session`),
        ...cas(o.cas, `${path}.cas`),
      };
    case "txn": {
      if (!Array.isArray(o.ops)) fail(`${path}.ops`, "a list", o.ops);
      if (o.ops.length > TXN_OPS_MAX) {
        fail(`${path}.ops`, `at most ${TXN_OPS_MAX} operations`, `${o.ops.length} operations`);
      }
      return {
        type: "txn",
        ops: o.ops.map((op, i) => txnOp(op, `${path}.ops[${i}]`)),
        nowMs: now(o.nowMs, `${path}.nowMs`),
      };
    }
    default:
      return fail(`${path}.type`, "a session, lock or txn command", o.type);
  }
}
