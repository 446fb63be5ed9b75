import assert from "node:assert/strict";
import { closeAll, leaderOf, threeMembers, until } from "../../test/clusters.ts";
import { SNAPSHOT_CHUNK_BYTES, type Store } from "../store/mod.ts";
import { restoreFromStream, userSnapshotStream } from "./snapshot_stream.ts";
import { HttpError } from "./http_error.ts";

async function bytesOf(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

function streamOf(b: Uint8Array, pieceBytes = 64 * 1024): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(k) {
      if (off >= b.byteLength) return k.close();
      k.enqueue(b.slice(off, off + pieceBytes));
      off += pieceBytes;
    },
  });
}

function kvText(s: Store): string {
  return JSON.stringify(s.kvList("").map((e) => [e.key, e.value.byteLength, e.value[0]]));
}

Deno.test("restoreFromStream() through a follower restores every member from a snapshot of several chunks", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const follower = ms.find((m) => m !== leader)!;
    for (let i = 0; i < 8; i++) {
      await leader.cluster.propose({
        type: "kv.put",
        key: `k${i}`,
        value: new Uint8Array(400_000).fill(i),
        flags: 0,
      });
    }
    const saved = await bytesOf(userSnapshotStream(follower.store));
    assert.ok(saved.byteLength > 2 * SNAPSHOT_CHUNK_BYTES);
    const want = kvText(follower.store);
    await leader.cluster.propose({ type: "kv.put", key: "k0", value: new Uint8Array(1), flags: 0 });
    await leader.cluster.propose({ type: "kv.delete", key: "k7" });
    await leader.cluster.propose({
      type: "kv.put",
      key: "new",
      value: new Uint8Array(1),
      flags: 0,
    });
    const r = await restoreFromStream(streamOf(saved), (c) => follower.cluster.propose(c));
    assert.equal(r.bytes, saved.byteLength);
    assert.equal(r.chunks, Math.ceil(saved.byteLength / SNAPSHOT_CHUNK_BYTES));
    for (const m of ms) {
      await until(`${m.name} restored`, () => m.store.appliedIndex() >= r.index);
      assert.equal(kvText(m.store), want, m.name);
    }
  } finally {
    await closeAll(ms);
  }
});

Deno.test("restoreFromStream() fails with 400 and changes nothing when another restore replaces it", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    for (let i = 0; i < 4; i++) {
      await leader.cluster.propose({
        type: "kv.put",
        key: `k${i}`,
        value: new Uint8Array(400_000).fill(i),
        flags: 0,
      });
    }
    const saved = await bytesOf(userSnapshotStream(leader.store));
    const before = kvText(leader.store);
    // A second restore begins once the first has proposed its first chunk.
    let chunks = 0;
    const propose = async (c: Parameters<typeof leader.cluster.propose>[0]) => {
      const p = await leader.cluster.propose(c);
      if (c.type === "restore.chunk" && ++chunks === 1) {
        await leader.cluster.propose({ type: "restore.begin", id: "other" });
      }
      return p;
    };
    await assert.rejects(
      restoreFromStream(streamOf(saved), propose),
      (e: Error) =>
        e instanceof HttpError && e.status === 400 && /is not under way/.test(e.message),
    );
    assert.equal(kvText(leader.store), before);
  } finally {
    await closeAll(ms);
  }
});
