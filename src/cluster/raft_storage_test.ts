import assert from "node:assert/strict";
import type { Entry } from "../../raft/mod.ts";
import { DatabaseSync } from "node:sqlite";
import { sleep, waitFor as until } from "../../test/wait.ts";
import { CHECKPOINT_EVERY_MS } from "./log_writer.ts";
import { SqliteRaftStorage } from "./raft_storage.ts";
import type { LogWrite } from "./log_db.ts";
import { pack } from "msgpackr";

const cs = () => ({ voters: [1], learners: [] });
const ent = (index: number, term: number, text = `e${index}`): Entry => ({
  index,
  term,
  type: "normal",
  data: new TextEncoder().encode(text),
});

function tmp(): string {
  return `${Deno.makeTempDirSync({ prefix: "berth-raftlog-" })}/raft.db`;
}

Deno.test("SqliteRaftStorage.persist() survives a reopen: entries, hard state, identity", async () => {
  const path = tmp();
  const s = SqliteRaftStorage.open(path, { confState: cs });
  assert.equal(s.isEmpty(), true);
  await s.persist({
    entries: [ent(1, 1), ent(2, 1), ent(3, 2)],
    hardState: { term: 2, vote: 1, commit: 2 },
  });
  await s.setIdentity({ clusterId: "c", id: 1, nonce: "n" });
  await s.close();
  const again = SqliteRaftStorage.open(path, { confState: cs });
  assert.equal(again.isEmpty(), false);
  assert.deepEqual(again.initialState(), {
    hardState: { term: 2, vote: 1, commit: 2 },
    confState: { voters: [1], learners: [] },
  });
  assert.equal(again.lastIndex(), 3);
  assert.equal(again.term(3), 2);
  assert.deepEqual(again.entries(1, 4, 1 << 20).map((e) => new TextDecoder().decode(e.data)), [
    "e1",
    "e2",
    "e3",
  ]);
  assert.deepEqual(again.identity(), { clusterId: "c", id: 1, nonce: "n" });
  await again.close();
});

Deno.test("SqliteRaftStorage.persist() replaces a conflicting suffix, on disk too", async () => {
  const path = tmp();
  const s = SqliteRaftStorage.open(path, { confState: cs });
  await s.persist({ entries: [ent(1, 1), ent(2, 1), ent(3, 1)] });
  await s.persist({ entries: [ent(2, 2, "new2")] });
  assert.equal(s.lastIndex(), 2);
  await s.close();
  const again = SqliteRaftStorage.open(path, { confState: cs });
  assert.equal(again.lastIndex(), 2);
  assert.equal(again.term(2), 2);
  assert.equal(new TextDecoder().decode(again.entries(2, 3, 100)[0]!.data), "new2");
  await again.close();
});

Deno.test("SqliteRaftStorage.snapshotAndCompact() keeps a trailing window and survives a reopen", async () => {
  const path = tmp();
  const s = SqliteRaftStorage.open(path, { confState: cs });
  await s.persist({ entries: Array.from({ length: 20 }, (_, i) => ent(i + 1, 1)) });
  await s.snapshotAndCompact(15, cs(), new Uint8Array([7]), 5);
  assert.equal(s.firstIndex(), 11);
  assert.equal(s.snapshot().metadata.index, 15);
  await s.close();
  const again = SqliteRaftStorage.open(path, { confState: cs });
  assert.equal(again.firstIndex(), 11);
  assert.equal(again.lastIndex(), 20);
  assert.deepEqual(again.snapshot().data, new Uint8Array([7]));
  assert.throws(() => again.entries(5, 8, 100), /compacted/);
  // A snapshot from the leader replaces the whole log.
  await again.persist({
    entries: [],
    snapshot: { metadata: { index: 40, term: 3, confState: cs() }, data: new Uint8Array([9]) },
  });
  assert.equal(again.firstIndex(), 41);
  assert.equal(again.lastIndex(), 40);
  await again.close();
});

Deno.test("SqliteRaftStorage.persist() of a leader's snapshot drops conflicting entries after it, on disk too", async () => {
  const path = tmp();
  const s = SqliteRaftStorage.open(path, { confState: cs });
  await s.persist({ entries: Array.from({ length: 10 }, (_, i) => ent(i + 1, 1)) });
  await s.persist({
    entries: [],
    snapshot: { metadata: { index: 5, term: 3, confState: cs() }, data: new Uint8Array([1]) },
  });
  assert.equal(s.lastIndex(), 5);
  await s.close();
  const again = SqliteRaftStorage.open(path, { confState: cs });
  assert.equal(again.firstIndex(), 6);
  assert.equal(again.lastIndex(), 5);
  assert.equal(again.term(5), 3);
  await again.close();
});

Deno.test("SqliteRaftStorage.bootstrap() writes entries, hard state and identity together, once", async () => {
  const path = tmp();
  const s = SqliteRaftStorage.open(path, { confState: cs });
  await s.bootstrap([ent(1, 1)], { term: 1, vote: 0, commit: 1 }, {
    clusterId: "c",
    id: 1,
    nonce: "n",
  });
  await assert.rejects(
    () =>
      s.bootstrap([ent(1, 1)], { term: 1, vote: 0, commit: 1 }, {
        clusterId: "d",
        id: 1,
        nonce: "m",
      }),
    /existing log/,
  );
  await s.close();
  const again = SqliteRaftStorage.open(path, { confState: cs });
  assert.equal(again.identity()?.clusterId, "c");
  assert.equal(again.lastIndex(), 1);
  await again.close();
});

Deno.test("SqliteRaftStorage.open() upgradeSnapshot rewrites the persisted snapshot's data, window kept", async () => {
  const path = tmp();
  const s = SqliteRaftStorage.open(path, { confState: cs });
  await s.persist({ entries: Array.from({ length: 20 }, (_, i) => ent(i + 1, 1)) });
  await s.snapshotAndCompact(15, cs(), new Uint8Array([7]), 5);
  await s.close();
  const seen: number[] = [];
  const up = SqliteRaftStorage.open(path, {
    confState: cs,
    upgradeSnapshot: (snap) => {
      seen.push(snap.metadata.index);
      return snap.data[0] === 7 ? new Uint8Array([8]) : undefined;
    },
  });
  assert.deepEqual(seen, [15]);
  assert.deepEqual(up.snapshot().data, new Uint8Array([8]));
  assert.equal(up.firstIndex(), 11);
  await up.close();
  // Persisted: the next open sees the new data, and the hook leaves it alone.
  const again = SqliteRaftStorage.open(path, { confState: cs, upgradeSnapshot: () => undefined });
  assert.deepEqual(again.snapshot().data, new Uint8Array([8]));
  await again.close();
});

Deno.test("SqliteRaftStorage.readIdentity() reads the identity without the log, undefined without one", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-raft-" });
  const path = `${dir}/raft.db`;
  assert.equal(SqliteRaftStorage.readIdentity(path), undefined);
  const raft = SqliteRaftStorage.open(path, { confState: () => ({ voters: [], learners: [] }) });
  assert.equal(SqliteRaftStorage.readIdentity(path), undefined);
  await raft.setIdentity({ clusterId: "c1", id: 3, nonce: "n" });
  assert.deepEqual(SqliteRaftStorage.readIdentity(path), { clusterId: "c1", id: 3, nonce: "n" });
  await raft.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("SqliteRaftStorage.entries() reads entry data from raft.db, not from the arrays it was given", async () => {
  // Memory holds the log's shape only: a large entry costs no memory once persisted.
  const s = SqliteRaftStorage.open(":memory:", { confState: cs });
  const e2 = ent(2, 1, "two");
  await s.persist({ entries: [ent(1, 1), e2], hardState: { term: 1, vote: 1, commit: 0 } });
  e2.data.fill(0); // the caller reuses its buffer
  assert.deepEqual(s.entries(1, 3, 1 << 20).map((e) => new TextDecoder().decode(e.data)), [
    "e1",
    "two",
  ]);
  await s.close();
});

Deno.test("SqliteRaftStorage.entries() stops at maxBytes by entry size, returning at least one", async () => {
  const s = SqliteRaftStorage.open(":memory:", { confState: cs });
  const big = (i: number): Entry => ({
    index: i,
    term: 1,
    type: "normal",
    data: new Uint8Array(1000),
  });
  await s.persist({
    entries: [big(1), big(2), big(3)],
    hardState: { term: 1, vote: 1, commit: 0 },
  });
  assert.deepEqual(s.entries(1, 4, 10).map((e) => e.index), [1]);
  assert.deepEqual(s.entries(1, 4, 2100).map((e) => e.index), [1, 2]);
  assert.deepEqual(s.entries(2, 4, 1 << 20).map((e) => e.data.byteLength), [1000, 1000]);
  // A conflicting suffix replaced by a shorter entry: its new size counts.
  await s.persist({ entries: [{ index: 2, term: 2, type: "normal", data: new Uint8Array(5) }] });
  assert.equal(s.lastIndex(), 2);
  assert.deepEqual(s.entries(1, 3, 1100).map((e) => e.data.byteLength), [1000, 5]);
  await s.close();
});

Deno.test("SqliteRaftStorage.checkpoint() has the log worker checkpoint another file's WAL, which then stays bounded", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-ckpt-" });
  const other = `${dir}/store.db`;
  const db = new DatabaseSync(other);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA wal_autocheckpoint=0");
  db.exec("CREATE TABLE t (v BLOB)");
  const MiB = 1024 * 1024;
  const fill = () => {
    db.exec("BEGIN");
    const ins = db.prepare("INSERT INTO t VALUES (?)");
    for (let i = 0; i < 1024; i++) ins.run(new Uint8Array(4096));
    db.exec("COMMIT");
  };
  const s = SqliteRaftStorage.open(`${dir}/raft.db`, { confState: cs });
  try {
    fill();
    assert.ok(Deno.statSync(`${other}-wal`).size > 4 * MiB);
    assert.equal(s.checkpoint(other), true);
    await until("the worker checkpointed", () => Deno.statSync(other).size > 4 * MiB);
    // A checkpointed WAL starts over at the next commit instead of growing: five more fills
    // (20 MiB unchecked) leave it at most a few fills long.
    for (let i = 0; i < 5; i++) {
      fill();
      await sleep(3 * CHECKPOINT_EVERY_MS);
    }
    assert.ok(Deno.statSync(`${other}-wal`).size < 13 * MiB);
    // Inline (`:memory:`), there is no worker to do it.
    const inline = SqliteRaftStorage.open(":memory:", { confState: cs });
    assert.equal(inline.checkpoint(other), false);
    await inline.close();
  } finally {
    await s.close();
    db.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("SqliteRaftStorage.persist() posts state values with their own bytes, not msgpackr's shared buffer", async () => {
  const writes: LogWrite[] = [];
  const s = SqliteRaftStorage.open(":memory:", {
    confState: cs,
    wrapWriter: (inner) => ({
      write: (w) => {
        writes.push(w);
        return inner.write(w);
      },
      close: () => inner.close(),
    }),
  });
  try {
    // Anyone packing a large value grows msgpackr's process-wide output buffer.
    assert.ok(pack({ data: new Uint8Array(1 << 20) }).buffer.byteLength >= 1 << 20);
    await s.persist({ entries: [ent(1, 1)], hardState: { term: 1, vote: 1, commit: 1 } });
    await s.setIdentity({ clusterId: "c", id: 1, nonce: "n" });
    await s.snapshotAndCompact(1, cs(), new Uint8Array(3), 0);
    const values = writes.flatMap((w) => w.state ?? []);
    assert.equal(values.length, 4);
    for (const [k, v] of values) {
      assert.equal(v.buffer.byteLength, v.byteLength, `${k}: carries only its own bytes`);
    }
  } finally {
    await s.close();
  }
});

Deno.test("SqliteRaftStorage.commitAtLeast() raises the persisted commit to an applied index in the log, refuses one past it", async () => {
  const path = tmp();
  const s = SqliteRaftStorage.open(path, { confState: cs });
  await s.persist({
    entries: [ent(1, 1), ent(2, 1), ent(3, 1)],
    hardState: { term: 1, vote: 1, commit: 1 },
  });
  await s.commitAtLeast(1);
  assert.equal(s.hardState().commit, 1);
  await s.commitAtLeast(3);
  await assert.rejects(s.commitAtLeast(4), /applied up to 4, past the log's last index 3/);
  await s.close();
  const again = SqliteRaftStorage.open(path, { confState: cs });
  assert.deepEqual(again.hardState(), { term: 1, vote: 1, commit: 3 });
  await again.close();
});

Deno.test("SqliteRaftStorage.onWriteFailure() hears the first failed write once, whoever wrote (setIdentity too)", async () => {
  const disk = new Error("disk full");
  let fail = false;
  const s = SqliteRaftStorage.open(":memory:", {
    confState: cs,
    wrapWriter: (inner) => ({
      write: (w) => fail ? Promise.reject(disk) : inner.write(w),
      close: () => inner.close(),
    }),
  });
  const heard: Error[] = [];
  s.onWriteFailure((e) => heard.push(e));
  await s.persist({ entries: [ent(1, 1)] });
  fail = true;
  await assert.rejects(s.setIdentity({ clusterId: "c", id: 2, nonce: "n" }), /disk full/);
  await assert.rejects(s.persist({ entries: [ent(2, 1)] }), /disk full/);
  assert.deepEqual(heard, [disk]);
  await s.close();
});

Deno.test("SqliteRaftStorage.checkpoint() of a file that does not open reports it and leaves raft writes going", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-ckpt-" });
  const s = SqliteRaftStorage.open(`${dir}/raft.db`, { confState: cs });
  const heard: Error[] = [];
  s.onWriteFailure((e) => heard.push(e));
  try {
    const errors: Error[] = [];
    assert.equal(s.checkpoint(`${dir}/no/such/dir/store.db`, (e) => errors.push(e)), true);
    await s.persist({ entries: [ent(1, 1)], hardState: { term: 1, vote: 1, commit: 1 } });
    await until("the checkpoint's error", () => errors.length > 0);
    assert.match(errors[0]!.message, /open/);
    await s.persist({ entries: [ent(2, 1)], hardState: { term: 1, vote: 1, commit: 2 } });
    assert.equal(s.lastIndex(), 2);
    assert.deepEqual(heard, []);
  } finally {
    await s.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
