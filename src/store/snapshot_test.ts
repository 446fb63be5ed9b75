import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { pack } from "msgpackr";
import {
  type ApplyResult,
  type Change,
  type InstanceSpec,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_FRAME_BYTES_MAX,
  SnapshotDecoder,
  Store,
} from "./mod.ts";
import { encodeFrame, encodeHeader, type SnapshotFrame } from "./snapshot_format.ts";
import { instanceSpec } from "../../test/fixtures.ts";
import { concatBytes as concat } from "../lib/bytes.ts";

const enc = new TextEncoder();

function spec(over: Partial<InstanceSpec> = {}): InstanceSpec {
  return instanceSpec({ address: "127.0.0.1", ...over });
}

/** A store's snapshot stream of `kind`, whole (small test stores only). */
function streamOf(s: Store, kind: "raft" | "user"): Uint8Array {
  const src = s.snapshotSource(kind);
  const parts: Uint8Array[] = [];
  for (let p = src.next(); p !== null; p = src.next()) parts.push(p);
  return concat(parts);
}

function framesOf(bytes: Uint8Array): SnapshotFrame[] {
  const d = new SnapshotDecoder();
  const out = d.push(bytes);
  d.finish();
  return out;
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** Restores `bytes` through the restore.* commands (next indexes); the commit's result. */
function restoreThroughLog(
  s: Store,
  bytes: Uint8Array,
  opts: { id?: string; skipChunk?: number; bytesDelta?: number } = {},
): ApplyResult {
  const id = opts.id ?? "r1";
  let index = s.appliedIndex() + 1;
  s.apply(index++, { type: "restore.begin", id });
  let seq = 0;
  for (let off = 0; off < bytes.byteLength; off += SNAPSHOT_CHUNK_BYTES, seq++) {
    if (seq === opts.skipChunk) continue;
    const data = bytes.subarray(off, off + SNAPSHOT_CHUNK_BYTES);
    const r = s.apply(index++, { type: "restore.chunk", id, seq, data });
    if (!r.ok) return r;
  }
  return s.apply(index, {
    type: "restore.commit",
    id,
    chunks: seq,
    bytes: bytes.byteLength + (opts.bytesDelta ?? 0),
  });
}

function seeded(): Store {
  const s = Store.open(":memory:");
  s.apply(1, {
    type: "conf",
    voters: [1],
    learners: [],
    upsert: { id: 1, name: "a", address: "x:1" },
  });
  s.apply(2, { type: "register", instance: spec() });
  s.apply(3, { type: "kv.put", key: "k", value: enc.encode("v"), flags: 3 }, "req-3");
  return s;
}

Deno.test("Store.writeSnapshotFile() and installSnapshotFile() round-trip every table", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = Store.open(`${dir}/a.db`);
    s.apply(1, {
      type: "conf",
      voters: [1],
      learners: [],
      upsert: { id: 1, name: "a", address: "x:1" },
    });
    s.apply(2, { type: "register", instance: spec() });
    s.apply(3, { type: "kv.put", key: "k", value: enc.encode("v"), flags: 3 }, "req-3");
    const info = await s.writeSnapshotFile(`${dir}/snap`, "raft");
    assert.equal(info.index, 3);
    assert.deepEqual(info.confState, { voters: [1], learners: [] });
    const file = await Deno.readFile(`${dir}/snap`);
    assert.equal(info.bytes, file.byteLength);
    assert.equal(info.sha256, sha256(file));
    const b = Store.open(`${dir}/b.db`);
    b.apply(1, { type: "kv.put", key: "other", value: enc.encode("x"), flags: 0 });
    b.installSnapshotFile(`${dir}/snap`);
    assert.equal(b.appliedIndex(), 3);
    assert.deepEqual(b.instances(), s.instances());
    assert.deepEqual(b.kvList(""), s.kvList(""));
    assert.deepEqual(b.members(), s.members());
    assert.equal(b.memberIdMax(), 1);
    // The request-id table came along: a retried request is still applied once.
    assert.deepEqual(b.apply(4, { type: "kv.delete", key: "k" }, "req-3"), { ok: true });
    assert.equal(b.kvGet("k")?.flags, 3);
    s.close();
    b.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Store.snapshotSource() on a file store stays at its index while applies go on", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = Store.open(`${dir}/a.db`);
    for (let i = 1; i <= 40; i++) {
      s.apply(i, { type: "kv.put", key: `k${i}`, value: new Uint8Array(100_000), flags: 0 });
    }
    const src = s.snapshotSource("user");
    const parts = [src.next()!];
    s.apply(41, { type: "kv.put", key: "late", value: enc.encode("x"), flags: 0 });
    for (let p = src.next(); p !== null; p = src.next()) parts.push(p);
    assert.ok(parts.length > 2, "a 4 MB store comes in several pieces");
    for (const p of parts.slice(0, -1)) assert.ok(p.byteLength <= 2 * SNAPSHOT_CHUNK_BYTES);
    const frames = framesOf(concat(parts));
    const keys = frames.flatMap((f) => "t" in f && f.t === "kv" ? f.rows.map((r) => r.key) : []);
    assert.equal(keys.length, 40);
    assert.ok(!keys.includes("late"));
    s.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Store user snapshot carries services, nodes and KV only: no request ids or members", () => {
  const s = seeded();
  for (let i = 4; i < 3000; i++) {
    s.apply(i, { type: "kv.put", key: "n", value: enc.encode(`${i}`), flags: 0 }, `req-${i}`);
  }
  const bytes = streamOf(s, "user");
  const tables = new Set(framesOf(bytes).flatMap((f) => "t" in f ? [f.t] : []));
  assert.deepEqual([...tables].sort(), ["instances", "kv", "service_index"]);
  // The raft snapshot of the same store carries the request ids.
  const raft = framesOf(streamOf(s, "raft")).filter((f) => "t" in f && f.t === "requests");
  assert.equal(raft.reduce((n, f) => n + ("t" in f ? f.rows.length : 0), 0), 2997);
});

Deno.test("Store.installSnapshotFile() announces services present before or after", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = Store.open(":memory:");
    src.apply(1, { type: "register", instance: spec({ id: "n1:api:80", service: "api" }) });
    await Deno.writeFile(`${dir}/snap`, streamOf(src, "raft"));
    const s = Store.open(":memory:");
    s.apply(1, { type: "register", instance: spec({ id: "n1:gone:80", service: "gone" }) });
    const changes: Change[] = [];
    s.subscribe((c) => changes.push(c));
    s.installSnapshotFile(`${dir}/snap`);
    assert.equal(changes.length, 1);
    // "gone" is absent after the install: a blocking read on it must still wake.
    assert.deepEqual([...changes[0]!.services].sort(), ["api", "gone"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Store.installSnapshotFile() refuses a truncated or user snapshot, changing nothing", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const src = seeded();
    const whole = streamOf(src, "raft");
    const cases: [string, Uint8Array, RegExp][] = [
      ["truncated", whole.subarray(0, whole.byteLength - 3), /truncated/],
      ["a user snapshot", streamOf(src, "user"), /user snapshot/],
      ["not a snapshot", enc.encode("hello, world"), /not a berth store snapshot/],
    ];
    for (const [name, bytes, err] of cases) {
      await t.step(name, async () => {
        await Deno.writeFile(`${dir}/snap`, bytes);
        const s = Store.open(":memory:");
        s.apply(1, { type: "kv.put", key: "mine", value: enc.encode("1"), flags: 0 });
        assert.throws(() => s.installSnapshotFile(`${dir}/snap`), err);
        assert.deepEqual(s.kvKeys(""), ["mine"]);
        assert.equal(s.appliedIndex(), 1);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Store restore.* replaces data tables in one commit and keeps membership", () => {
  const old = Store.open(":memory:");
  old.apply(1, { type: "kv.put", key: "old", value: new Uint8Array(500_000), flags: 0 });
  old.apply(2, { type: "kv.put", key: "old2", value: new Uint8Array(500_000), flags: 0 });
  old.apply(3, { type: "kv.put", key: "old3", value: new Uint8Array(500_000), flags: 0 });
  const saved = streamOf(old, "user");
  assert.ok(saved.byteLength > SNAPSHOT_CHUNK_BYTES, "the restore takes two chunks");
  const s = seeded();
  const changes: Change[] = [];
  s.subscribe((c) => changes.push(c));
  assert.deepEqual(restoreThroughLog(s, saved), { ok: true });
  assert.deepEqual(s.kvKeys(""), ["old", "old2", "old3"]);
  assert.equal(s.instances().length, 0);
  assert.equal(s.serviceIndex("web"), 7); // deregistered by the restore: blocking reads wake
  assert.ok(changes.at(-1)!.services.has("web"));
  assert.deepEqual(s.members().map((m) => m.name), ["a"]);
  // The staging area is empty again.
  assert.equal(streamOf(s, "raft").byteLength < saved.byteLength * 2, true);
});

Deno.test("Store restore.commit changes nothing when the staged snapshot does not check out", async (t) => {
  const donor = seeded();
  const saved = streamOf(donor, "user");
  const headerOnly = concat([encodeHeader({ kind: "user", index: 1 })]);
  const row = (table: string, r: Record<string, unknown>) =>
    concat([
      encodeHeader({ kind: "user", index: 1 }),
      encodeFrame({ t: table, rows: [r] }),
      encodeFrame({ end: true, rows: 1 }),
    ]);
  const inst = {
    id: "n1:web-1:80",
    service: "web",
    node: "n1",
    data: JSON.stringify(spec()),
    create_index: 1,
    modify_index: 1,
  };
  const kv = {
    key: "k",
    value: new Uint8Array(1),
    flags: 0,
    create_index: 1,
    modify_index: 1,
    lock_index: 0,
  };
  const cases: [string, Uint8Array, { skipChunk?: number; bytesDelta?: number }, RegExp][] = [
    ["a chunk missing", saved, { skipChunk: 0 }, /0 chunks \(0 bytes\) arrived of 1/],
    ["fewer bytes than announced", saved, { bytesDelta: 1 }, /arrived of 1 \(\d+ bytes\)/],
    ["truncated", headerOnly, {}, /truncated/],
    [
      "instance data not JSON",
      row("instances", { ...inst, data: "not json" }),
      {},
      /instances row 0/,
    ],
    [
      "instance data an empty object",
      row("instances", { ...inst, data: "{}" }),
      {},
      /instances row 0/,
    ],
    [
      "instance id differs from its column",
      row("instances", { ...inst, id: "other" }),
      {},
      /differ/,
    ],
    ["kv value not bytes", row("kv", { ...kv, value: "text" }), {}, /column value is not bytes/],
    ["unknown column", row("kv", { ...kv, extra: 1 }), {}, /unknown column extra/],
    ["unknown table", row("secrets", { a: 1 }), {}, /unknown snapshot table/],
    ["not a snapshot", pack({ format: "x" }), {}, /not a berth store snapshot/],
  ];
  const s = seeded();
  for (const [name, bytes, opts, err] of cases) {
    await t.step(name, () => {
      const r = restoreThroughLog(s, bytes, opts);
      assert.equal(r.ok, false);
      assert.match(r.error ?? "", err);
      assert.match(r.error ?? "", /^restore: /);
      assert.equal(s.instances().length, 1);
      assert.equal(s.kvGet("k")?.flags, 3);
      // Staging was emptied: a commit of the same id now finds nothing under way.
      const again = s.apply(s.appliedIndex() + 1, {
        type: "restore.commit",
        id: "r1",
        chunks: 0,
        bytes: 0,
      });
      assert.match(again.error ?? "", /not under way/);
    });
  }
});

Deno.test("Store restore.chunk refuses a chunk ahead of its turn or of a replaced restore, takes one sent again as done", () => {
  const s = seeded();
  const bytes = streamOf(seeded(), "user");
  const piece = (n: number) => bytes.subarray(n * 10, n * 10 + 10);
  s.apply(4, { type: "restore.begin", id: "a" });
  const chunk = (seq: number, id = "a") => ({ type: "restore.chunk", id, seq, data: piece(seq) });
  const ahead = s.apply(5, chunk(1));
  assert.match(ahead.error ?? "", /chunk 1 arrived, chunk 0 expected/);
  assert.equal(ahead.restoreNext, 0, "the sender learns where to send again from");
  assert.deepEqual(s.apply(6, chunk(0)), { ok: true });
  // Sent again (its sender did not learn it applied): done already, nothing changes.
  assert.deepEqual(s.apply(7, chunk(0)), { ok: true });
  assert.deepEqual(s.apply(8, chunk(1)), { ok: true }, "the restore goes on after a refusal");
  s.apply(9, { type: "restore.begin", id: "b" });
  assert.match(s.apply(10, chunk(2)).error ?? "", /restore a is not under way/);
  s.apply(11, { type: "restore.abort", id: "b" });
  assert.match(s.apply(12, chunk(0, "b")).error ?? "", /restore b is not under way/);
  const big = new Uint8Array(SNAPSHOT_CHUNK_BYTES + 1);
  assert.match(
    s.apply(13, { type: "restore.chunk", id: "b", seq: 0, data: big }).error ?? "",
    /at most/,
  );
  s.apply(14, { type: "restore.begin", id: "c" });
  const junk = { type: "restore.chunk", id: "c", seq: 0, data: enc.encode("not a snapshot") };
  assert.match(s.apply(15, junk).error ?? "", /not a berth store snapshot/);
  assert.match(s.apply(16, chunk(0, "c")).error ?? "", /restore c is not under way/);
  assert.equal(s.kvGet("k")?.flags, 3);
});

Deno.test("Store raft snapshot taken mid-restore carries the staging area: the restore completes after an install", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const old = Store.open(":memory:");
    old.apply(1, { type: "kv.put", key: "old", value: new Uint8Array(500_000), flags: 0 });
    old.apply(2, { type: "kv.put", key: "old2", value: new Uint8Array(500_000), flags: 0 });
    old.apply(3, { type: "kv.put", key: "old3", value: new Uint8Array(500_000), flags: 0 });
    const saved = streamOf(old, "user");
    const s = seeded();
    s.apply(4, { type: "restore.begin", id: "r" });
    const data = (seq: number) =>
      saved.subarray(seq * SNAPSHOT_CHUNK_BYTES, (seq + 1) * SNAPSHOT_CHUNK_BYTES);
    assert.deepEqual(s.apply(5, { type: "restore.chunk", id: "r", seq: 0, data: data(0) }), {
      ok: true,
    });
    await Deno.writeFile(`${dir}/snap`, streamOf(s, "raft"));
    const replica = Store.open(":memory:");
    replica.installSnapshotFile(`${dir}/snap`);
    for (const st of [s, replica]) {
      assert.deepEqual(st.apply(6, { type: "restore.chunk", id: "r", seq: 1, data: data(1) }), {
        ok: true,
      });
      const r = st.apply(7, {
        type: "restore.commit",
        id: "r",
        chunks: 2,
        bytes: saved.byteLength,
      });
      assert.deepEqual(r, { ok: true });
      assert.deepEqual(st.kvKeys(""), ["old", "old2", "old3"]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SnapshotDecoder.push() takes a stream in pieces of any size", () => {
  const s = seeded();
  const bytes = streamOf(s, "raft");
  const d = new SnapshotDecoder();
  const frames: SnapshotFrame[] = [];
  for (let i = 0; i < bytes.byteLength; i += 7) frames.push(...d.push(bytes.subarray(i, i + 7)));
  d.finish();
  assert.deepEqual(frames, framesOf(bytes));
  assert.equal(d.header?.kind, "raft");
  assert.equal(d.header?.index, 3);
});

Deno.test("SnapshotDecoder.push() gathers a frame that comes in small pieces in one buffer of the frame's size", () => {
  const kvRow = (i: number, bytes: number) => ({
    key: `k${i}`,
    value: new Uint8Array(bytes).fill(i),
    flags: 0,
    create_index: 1,
    modify_index: 1,
    lock_index: 0,
  });
  const frame = encodeFrame({ t: "kv", rows: [kvRow(1, 700_000), kvRow(2, 400_000)] });
  const bytes = concat([
    encodeHeader({ kind: "user", index: 1 }),
    frame,
    encodeFrame({ end: true, rows: 2 }),
  ]);
  const d = new SnapshotDecoder();
  const frames: SnapshotFrame[] = [];
  // Where the bytes of the unfinished frame were kept after each piece (an HTTP body's size).
  const kept = new Set<ArrayBufferLike>();
  for (let i = 0; i < bytes.byteLength; i += 64 * 1024) {
    frames.push(...d.push(bytes.subarray(i, i + 64 * 1024)));
    if (frames.length === 0 && d.remainder.byteLength > 64 * 1024) kept.add(d.remainder.buffer);
  }
  d.finish();
  // Not a new copy of the frame so far for each of its 17 pieces: one buffer, sized for it.
  assert.equal(kept.size, 1);
  const [buffer] = kept;
  assert.ok(
    buffer!.byteLength >= frame.byteLength && buffer!.byteLength < frame.byteLength + 64 * 1024,
  );
  assert.deepEqual(frames, framesOf(bytes));
});

Deno.test("SnapshotDecoder.push() refuses an oversized frame and a wrong row count", () => {
  const head = encodeHeader({ kind: "user", index: 1 });
  const huge = new Uint8Array(8);
  new DataView(huge.buffer).setUint32(0, SNAPSHOT_FRAME_BYTES_MAX + 1);
  assert.throws(() => new SnapshotDecoder().push(concat([head, huge])), /over the frame limit/);
  const lying = concat([head, encodeFrame({ end: true, rows: 5 })]);
  assert.throws(() => new SnapshotDecoder().push(lying), /ends after 0 rows, its end says 5/);
  const after = concat([
    head,
    encodeFrame({ end: true, rows: 0 }),
    encodeFrame({ end: true, rows: 0 }),
  ]);
  assert.throws(() => new SnapshotDecoder().push(after), /after the snapshot's end/);
});
