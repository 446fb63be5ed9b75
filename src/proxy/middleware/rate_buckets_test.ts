import assert from "node:assert/strict";
import { GROUP_SLOTS, hashKey, LOCK_SPINS_MAX, RateBuckets } from "./rate_buckets.ts";
import type { HammerJob } from "./_rate_buckets_job.ts";

const limit = (perSecond: number, burst: number) => ({ perSecond, burst });

/** Takes `n` tokens at `now`; how many were admitted. */
function takeN(
  b: RateBuckets,
  key: string,
  l: { perSecond: number; burst: number },
  n: number,
  now: number,
) {
  let admitted = 0;
  for (let i = 0; i < n; i++) if (b.take(key, l, now) === 0) admitted++;
  return admitted;
}

Deno.test("RateBuckets.take() admits a burst, then refuses until a token refills", () => {
  const b = RateBuckets.create(4);
  const l = limit(10, 5); // a token per 100 ms
  assert.equal(takeN(b, "svc\0ip", l, 8, 1000), 5);
  assert.equal(b.take("svc\0ip", l, 1000), 100); // ms until one is back
  assert.equal(b.take("svc\0ip", l, 1050), 50);
  assert.equal(b.take("svc\0ip", l, 1100), 0);
  assert.equal(b.take("svc\0ip", l, 1100), 100);
  // 250 ms later: two tokens (not 2.5 → a third), then refused.
  assert.equal(takeN(b, "svc\0ip", l, 5, 1350), 2);
  assert.equal(b.tokens("svc\0ip", l, 1350), 0.5); // half way to the next token
});

Deno.test("RateBuckets.take() refills to the burst, never beyond it", () => {
  const b = RateBuckets.create(4);
  const l = limit(100, 3);
  assert.equal(takeN(b, "k", l, 3, 0), 3);
  // An hour idle: the bucket is full again with 3 tokens, not 360,000.
  assert.equal(takeN(b, "k", l, 10, 3_600_000), 3);
  assert.equal(b.tokens("k", l, 3_600_000), 0);
  assert.equal(b.tokens("k", l, 3_600_010), 1);
});

Deno.test("RateBuckets.take() with a per-minute rate waits a minute per token", () => {
  const b = RateBuckets.create(1);
  const l = limit(1 / 60, 2);
  assert.equal(takeN(b, "k", l, 4, 0), 2);
  assert.equal(b.take("k", l, 0), 60_000);
  assert.equal(b.take("k", l, 59_999), 1);
  assert.equal(b.take("k", l, 60_000), 0);
});

Deno.test("RateBuckets.take() with a fractional token time owes no token to rounding", () => {
  const b = RateBuckets.create(1);
  const l = limit(3, 1); // 333.33… ms per token
  let admitted = 0;
  // Exactly 3,000 tokens' worth of time in steps of T: every step admits one.
  for (let i = 0; i < 3000; i++) if (b.take("k", l, (i * 1000) / 3) === 0) admitted++;
  assert.equal(admitted, 3000);
});

Deno.test("RateBuckets keeps separate buckets per key and a key in one slot", () => {
  const b = RateBuckets.create(1); // one group: every key shares it
  const l = limit(1, 2);
  assert.equal(takeN(b, "a", l, 3, 0), 2);
  assert.equal(takeN(b, "b", l, 3, 0), 2);
  assert.equal(takeN(b, "a", l, 1, 0), 0);
  assert.equal(b.used(0), 2);
});

Deno.test("RateBuckets evicts a full bucket first, else the one nearest to full", async (t) => {
  await t.step("a full (idle) bucket's slot goes to a new key", () => {
    const b = RateBuckets.create(1);
    const l = limit(1, 10);
    for (let i = 0; i < GROUP_SLOTS; i++) assert.equal(takeN(b, `k${i}`, l, 10, 0), 10);
    assert.equal(takeN(b, "idle", l, 1, 0), 1); // evicts the least drained (all equal: one)
    // k1..k7 drained at 0; 10 s later they are full again: a newcomer takes one of them,
    // and every drained-then-refilled key starts over with a full bucket.
    assert.equal(takeN(b, "new", l, 10, 10_000), 10);
    assert.equal(b.used(10_000), 1);
  });
  await t.step("a full group forgets the least drained bucket, keeps the drained ones", () => {
    const b = RateBuckets.create(1);
    const l = limit(1, 100);
    // An abusive client drains its bucket; then a flood of one-request clients fills the group.
    assert.equal(takeN(b, "abuser", l, 200, 0), 100);
    for (let i = 0; i < 1000; i++) assert.equal(b.take(`flood${i}`, l, 0), 0);
    assert.equal(b.take("abuser", l, 0), 1000); // still drained: never forgotten
    assert.equal(b.used(0), GROUP_SLOTS);
  });
  await t.step("the table never grows", () => {
    const b = RateBuckets.create(2);
    const bytes = b.buffer.byteLength;
    for (let i = 0; i < 10_000; i++) b.take(`c${i}`, limit(1, 1), 0);
    assert.equal(b.buffer.byteLength, bytes);
    assert.equal(b.used(0), 2 * GROUP_SLOTS);
  });
});

Deno.test("RateBuckets over the same buffer is one table (another thread's view)", () => {
  const a = RateBuckets.create(4);
  const b = new RateBuckets(a.buffer);
  const l = limit(1, 4);
  assert.equal(takeN(a, "k", l, 2, 0), 2);
  assert.equal(takeN(b, "k", l, 5, 0), 2);
  assert.equal(b.groups, 4);
  assert.throws(() => new RateBuckets(new SharedArrayBuffer(7)), /not a rate bucket table/);
  assert.throws(() => RateBuckets.create(0), /bad group count/);
});

Deno.test("RateBuckets takes over a lock whose holder stopped mid-update", () => {
  const b = RateBuckets.create(1);
  const [, lo] = hashKey("k");
  const locks = new Int32Array(b.buffer, b.buffer.byteLength - 4 * b.groups, b.groups);
  Atomics.store(locks, lo % b.groups, 1); // as a worker terminated inside take() leaves it
  assert.equal(b.take("k", limit(1, 1), 0), 0);
  assert.equal(Atomics.load(locks, 0), 0);
  assert.ok(LOCK_SPINS_MAX > 1000);
});

Deno.test("hashKey() spreads keys over groups", () => {
  const groups = 64;
  const counts = new Array(groups).fill(0);
  for (let i = 0; i < 64_000; i++) {
    counts[hashKey(`svc\u0000203.0.113.${i % 256}.${i}`)[1] % groups]++;
  }
  assert.ok(Math.min(...counts) > 800 && Math.max(...counts) < 1200, String(counts));
});

/** Runs `job` in two Workers at once; the admitted count of each. */
async function hammer(job: Omit<HammerJob, "table" | "control">, table: RateBuckets) {
  const control = new SharedArrayBuffer(12);
  const url = new URL("./_rate_buckets_worker.ts", import.meta.url);
  const workers = [0, 1].map(() => new Worker(url, { type: "module" }));
  try {
    const counts = workers.map((w) =>
      new Promise<number>((resolve, reject) => {
        w.onmessage = (e) => resolve(e.data as number);
        w.onerror = (e) => reject(new Error(e.message));
      })
    );
    for (const w of workers) w.postMessage({ ...job, table: table.buffer, control });
    // Once both wait on the flag (Atomics.wait), wake them together for the most contention.
    const c = new Int32Array(control);
    const deadline = Date.now() + 60_000; // a worker that cannot start must not hang the test
    while (Atomics.load(c, 2) < workers.length) {
      assert.ok(Date.now() < deadline, "the workers did not start");
      await new Promise((r) => setTimeout(r, 5));
    }
    Atomics.store(c, 0, 1);
    Atomics.notify(c, 0);
    return await Promise.all(counts);
  } finally {
    for (const w of workers) w.terminate();
  }
}

Deno.test("RateBuckets: two Workers hammering one bucket admit exactly its burst", async () => {
  const table = RateBuckets.create();
  const counts = await hammer(
    { key: "svc\u0000198.51.100.7", perSecond: 1, burst: 200_000, calls: 300_000, advance: false },
    table,
  );
  assert.equal(counts[0]! + counts[1]!, 200_000, `admitted ${counts}`);
});

Deno.test("RateBuckets: two Workers never admit more than burst plus the refill of the window", async () => {
  const table = RateBuckets.create();
  // 500/s: a token per 2 ms; each call advances the shared clock 1 ms; 2 × 200,000 calls make
  // a 400,000 ms window: at most 50 + 200,000 tokens.
  const counts = await hammer(
    { key: "svc\u0000198.51.100.8", perSecond: 500, burst: 50, calls: 200_000, advance: true },
    table,
  );
  const total = counts[0]! + counts[1]!;
  assert.ok(total <= 50 + 200_000, `admitted ${total}`);
  // Demand (one call per ms) is twice the refill: the bucket stays drained, so nearly all of
  // the refill is admitted (a call may carry an older time than the one before it).
  assert.ok(total >= 50 + 200_000 - 2, `admitted ${total}`);
});
