/**
 * The ready loop's order around the log writer (_core.ts): what waits for this member's write
 * to be durable and what goes out before it. Each member's writer is wrapped by a Gate that
 * holds writes back on demand (the writer's acknowledgement is what the loop waits for).
 */
import assert from "node:assert/strict";
import { unpack } from "msgpackr";
import type { HardState } from "../../raft/mod.ts";
import { closeAll, member, type TestMember, until } from "../../test/clusters.ts";
import { sleep } from "../../test/wait.ts";
import type { LogWrite, LogWriter } from "./log_writer.ts";
import { APPLY_SLICE_BYTES, APPLY_SLICE_ENTRIES } from "./_core.ts";
import { Store } from "../store/mod.ts";

/** Long enough for a message sent too early to have committed or elected (loopback: ~ms). */
const HOLD_MS = 120;

const enc = new TextEncoder();

/** A writer that passes writes on, or holds them (in order) while `hold(w)` says so. */
class Gate implements LogWriter {
  readonly #inner: LogWriter;
  hold: (w: LogWrite) => boolean = () => false;
  /** Every write seen, with whether it is durable yet. */
  readonly seen: { w: LogWrite; durable: boolean }[] = [];
  #queue: { w: LogWrite; go: () => void }[] = [];

  constructor(inner: LogWriter) {
    this.#inner = inner;
  }

  write(w: LogWrite): Promise<void> {
    const rec = { w, durable: false };
    this.seen.push(rec);
    const run = () => this.#inner.write(w).then(() => void (rec.durable = true));
    if (this.#queue.length === 0 && !this.hold(w)) return run();
    return new Promise((resolve, reject) => {
      this.#queue.push({ w, go: () => run().then(resolve, reject) });
    });
  }

  get held(): number {
    return this.#queue.length;
  }

  release(): void {
    this.hold = () => false;
    const q = this.#queue;
    this.#queue = [];
    for (const x of q) x.go();
  }

  close(): Promise<void> {
    this.release();
    return this.#inner.close();
  }
}

function hardStateOf(w: LogWrite): HardState | undefined {
  const v = w.state?.find(([k]) => k === "hardState")?.[1];
  return v === undefined ? undefined : unpack(v) as HardState;
}

const appends = (w: LogWrite) => (w.entries ?? []).length > 0;

/** Three voters a, b, c (tls off: quicker), each with a Gate. */
async function gatedMembers(): Promise<{ ms: TestMember[]; gates: Map<string, Gate> }> {
  const gates = new Map<string, Gate>();
  const opts = (name: string) => ({
    tls: false as const,
    wrapLogWriter: (w: LogWriter) => {
      const g = new Gate(w);
      gates.set(name, g);
      return g;
    },
  });
  const a = await member("a", "127.0.0.1", { ...opts("a"), bootstrap: true });
  const b = await member("b", "127.0.0.2", { ...opts("b"), join: [a.cluster.address] });
  const c = await member("c", "127.0.0.3", { ...opts("c"), join: [a.cluster.address] });
  const ms = [a, b, c];
  await until("three voters", () => ms.every((m) => m.store.confState().voters.length === 3));
  await until("a leads, all know", () => ms.every((m) => m.cluster.status().leader === "a"));
  return { ms, gates };
}

Deno.test("ClusterCore: followers' append responses wait for their writes (nothing commits while both are held)", async () => {
  const { ms, gates } = await gatedMembers();
  const [a, b, c] = ms as [TestMember, TestMember, TestMember];
  try {
    const ga = gates.get("a")!;
    const from = ga.seen.length;
    for (const n of ["b", "c"]) gates.get(n)!.hold = appends;
    let done = false;
    const p = a.cluster.propose({ type: "kv.put", key: "k", value: enc.encode("v"), flags: 0 })
      .finally(() => done = true);
    p.catch(() => {}); // awaited below; a failed assertion first must not leave it unhandled
    await until("b and c received the entry (their writes held)", () => {
      return [b, c].every((m) => gates.get(m.name)!.held > 0);
    });
    await sleep(HOLD_MS);
    // The leader's own write is durable, but without a follower's response no quorum exists.
    assert.ok(ga.seen.slice(from).some((s) => appends(s.w) && s.durable));
    assert.equal(done, false);
    assert.equal(a.store.kvGet("k"), undefined);
    gates.get("b")!.release();
    gates.get("c")!.release();
    await p;
    assert.ok(a.store.kvGet("k") !== undefined);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("ClusterCore: a leader's append goes out before its own write is durable", async () => {
  const { ms, gates } = await gatedMembers();
  const [a, b] = ms as [TestMember, TestMember, TestMember];
  try {
    const ga = gates.get("a")!;
    const gb = gates.get("b")!;
    const from = gb.seen.length;
    const term = a.cluster.status().term;
    ga.hold = appends;
    const p = a.cluster.propose({ type: "kv.put", key: "k", value: enc.encode("v"), flags: 0 });
    p.catch(() => {}); // awaited below
    // The proposal's entry: a's term, with data (not a new leader's empty entry).
    const proposed = (w: LogWrite) =>
      (w.entries ?? []).some((e) => e.term === term && e.data.byteLength > 0);
    await until(
      "b wrote the entry while the leader's write of it is held",
      () => gb.seen.slice(from).some((s) => proposed(s.w) && s.durable),
      { timeoutMs: 5_000 },
    );
    assert.ok(ga.held > 0);
    // Nothing is applied anywhere before the leader's write: b has not learned the commit.
    assert.equal(a.store.kvGet("k"), undefined);
    assert.equal(b.store.kvGet("k"), undefined);
    ga.release();
    const { index } = await p;
    await until("b applies it", () => b.store.appliedIndex() >= index);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("ClusterCore: a ready that only moves the commit index applies and answers without its write's ack; one with entries waits", async () => {
  const { ms, gates } = await gatedMembers();
  const [a] = ms as [TestMember, TestMember, TestMember];
  try {
    const ga = gates.get("a")!;
    const from = ga.seen.length;
    // Hold the leader's commit-only writes (a hard state, no entries, no snapshot).
    const commitOnly = (w: LogWrite) => !appends(w) && hardStateOf(w) !== undefined && !w.clear;
    ga.hold = commitOnly;
    const r1 = await a.cluster.propose({
      type: "kv.put",
      key: "k1",
      value: enc.encode("v"),
      flags: 0,
    });
    assert.ok(ga.held > 0, "the commit-only write is still held");
    assert.ok(ga.seen.slice(from).some((s) => commitOnly(s.w) && !s.durable));
    assert.ok(a.store.appliedIndex() >= r1.index);
    assert.ok(a.store.kvGet("k1") !== undefined);
    ga.release();
    // A ready with entries still waits for its write: nothing applied, no answer.
    ga.hold = appends;
    let done = false;
    const p2 = a.cluster.propose({ type: "kv.put", key: "k2", value: enc.encode("v"), flags: 0 })
      .finally(() => done = true);
    p2.catch(() => {}); // awaited below; a failed assertion first must not leave it unhandled
    await until("the leader's append is held", () => ga.held > 0);
    await sleep(HOLD_MS);
    assert.equal(done, false);
    assert.equal(a.store.kvGet("k2"), undefined);
    ga.release();
    await p2;
    assert.ok(a.store.kvGet("k2") !== undefined);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("ClusterCore: a vote is sent only once the voter's hard state is durable", async () => {
  const { ms, gates } = await gatedMembers();
  const [a, b] = ms as [TestMember, TestMember, TestMember];
  try {
    const bId = b.cluster.identity()!.id;
    const term = a.cluster.status().term;
    for (const n of ["a", "c"]) {
      gates.get(n)!.hold = (w) => {
        const hs = hardStateOf(w);
        return hs !== undefined && hs.term > term && hs.vote === bId;
      };
    }
    const moved = a.cluster.transferLeader("b");
    moved.catch(() => {}); // awaited below
    await until(
      "a and c voted for b (their writes held)",
      () => ["a", "c"].every((n) => gates.get(n)!.held > 0),
    );
    await sleep(HOLD_MS);
    assert.notEqual(b.cluster.status().role, "leader");
    gates.get("a")!.release();
    gates.get("c")!.release();
    await moved;
    await until("b leads", () => b.cluster.status().role === "leader");
  } finally {
    await closeAll(ms);
  }
});

Deno.test("ClusterCore: a member catching up applies in slices of at most APPLY_SLICE_ENTRIES", async () => {
  const a = await member("a", "127.0.0.1", { tls: false, bootstrap: true, voters: 1 });
  const store = Store.open(":memory:");
  const sizes: number[] = [];
  let last = 0;
  store.subscribe((c) => {
    sizes.push(c.index - last);
    last = c.index;
  });
  const ms = [a];
  try {
    const n = 3 * APPLY_SLICE_ENTRIES;
    await Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          a.cluster.propose({ type: "kv.put", key: `k${i}`, value: enc.encode("v"), flags: 0 }),
      ),
    );
    const b = await member("b", "127.0.0.2", { tls: false, join: [a.cluster.address], store });
    ms.push(b);
    await until("b caught up", () => b.store.appliedIndex() >= a.store.appliedIndex());
    assert.ok(sizes.reduce((x, y) => x + y, 0) >= n);
    assert.ok(Math.max(...sizes) <= APPLY_SLICE_ENTRIES, `applied in ${sizes.join(", ")}`);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("ClusterCore: a member catching up applies entries of APPLY_SLICE_BYTES one slice at a time", async () => {
  const a = await member("a", "127.0.0.1", { tls: false, bootstrap: true, voters: 1 });
  const store = Store.open(":memory:");
  const bigPerChange: number[] = [];
  store.subscribe((c) => bigPerChange.push([...c.keys].filter((k) => k.startsWith("big")).length));
  const ms = [a];
  try {
    const value = new Uint8Array(APPLY_SLICE_BYTES);
    await Promise.all(
      Array.from(
        { length: 6 },
        (_, i) => a.cluster.propose({ type: "kv.put", key: `big${i}`, value, flags: 0 }),
      ),
    );
    const b = await member("b", "127.0.0.2", { tls: false, join: [a.cluster.address], store });
    ms.push(b);
    await until("b caught up", () => b.store.appliedIndex() >= a.store.appliedIndex());
    assert.equal(bigPerChange.reduce((x, y) => x + y, 0), 6);
    assert.ok(Math.max(...bigPerChange) === 1, `big entries per apply: ${bigPerChange.join(", ")}`);
  } finally {
    await closeAll(ms);
  }
});
