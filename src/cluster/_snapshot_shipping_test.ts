import assert from "node:assert/strict";
import { closeAll, member, rawPeer, type TestMember, until } from "../../test/clusters.ts";
import { SNAPSHOT_CHUNK_BYTES, Store } from "../store/mod.ts";
import { upgradeLegacySnapshot } from "./_snapshot_shipping.ts";
import { decodeRef } from "./snapshot_files.ts";

const enc = new TextEncoder();

/** Indexes of the snapshot files in `dir`. */
function snapshotIndexes(dir: string): number[] {
  return [...Deno.readDirSync(dir)].map((e) => /^(\d+)-\d+\.snap$/.exec(e.name))
    .filter((m) => m !== null).map((m) => Number(m[1]));
}

Deno.test("SnapshotShipping: a member joining after the log was compacted gets a snapshot and the data", async () => {
  const opts = { snapshotEntries: 20, snapshotKeepEntries: 4, voters: 1 };
  const a = await member("a", "127.0.0.1", { ...opts, bootstrap: true });
  const ms: TestMember[] = [a];
  try {
    for (let i = 0; i < 60; i++) {
      await a.cluster.propose({ type: "kv.put", key: `k${i}`, value: enc.encode("v"), flags: 0 });
    }
    const b = await member("b", "127.0.0.2", { ...opts, join: [a.cluster.address] });
    ms.push(b);
    await until("b has every key", () => b.store.kvGet("k59") !== undefined);
    assert.ok(
      a.logs.some((l) => /sent snapshot at index \d+ \(\d+ bytes\) to b/.test(l)),
      a.logs.join("\n"),
    );
    assert.ok(
      b.logs.some((l) => l.startsWith("cluster: installed snapshot at index")),
      b.logs.join("\n"),
    );
    for (let i = 0; i < 60; i++) assert.ok(b.store.kvGet(`k${i}`) !== undefined, `k${i}`);
    // Replication goes on after the snapshot.
    await a.cluster.propose({ type: "kv.put", key: "after", value: enc.encode("1"), flags: 0 });
    await until("b has the later write", () => b.store.kvGet("after") !== undefined);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("SnapshotShipping: chunks from a non-leader are refused and a MsgSnap without its transfer is dropped with a log line", async () => {
  // Plain TCP: a bare Transport speaks to the member.
  const a = await member("a", "127.0.0.1", { bootstrap: true, voters: 1, tls: false });
  const id = a.cluster.identity()!;
  await until("a leads", () => a.cluster.status().role === "leader");
  const rogue = await rawPeer("127.0.0.9", { clusterId: id.clusterId, nodeId: 99 });
  try {
    // The sender is not the leader: its chunks are refused; a MsgSnap naming no finished
    // transfer is dropped.
    const chunk = {
      t: "snap.chunk",
      key: "k",
      seq: 0,
      bytes: 4,
      sha256: "0".repeat(64),
      data: new Uint8Array(4),
    };
    await assert.rejects(rogue.request(a.cluster.address, chunk), /is not the leader/);
    const head = {
      type: "MsgSnap",
      from: 99,
      to: id.id,
      term: 1,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      snapshot: {
        metadata: { index: 5, term: 1, confState: { voters: [1], learners: [] } },
        data: new Uint8Array(0),
      },
    };
    rogue.send(a.cluster.address, { t: "raft", m: head, snap: "k" });
    await until(
      "the drop logged",
      () => a.logs.some((l) => l.includes("dropped an incomplete snapshot from 127.0.0.9:1")),
    );
    // Still serving.
    const p = await a.cluster.propose({ type: "noop" });
    assert.ok(p.index > 0);
  } finally {
    await rogue.close();
    await closeAll([a]);
  }
});

Deno.test("SnapshotShipping: a snapshot of many chunks streams to a new member and installs whole", async () => {
  const opts = { snapshotEntries: 8, snapshotKeepEntries: 2, voters: 1 };
  const a = await member("a", "127.0.0.1", { ...opts, bootstrap: true });
  const ms: TestMember[] = [a];
  try {
    // 24 values of 500 KB: snapshots of several chunks each, the first one (index 8) included.
    const value = (i: number) => new Uint8Array(500_000).fill(i);
    for (let i = 0; i < 24; i++) {
      await a.cluster.propose({ type: "kv.put", key: `big${i}`, value: value(i), flags: 0 });
    }
    await until("a snapshot past the first entries", () => a.store.appliedIndex() > 20);
    const b = await member("b", "127.0.0.2", { ...opts, join: [a.cluster.address] });
    ms.push(b);
    await until("b has every value", () => b.store.kvGet("big23") !== undefined, {
      timeoutMs: 20_000,
    });
    // The largest snapshot b got (an earlier, smaller one may go first while the newest is
    // still being written).
    const sent = a.logs.map((l) => /sent snapshot at index \d+ \((\d+) bytes\) to b/.exec(l))
      .filter((m) => m !== null).map((m) => Number(m[1]));
    assert.ok(sent.length > 0, a.logs.join("\n"));
    // More than one chunk: the first snapshot (index 8, four values) is ~2 MB, just under two
    // chunks, and under load it may be the only one b needed.
    const most = Math.max(...sent);
    assert.ok(most > SNAPSHOT_CHUNK_BYTES, `a snapshot of ${most} bytes`);
    for (let i = 0; i < 24; i++) assert.deepEqual(b.store.kvGet(`big${i}`)?.value, value(i));
  } finally {
    await closeAll(ms);
  }
});

Deno.test("SnapshotShipping: a member with a store file installs the snapshot on the store's thread and applies on after it", async () => {
  const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
  const opts = { snapshotEntries: 20, snapshotKeepEntries: 4, voters: 1 };
  const a = await member("a", "127.0.0.1", { ...opts, bootstrap: true, dataDir: dirs[0] });
  const ms: TestMember[] = [a];
  try {
    for (let i = 0; i < 60; i++) {
      await a.cluster.propose({ type: "kv.put", key: `k${i}`, value: enc.encode("v"), flags: 0 });
    }
    // A snapshot file past the first entries means its log compaction was asked for; an entry
    // committed after that is persisted after the compaction: b cannot catch up from the log.
    await until(
      "a snapshot of a past index 40",
      () => snapshotIndexes(`${dirs[0]}/snapshots`).some((i) => i > 40),
    );
    await a.cluster.propose({ type: "kv.put", key: "k60", value: enc.encode("v"), flags: 0 });
    const b = await member("b", "127.0.0.2", {
      ...opts,
      join: [a.cluster.address],
      dataDir: dirs[1],
    });
    ms.push(b);
    const resets: number[] = [];
    b.store.subscribe((c) => c.reset && resets.push(c.index));
    await until("b has every key", () => b.store.kvGet("k60") !== undefined);
    assert.ok(
      b.logs.some((l) => l.startsWith("cluster: installed snapshot at index")),
      b.logs.join("\n"),
    );
    // Entries after the snapshot applied once the install was done (an apply during it would
    // have been refused, and b stopped).
    await a.cluster.propose({ type: "kv.put", key: "after", value: enc.encode("1"), flags: 0 });
    await until("b has the later write", () => b.store.kvGet("after") !== undefined);
    assert.deepEqual(b.fatal, []);
    assert.ok(resets.length <= 1, `resets at ${resets}`);
    for (let i = 0; i <= 60; i++) assert.ok(b.store.kvGet(`k${i}`) !== undefined, `k${i}`);
  } finally {
    await closeAll(ms);
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("upgradeLegacySnapshot() writes a Raft log's old-format snapshot to a file the store installs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { pack } = await import("msgpackr");
    const legacy = pack({
      format: "berth-store-snapshot",
      schema: 2,
      meta: [{ key: "applied", value: 7 }, { key: "index.kv", value: 6 }],
      nodes: [],
      instances: [],
      service_index: [],
      kv: [{
        key: "k",
        value: enc.encode("v"),
        flags: 0,
        create_index: 6,
        modify_index: 6,
        lock_index: 0,
      }],
      members: [{ id: 1, name: "a", address: "127.0.0.1:1", nonce: "" }],
      cluster: [{ key: "conf", value: JSON.stringify({ voters: [1], learners: [] }) }],
      requests: [{ id: "req-6", idx: 6, result: JSON.stringify({ ok: true }) }],
    });
    const metadata = { index: 7, term: 2, confState: { voters: [1], learners: [] } };
    const ref = upgradeLegacySnapshot(dir, { metadata, data: legacy });
    assert.ok(ref !== undefined);
    assert.equal(upgradeLegacySnapshot(dir, { metadata, data: ref }), undefined, "a ref stays");
    const { file } = decodeRef(ref);
    assert.equal(file, "7-2.snap");
    const store = Store.open(":memory:");
    store.installSnapshotFile(`${dir}/${file}`);
    assert.equal(store.appliedIndex(), 7);
    assert.equal(new TextDecoder().decode(store.kvGet("k")!.value), "v");
    assert.deepEqual(store.members().map((m) => m.name), ["a"]);
    // The request-id table came along: the retried request is applied once.
    assert.deepEqual(store.apply(8, { type: "kv.delete", key: "k" }, "req-6"), { ok: true });
    assert.ok(store.kvGet("k") !== undefined);
    assert.throws(
      () => upgradeLegacySnapshot(dir, { metadata, data: new Uint8Array([1, 2, 3]) }),
      /raft log: the snapshot at index 7 cannot be read/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SnapshotShipping: a snapshot that cannot be written is logged once and tried again only after SNAPSHOT_RETRY_MS", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-snapfail-" });
  const a = await member("a", "127.0.0.1", {
    dataDir: dir,
    bootstrap: true,
    voters: 1,
    snapshotEntries: 4,
    snapshotKeepEntries: 2,
  });
  try {
    await until("a leads", () => a.cluster.status().role === "leader");
    // The snapshot directory is gone: every write of a snapshot file fails.
    await Deno.remove(`${dir}/snapshots`, { recursive: true });
    for (let i = 0; i < 40; i++) {
      await a.cluster.propose({ type: "kv.put", key: `k${i}`, value: enc.encode("v"), flags: 0 });
    }
    await until("the failure logged", () => a.logs.some((l) => l.includes("snapshot not taken")));
    const failures = a.logs.filter((l) => l.includes("snapshot not taken"));
    assert.equal(failures.length, 1, failures.join("\n"));
    assert.match(failures[0]!, /next try in 10 s/);
    // Writes go on meanwhile.
    assert.equal(a.store.kvKeys("").length, 40);
  } finally {
    await closeAll([a]);
    await Deno.remove(dir, { recursive: true });
  }
});
