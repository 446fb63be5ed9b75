import assert from "node:assert/strict";
import { type Command, Store, type TxnOp } from "./mod.ts";

const enc = new TextEncoder();
const A = "aaaaaaaa-0000-4000-8000-000000000001";
const B = "bbbbbbbb-0000-4000-8000-000000000002";

function op(verb: TxnOp["verb"], key: string, over: Partial<TxnOp> = {}): TxnOp {
  return { verb, key, value: new Uint8Array(0), flags: 0, index: 0, session: "", ...over };
}

function setup() {
  const s = Store.open(":memory:");
  let i = 0;
  const apply = (c: Command) => s.apply(++i, c);
  apply({ type: "node.register", name: "n1", address: "10.0.0.1", meta: {} });
  for (const id of [A, B]) {
    apply({
      type: "session.create",
      session: {
        id,
        name: "",
        node: "n1",
        nodeChecks: [],
        serviceChecks: [],
        lockDelayMs: 0,
        behavior: "release",
        ttl: "",
        ttlMs: 0,
      },
    });
  }
  apply({ type: "kv.put", key: "a", value: enc.encode("1"), flags: 0 });
  return { s, apply, txn: (ops: TxnOp[]) => apply({ type: "txn", ops, nowMs: 0 }) };
}

Deno.test("txn applies every operation in one entry and reports Consul's results", () => {
  const { s, txn } = setup();
  const aIndex = s.kvGet("a")!.modifyIndex;
  const r = txn([
    op("check-index", "a", { index: aIndex }),
    op("set", "b", { value: enc.encode("2"), flags: 7 }),
    op("lock", "c", { value: enc.encode("3"), session: A }),
    op("get", "a"),
    op("get-tree", ""),
    op("check-not-exists", "zzz"),
    op("delete", "a"),
  ]);
  assert.equal(r.ok, true);
  const results = r.txn && "results" in r.txn ? r.txn.results : [];
  assert.deepEqual(results.map((e) => [e.key, e.value, e.session]), [
    ["a", null, null], // check-index: the entry without its value
    ["b", null, null],
    ["c", null, A],
    ["a", btoa("1"), null], // get: with its value
    ["a", btoa("1"), null], // get-tree: every entry under the prefix
    ["b", btoa("2"), null],
    ["c", btoa("3"), A],
  ]);
  assert.equal(s.kvGet("a"), undefined);
  assert.equal(s.kvGet("b")!.flags, 7);
  assert.equal(s.sessions.holder("c"), A);
  assert.equal(s.kvGet("b")!.modifyIndex, s.appliedIndex());
});

Deno.test("txn changes nothing when one operation fails, and names every failure by position", () => {
  const { s, apply, txn } = setup();
  apply({ type: "kv.lock", key: "held", value: enc.encode(""), flags: 0, session: B, nowMs: 0 });
  const before = s.kvList("");
  const tableIndex = s.tableIndex("kv");
  const r = txn([
    op("set", "new", { value: enc.encode("x") }),
    op("cas", "a", { index: 999 }),
    op("lock", "held", { session: A }),
    op("check-session", "held", { session: A }),
    op("get", "missing"),
    op("check-not-exists", "a"),
    op("delete-cas", "a", { index: 998 }),
    op("unlock", "held", { session: A }),
  ]);
  assert.equal(r.ok, false);
  assert.deepEqual(r.txn && "errors" in r.txn ? r.txn.errors : [], [
    { opIndex: 1, what: 'failed to set key "a", index is stale' },
    { opIndex: 2, what: 'failed to lock key "held", lock is already held or its lock-delay runs' },
    {
      opIndex: 3,
      what: `failed session check for key "held", current session "${B}" != "${A}"`,
    },
    { opIndex: 4, what: 'key "missing" doesn\'t exist' },
    { opIndex: 5, what: 'key "a" exists' },
    { opIndex: 6, what: 'failed to delete key "a", index is stale' },
    {
      opIndex: 7,
      what: 'failed to unlock key "held", lock isn\'t held, or is held by another session',
    },
  ]);
  assert.deepEqual(s.kvList(""), before);
  assert.equal(s.kvGet("new"), undefined);
  assert.equal(s.tableIndex("kv"), tableIndex);
});

Deno.test("txn lock and unlock follow the single-key rules (unknown session, LockIndex)", () => {
  const { s, txn } = setup();
  const unknown = "cccccccc-0000-4000-8000-000000000003";
  const r = txn([op("lock", "k", { session: unknown })]);
  assert.equal(r.ok, false);
  assert.match(r.txn && "errors" in r.txn ? r.txn.errors[0]!.what : "", /invalid session/);
  assert.equal(txn([op("lock", "k", { session: A })]).ok, true);
  assert.equal(txn([op("unlock", "k", { session: A })]).ok, true);
  assert.equal(txn([op("lock", "k", { session: B }), op("delete-tree", "zz")]).ok, true);
  assert.equal(s.kvGet("k")!.lockIndex, 2);
});

Deno.test("txn command validation refuses more than 64 operations and bad verbs", () => {
  const { txn } = setup();
  const many = txn(Array.from({ length: 65 }, (_, i) => op("get", `k${i}`)));
  assert.match(many.error!, /at most 64 operations/);
  const verb = txn([{ ...op("get", "a"), verb: "frob" as TxnOp["verb"] }]);
  assert.match(verb.error!, /ops\[0\]\.verb: expected set\|cas/);
  const lockNoSession = txn([op("lock", "a")]);
  assert.match(lockNoSession.error!, /ops\[0\]\.session: expected a session id/);
});
