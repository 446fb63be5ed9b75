/**
 * A `txn` command: Consul's KV transaction. Its operations run in order inside one apply; the
 * first that fails (a check that does not hold, a stale CAS, a lock held by another session)
 * makes the store roll all of them back, and every failure found is reported by position with
 * Consul's wording. Writes go through the same commands as the single-key API (`kv.put`,
 * `kv.delete`, `kv.lock`, `kv.unlock`), so a transaction never behaves differently from the
 * same operations one by one.
 *
 * Results, one per operation that returns one: the entry for `get` (with its value) and for the
 * writes and checks (without), every entry under the prefix for `get-tree`; nothing for deletes
 * and `check-not-exists`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { ApplyResult, Command, KvEntry, TxnEntry, TxnOp, TxnOutcome } from "./types.ts";

/** What a transaction reads and how it writes (the store, inside its savepoint). */
export interface TxnStore {
  kvGet(key: string): KvEntry | undefined;
  kvList(prefix: string): KvEntry[];
  holder(key: string): string | null;
  apply(cmd: Command): ApplyResult;
}

function entry(s: TxnStore, e: KvEntry, withValue: boolean): TxnEntry {
  return {
    key: e.key,
    value: withValue && e.value.byteLength > 0 ? Buffer.from(e.value).toString("base64") : null,
    flags: e.flags,
    session: s.holder(e.key),
    lockIndex: e.lockIndex,
    createIndex: e.createIndex,
    modifyIndex: e.modifyIndex,
  };
}

/** Whether every operation only reads (then no log entry is needed: the API answers locally). */
export function isReadOnlyTxn(ops: readonly TxnOp[]): boolean {
  return ops.every((op) => writeOf(op, 0) === null);
}

/** The write command an operation stands for, or null for a read or a check. */
function writeOf(op: TxnOp, nowMs: number): Command | null {
  const { key, value, flags } = op;
  switch (op.verb) {
    case "set":
      return { type: "kv.put", key, value, flags };
    case "cas":
      return { type: "kv.put", key, value, flags, cas: op.index };
    case "lock":
      return { type: "kv.lock", key, value, flags, session: op.session, nowMs };
    case "unlock":
      return { type: "kv.unlock", key, value, flags, session: op.session };
    case "delete":
      return { type: "kv.delete", key };
    case "delete-tree":
      return { type: "kv.delete", key, recurse: true };
    case "delete-cas":
      return { type: "kv.delete", key, cas: op.index };
    default:
      return null;
  }
}

/** Why a write that applied with `ok: false` (and no error) failed, in Consul's words. */
function refusal(op: TxnOp): string {
  switch (op.verb) {
    case "cas":
      return `failed to set key "${op.key}", index is stale`;
    case "lock":
      return `failed to lock key "${op.key}", lock is already held or its lock-delay runs`;
    case "unlock":
      return `failed to unlock key "${op.key}", lock isn't held, or is held by another session`;
    case "delete-cas":
      return `failed to delete key "${op.key}", index is stale`;
    default:
      return `failed to ${op.verb} key "${op.key}"`;
  }
}

/** A read or check: its results, or why it failed. */
function read(s: TxnStore, op: TxnOp): TxnEntry[] | string {
  if (op.verb === "get-tree") return s.kvList(op.key).map((e) => entry(s, e, true));
  const e = s.kvGet(op.key);
  if (op.verb === "check-not-exists") return e === undefined ? [] : `key "${op.key}" exists`;
  if (e === undefined) return `key "${op.key}" doesn't exist`;
  if (op.verb === "check-index" && e.modifyIndex !== op.index) {
    return `current modify index ${e.modifyIndex} != ${op.index}`;
  }
  if (op.verb === "check-session") {
    const holder = s.holder(op.key) ?? "";
    if (holder !== op.session) {
      return `failed session check for key "${op.key}", current session "${holder}" != "${op.session}"`;
    }
  }
  return [entry(s, e, op.verb === "get")];
}

/**
 * Runs `ops` against `s`; `ok` false (with the errors) when any failed: the caller then rolls the
 * writes back.
 */
export function runTxn(s: TxnStore, { ops, nowMs }: { ops: TxnOp[]; nowMs: number }) {
  const results: TxnEntry[] = [];
  const errors: { opIndex: number; what: string }[] = [];
  for (const [opIndex, op] of ops.entries()) {
    const write = writeOf(op, nowMs);
    if (write === null) {
      const r = read(s, op);
      if (typeof r === "string") errors.push({ opIndex, what: r });
      else results.push(...r);
      continue;
    }
    const r = s.apply(write);
    if (!r.ok) {
      errors.push({ opIndex, what: r.error ?? refusal(op) });
      continue;
    }
    if (write.type === "kv.delete") continue;
    const e = s.kvGet(op.key);
    if (e !== undefined) results.push(entry(s, e, false));
  }
  const txn: TxnOutcome = errors.length > 0 ? { errors } : { results };
  return { ok: errors.length === 0, txn };
}
