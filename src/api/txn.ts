/**
 * `PUT /v1/txn`: Consul's transaction API for KV operations. The body is a JSON list of at most
 * 64 `{"KV": {Verb, Key, Value (base64), Flags, Index, Session}}`; they apply atomically in one
 * Raft entry (store/txn.ts). 200 `{"Results": [{"KV": entry}], "Errors": null}` when every
 * operation held, 409 `{"Results": null, "Errors": [{"OpIndex", "What"}]}` when one did not
 * (nothing changed). Node, service and check operations are refused (400). A transaction that
 * only reads (get, get-tree, check-*) is answered from this member's replica without a log entry,
 * as Consul does, with the read headers and `?stale` / `?consistent`.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { Buffer } from "node:buffer";
import {
  isReadOnlyTxn,
  runTxn,
  TXN_OPS_MAX,
  TXN_VERBS,
  type TxnEntry,
  type TxnOp,
  type TxnOutcome,
  type TxnVerb,
  VALUE_BYTES_MAX,
} from "../store/mod.ts";
import { type Deps, prepareRead, proposeChecked } from "./deps.ts";
import { badRequest, HttpError, readBody } from "./http_error.ts";
import { keepAllowed, requirePrefixWrite, requireRight } from "./acl_enforce.ts";

/** Largest transaction body: 64 values of the largest size, base64, and their keys. */
const TXN_BODY_BYTES_MAX = TXN_OPS_MAX * Math.ceil(VALUE_BYTES_MAX * 4 / 3) + 64 * 1024;

function field(o: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(o).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : o[key];
}

function base64Value(v: unknown, where: string): Uint8Array {
  if (v === undefined || v === null || v === "") return new Uint8Array(0);
  if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) {
    throw badRequest(`${where}.Value must be base64`);
  }
  return new Uint8Array(Buffer.from(v, "base64"));
}

function uint(v: unknown, where: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw badRequest(`${where} must be a non-negative integer`);
  }
  return v;
}

/** The operations of a transaction body; 400 naming the first bad one. */
export function txnOps(body: unknown): TxnOp[] {
  if (!Array.isArray(body)) throw badRequest("txn: body must be a JSON list of operations");
  if (body.length > TXN_OPS_MAX) {
    throw new HttpError(
      413,
      `Transaction contains too many operations (${body.length} > ${TXN_OPS_MAX})`,
    );
  }
  return body.map((item, i) => {
    const where = `txn: operation ${i}`;
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      throw badRequest(`${where} must be an object`);
    }
    const kv = field(item, "KV");
    if (kv === undefined) {
      const kind = Object.keys(item)[0] ?? "empty";
      throw badRequest(`${where}: only KV operations are supported (got ${kind.slice(0, 20)})`);
    }
    if (typeof kv !== "object" || kv === null || Array.isArray(kv)) {
      throw badRequest(`${where}.KV must be an object`);
    }
    const o = kv as Record<string, unknown>;
    const verb = field(o, "Verb");
    if (!(TXN_VERBS as readonly unknown[]).includes(verb)) {
      throw badRequest(
        `${where}.KV.Verb ${JSON.stringify(verb)?.slice(0, 30)}: expected ${TXN_VERBS.join("|")}`,
      );
    }
    const key = field(o, "Key") ?? "";
    if (typeof key !== "string") throw badRequest(`${where}.KV.Key must be a string`);
    const session = field(o, "Session") ?? "";
    if (typeof session !== "string") throw badRequest(`${where}.KV.Session must be a string`);
    return {
      verb: verb as TxnVerb,
      key,
      value: base64Value(field(o, "Value"), `${where}.KV`),
      flags: uint(field(o, "Flags"), `${where}.KV.Flags`),
      index: uint(field(o, "Index"), `${where}.KV.Index`),
      session,
    };
  });
}

function kvResult(e: TxnEntry) {
  return {
    KV: {
      LockIndex: e.lockIndex,
      Key: e.key,
      Flags: e.flags,
      Value: e.value,
      ...(e.session === null ? {} : { Session: e.session }),
      CreateIndex: e.createIndex,
      ModifyIndex: e.modifyIndex,
    },
  };
}

/**
 * The rights a transaction needs before it runs, as Consul vets them: key:write on what it
 * writes (delete-tree: by the rules, on every key the prefix could hold: Consul's
 * KeyWritePrefix), key:read on what check-* look at;
 * get and get-tree need none here, their results are filtered.
 */
function requireTxnRights(c: Context, ops: TxnOp[]): void {
  for (const op of ops) {
    switch (op.verb) {
      case "get":
      case "get-tree":
        break;
      case "check-index":
      case "check-session":
      case "check-not-exists":
        requireRight(c, "kv", op.key, "read");
        break;
      case "delete-tree":
        requirePrefixWrite(c, "kv", op.key);
        break;
      default:
        requireRight(c, "kv", op.key, "write");
    }
  }
}

export function txnRoutes(app: Hono, d: Deps): void {
  app.put("/v1/txn", async (c) => {
    const bytes = await readBody(c.req.raw, TXN_BODY_BYTES_MAX);
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (e) {
      throw badRequest(`txn: Failed to parse body: ${(e as Error).message}`);
    }
    const ops = txnOps(body);
    requireTxnRights(c, ops);
    let t: TxnOutcome | undefined;
    if (isReadOnlyTxn(ops)) {
      const { store } = d;
      await prepareRead(c, d, {
        index: () => store.tableIndex("kv"),
        watch: { table: "kv" },
      });
      t = runTxn({
        kvGet: (key) => store.kvGet(key),
        kvList: (prefix) => store.kvList(prefix),
        holder: (key) => store.sessions.holder(key),
        apply: () => {
          throw new Error("txn: a read-only transaction wrote");
        },
      }, { ops, nowMs: d.now() }).txn;
    } else {
      const p = await proposeChecked(d, { type: "txn", ops, nowMs: d.now() });
      t = p.result.txn;
      c.header("X-Consul-Index", String(p.index));
    }
    if (t === undefined) throw new Error("txn: the store reported no outcome");
    if ("errors" in t) {
      return c.json({
        Results: null,
        Errors: t.errors.map((e) => ({ OpIndex: e.opIndex, What: e.what })),
      }, 409);
    }
    const results = keepAllowed(c, t.results, (a, e) => a.allows("kv", e.key, "read"));
    return c.json({ Results: results.map(kvResult), Errors: null });
  });
}
