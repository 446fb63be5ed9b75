import assert from "node:assert/strict";
import { closeAll, leaderOf, threeMembers, until } from "../../test/clusters.ts";
import { type Command, RESTORE_CHUNK_BYTES, SNAPSHOT_CHUNK_BYTES, Store } from "../store/mod.ts";
import { type Proposed, TimeoutError } from "../cluster/mod.ts";
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
    assert.equal(r.chunks, Math.ceil(saved.byteLength / RESTORE_CHUNK_BYTES));
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

Deno.test("restoreFromStream() sends again, in order, chunks that landed out of turn or may not have applied", async () => {
  const src = Store.open(":memory:");
  const dst = Store.open(":memory:");
  try {
    for (let i = 0; i < 12; i++) {
      const r = src.apply(i + 1, {
        type: "kv.put",
        key: `k${i}`,
        value: new Uint8Array(500_000).fill(i),
        flags: 0,
      });
      assert.ok(r.ok, r.error);
    }
    const saved = await bytesOf(userSnapshotStream(src));
    assert.ok(saved.byteLength > 4 * SNAPSHOT_CHUNK_BYTES);
    // The "log": commands applied to dst in the order they reach it. Chunk 1's first proposal is
    // held back until chunk 2 has applied (a retry across a busy leader); chunk 3's first
    // proposal applies but its proposer hears a timeout.
    let index = 0;
    const apply = (c: Command): Proposed => {
      index++;
      return { index, result: dst.apply(index, c) };
    };
    let release: () => void = () => {};
    const chunk2Applied = new Promise<void>((r) => release = r);
    const first = new Set<number>();
    const propose = async (c: Command): Promise<Proposed> => {
      if (c.type !== "restore.chunk" || first.has(c.seq)) return apply(c);
      first.add(c.seq);
      if (c.seq === 1) {
        await chunk2Applied;
        return apply(c);
      }
      const p = apply(c);
      if (c.seq === 2) release();
      if (c.seq === 3) {
        throw new TimeoutError("proposal timed out; it may or may not have taken effect");
      }
      return p;
    };
    const r = await restoreFromStream(streamOf(saved), propose);
    assert.ok(r.chunks > 4);
    assert.equal(kvText(dst), kvText(src));
  } finally {
    src.close();
    dst.close();
  }
});

Deno.test("restoreFromStream() with the passphrase restores sealed ACL tokens on every member", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const follower = ms.find((m) => m !== leader)!;
    const token = (accessorId: string) => ({
      type: "acl.token.set" as const,
      token: {
        accessorId,
        secretHash: "0".repeat(63) + accessorId.slice(0, 1),
        description: "",
        policies: [],
        local: false,
        createTimeMs: 1,
      },
    });
    const T1 = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
    const T2 = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
    await leader.cluster.propose(token(T1));
    await until("follower has T1", () => follower.store.aclToken(T1) !== undefined);
    const saved = await bytesOf(userSnapshotStream(follower.store, { passphrase: "pw" }));
    await leader.cluster.propose({ type: "acl.token.delete", accessorId: T1 });
    await leader.cluster.propose(token(T2));
    const r = await restoreFromStream(streamOf(saved), (c) => follower.cluster.propose(c), {
      passphrase: "pw",
    });
    assert.equal(r.secrets, "restored");
    for (const m of ms) {
      await until(`${m.name} restored`, () => m.store.appliedIndex() >= r.index);
      assert.ok(m.store.aclToken(T1) !== undefined, `${m.name} has T1 back`);
      assert.equal(m.store.aclToken(T2), undefined, `${m.name} lost T2`);
    }
  } finally {
    await closeAll(ms);
  }
});
