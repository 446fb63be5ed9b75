import assert from "node:assert/strict";
import { closeAll, member, type TestMember, until } from "../../test/clusters.ts";
import { Transport } from "./transport.ts";

const enc = new TextEncoder();

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

Deno.test("SnapshotShipping: chunks from a non-leader are ignored and a MsgSnap without its chunks is dropped with a log line", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true, voters: 1 });
  const id = a.cluster.identity()!;
  await until("a leads", () => a.cluster.status().role === "leader");
  const rogue = new Transport({
    listen: { host: "127.0.0.9", port: 0 },
    self: () => ({ clusterId: id.clusterId, nodeId: 99, address: "127.0.0.9:1" }),
    onMessage: () => {},
    onRequest: () => Promise.resolve(null),
    log: () => {},
  });
  await rogue.start();
  try {
    // The sender is not the leader: chunks from it are ignored; a MsgSnap from it is dropped.
    rogue.send(a.cluster.address, { t: "snapChunk", key: "k", seq: 1, data: new Uint8Array(4) });
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
    rogue.send(a.cluster.address, { t: "raft", m: head, snap: "k", snapChunks: 1, snapBytes: 4 });
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
