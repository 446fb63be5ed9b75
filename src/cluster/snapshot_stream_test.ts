import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type ChunkRequest, sendSnapshotFile, SnapshotReceiver } from "./snapshot_stream.ts";

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function content(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

function chunk(key: string, seq: number, whole: Uint8Array, size: number): ChunkRequest {
  return {
    t: "snap.chunk",
    key,
    seq,
    bytes: whole.byteLength,
    sha256: sha256(whole),
    data: whole.slice(seq * size, (seq + 1) * size),
  };
}

Deno.test("sendSnapshotFile() keeps at most `window` chunks unacknowledged and the file arrives whole", async () => {
  await withDir(async (dir) => {
    const whole = content(10_000);
    await Deno.writeFile(`${dir}/out.snap`, whole);
    const rx = new SnapshotReceiver({ dir, log: () => {} });
    let inflight = 0;
    let most = 0;
    const answers: unknown[] = [];
    await sendSnapshotFile(`${dir}/out.snap`, {
      key: "k1",
      bytes: whole.byteLength,
      sha256: sha256(whole),
      window: 3,
      chunkBytes: 1000,
      request: async (body) => {
        inflight++;
        most = Math.max(most, inflight);
        // The receiver acknowledges slowly: the sender must wait, not queue all ten chunks.
        await new Promise((r) => setTimeout(r, 5));
        const a = await rx.onChunk(2, structuredClone(body));
        inflight--;
        answers.push(a);
        return a;
      },
    });
    assert.equal(most, 3);
    assert.equal(answers.length, 10);
    assert.deepEqual(answers.at(-1), { done: true });
    const got = rx.take("k1", 2)!;
    assert.deepEqual(await Deno.readFile(got.path), whole);
    assert.equal(rx.take("k1", 2), undefined, "taken once");
  });
});

Deno.test("sendSnapshotFile() stops at the first refused chunk and rejects", async () => {
  await withDir(async (dir) => {
    const whole = content(10_000);
    await Deno.writeFile(`${dir}/out.snap`, whole);
    const seqs: number[] = [];
    await assert.rejects(
      sendSnapshotFile(`${dir}/out.snap`, {
        key: "k1",
        bytes: whole.byteLength,
        sha256: sha256(whole),
        window: 2,
        chunkBytes: 1000,
        request: (body) => {
          seqs.push(body.seq);
          return body.seq === 2 ? Promise.reject(new Error("disk full")) : Promise.resolve({});
        },
      }),
      /disk full/,
    );
    assert.ok(seqs.length <= 4, `sent ${seqs.length} chunks after a refusal`);
  });
});

Deno.test("SnapshotReceiver.onChunk() acknowledges a duplicate, refuses a gap and an unknown transfer", async () => {
  await withDir(async (dir) => {
    const whole = content(3000);
    const rx = new SnapshotReceiver({ dir, log: () => {} });
    assert.deepEqual(await rx.onChunk(2, chunk("k", 0, whole, 1000)), { next: 1 });
    assert.deepEqual(await rx.onChunk(2, chunk("k", 0, whole, 1000)), { next: 1 });
    await assert.rejects(
      rx.onChunk(2, chunk("k", 2, whole, 1000)),
      /chunk 2 arrived, chunk 1 expected/,
    );
    // The gap ended the transfer: its temp file is gone and later chunks are refused.
    assert.equal(rx.receivingPath, undefined);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    await assert.rejects(rx.onChunk(2, chunk("k", 1, whole, 1000)), /unknown here/);
    await assert.rejects(rx.onChunk(2, { t: "snap.chunk", key: "x" }), /malformed snapshot chunk/);
    assert.equal(rx.take("k", 2), undefined);
  });
});

Deno.test("SnapshotReceiver refuses a file whose checksum differs and keeps nothing", async () => {
  await withDir(async (dir) => {
    const whole = content(2000);
    const rx = new SnapshotReceiver({ dir, log: () => {} });
    const bad = (seq: number) => ({ ...chunk("k", seq, whole, 1000), sha256: sha256(content(5)) });
    await rx.onChunk(2, bad(0));
    await assert.rejects(rx.onChunk(2, bad(1)), /checksum/);
    assert.equal(rx.take("k", 2), undefined);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("SnapshotReceiver takes a new transfer from a restarted sender, dropping the unfinished one", async () => {
  await withDir(async (dir) => {
    const whole = content(2000);
    const rx = new SnapshotReceiver({ dir, log: () => {} });
    await rx.onChunk(2, chunk("old", 0, whole, 1000));
    const oldTmp = rx.receivingPath!;
    await rx.onChunk(2, chunk("new", 0, whole, 1000));
    assert.notEqual(rx.receivingPath, oldTmp);
    await assert.rejects(Deno.stat(oldTmp), Deno.errors.NotFound);
    await assert.rejects(rx.onChunk(2, chunk("old", 1, whole, 1000)), /unknown here/);
    assert.deepEqual(await rx.onChunk(2, chunk("new", 1, whole, 1000)), { done: true });
    assert.deepEqual(await Deno.readFile(rx.take("new", 2)!.path), whole);
    // A chunk from another member than the transfer's sender is refused.
    await rx.onChunk(2, chunk("third", 0, whole, 1000));
    await assert.rejects(rx.onChunk(3, chunk("third", 1, whole, 1000)), /does not match/);
  });
});

Deno.test("SnapshotReceiver.sweep() gives up a transfer that went quiet", async () => {
  await withDir(async (dir) => {
    const whole = content(2000);
    let now = 1000;
    const lines: string[] = [];
    const rx = new SnapshotReceiver({
      dir,
      now: () => now,
      staleMs: 100,
      log: (l) => lines.push(l),
    });
    await rx.onChunk(2, chunk("k", 0, whole, 1000));
    now += 50;
    rx.sweep();
    assert.notEqual(rx.receivingPath, undefined);
    now += 101;
    rx.sweep();
    assert.equal(rx.receivingPath, undefined);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    assert.match(
      lines.join("\n"),
      /gave up snapshot transfer k from member 2: no chunk for 100 ms/,
    );
    await assert.rejects(rx.onChunk(2, chunk("k", 1, whole, 1000)), /unknown here/);
  });
});
