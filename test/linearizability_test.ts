import assert from "node:assert/strict";
import {
  checkOperations,
  type KvInput,
  kvModel,
  type KvOutput,
  type Model,
  normalizeHistory,
  type Operation,
} from "./linearizability.ts";
import { seededRandom } from "../raft/sim/prng.ts";

type KvOp = Operation<KvInput, KvOutput>;

function get(clientId: number, key: string, value: string | null, call: number, ret: number): KvOp {
  return { clientId, input: { key, op: "get" }, call, output: { value }, return: ret };
}
function put(clientId: number, key: string, value: string, call: number, ret: number): KvOp {
  return { clientId, input: { key, op: "put", value }, call, output: { ok: true }, return: ret };
}
function cas(
  clientId: number,
  key: string,
  swap: [expect: string | null, value: string],
  ok: boolean,
  call: number,
  ret: number,
): KvOp {
  const [expect, value] = swap;
  return { clientId, input: { key, op: "cas", expect, value }, call, output: { ok }, return: ret };
}
function unknown(op: KvOp): KvOp {
  return { ...op, output: { unknown: true }, return: Infinity };
}

function assertLegal(history: KvOp[]): void {
  const result = checkOperations(kvModel, history);
  assert.deepEqual(result, { ok: true });
}
function assertIllegal(history: KvOp[]): string {
  const result = checkOperations(kvModel, history);
  assert.equal(result.ok, false, JSON.stringify(result));
  assert.ok(result.ok === false);
  return result.explanation;
}

Deno.test("checkOperations() accepts a sequential legal history", () => {
  assertLegal([
    get(0, "a", null, 0, 1),
    put(0, "a", "1", 2, 3),
    get(1, "a", "1", 4, 5),
    put(1, "a", "2", 6, 7),
    get(0, "a", "2", 8, 9),
  ]);
});

Deno.test("checkOperations() accepts the empty history", () => {
  assertLegal([]);
});

Deno.test("checkOperations() accepts overlapping operations in an order other than call order", () => {
  // put 1 and put 2 overlap; the reads show 2 took effect first, then 1.
  assertLegal([
    put(0, "a", "1", 0, 10),
    put(1, "a", "2", 1, 5),
    get(2, "a", "2", 2, 3),
    get(2, "a", "1", 11, 12),
  ]);
});

Deno.test("checkOperations() accepts a read concurrent with a write seeing either value", async (t) => {
  await t.step("old value", () => assertLegal([put(0, "a", "1", 0, 10), get(1, "a", null, 2, 3)]));
  await t.step("new value", () => assertLegal([put(0, "a", "1", 0, 10), get(1, "a", "1", 2, 3)]));
});

Deno.test("checkOperations() treats operations touching at the same instant as concurrent", () => {
  // The get's call and the put's return share time 5: either order is allowed.
  assertLegal([put(0, "a", "1", 0, 5), get(1, "a", null, 5, 6)]);
});

Deno.test("checkOperations() rejects a stale read after a completed write and names it", () => {
  const explanation = assertIllegal([
    put(0, "a", "1", 0, 1),
    get(1, "a", null, 2, 3),
  ]);
  assert.match(explanation, /partition 0/);
  assert.match(explanation, /client 1: get a → null \[2, 3\] could not be placed/);
  assert.match(explanation, /prefix found \(1 of 2 ops\): client 0: put a="1"/);
});

Deno.test("checkOperations() rejects a lost write", () => {
  const explanation = assertIllegal([
    put(0, "a", "1", 0, 1),
    put(1, "a", "2", 2, 3),
    get(2, "a", "1", 4, 5),
  ]);
  assert.match(explanation, /client 2: get a → "1" \[4, 5\] could not be placed/);
});

Deno.test("checkOperations() rejects a read of a value never written", () => {
  assertIllegal([put(0, "a", "1", 0, 1), get(1, "a", "x", 0, 3)]);
});

Deno.test("kvModel cas swaps only when the current value equals expect", async (t) => {
  await t.step("create if absent succeeds on an absent key", () => {
    assertLegal([cas(0, "a", [null, "1"], true, 0, 1), get(0, "a", "1", 2, 3)]);
  });
  await t.step("create if absent fails on a present key", () => {
    assertLegal([
      put(0, "a", "1", 0, 1),
      cas(0, "a", [null, "2"], false, 2, 3),
      get(0, "a", "1", 4, 5),
    ]);
  });
  await t.step("matching expect swaps", () => {
    assertLegal([
      put(0, "a", "1", 0, 1),
      cas(1, "a", ["1", "2"], true, 2, 3),
      get(0, "a", "2", 4, 5),
    ]);
  });
  await t.step("a failed cas does not change the value", () => {
    assertIllegal([
      put(0, "a", "1", 0, 1),
      cas(1, "a", ["0", "2"], false, 2, 3),
      get(0, "a", "2", 4, 5),
    ]);
  });
  await t.step("reporting success on a mismatch is illegal", () => {
    assertIllegal([put(0, "a", "1", 0, 1), cas(1, "a", ["0", "2"], true, 2, 3)]);
  });
  await t.step("reporting failure on a match is illegal", () => {
    assertIllegal([put(0, "a", "1", 0, 1), cas(1, "a", ["1", "2"], false, 2, 3)]);
  });
  await t.step("a cas concurrent with the write it expects may succeed", () => {
    assertLegal([put(0, "a", "1", 0, 10), cas(1, "a", ["1", "2"], true, 1, 5)]);
  });
});

Deno.test("checkOperations() rejects two concurrent cas both succeeding on the same expected value", () => {
  const explanation = assertIllegal([
    put(0, "a", "1", 0, 1),
    cas(1, "a", ["1", "x"], true, 2, 10),
    cas(2, "a", ["1", "y"], true, 3, 11),
  ]);
  assert.match(explanation, /could not be placed/);
  assert.match(explanation, /prefix found \(2 of 3 ops\)/);
});

Deno.test("checkOperations() accepts two concurrent cas on the same expected value when one fails", () => {
  assertLegal([
    put(0, "a", "1", 0, 1),
    cas(1, "a", ["1", "x"], false, 2, 10),
    cas(2, "a", ["1", "y"], true, 3, 11),
    get(0, "a", "y", 12, 13),
  ]);
});

Deno.test("checkOperations() accepts an unknown-outcome put that took effect", () => {
  assertLegal([
    put(0, "a", "1", 0, 1),
    unknown(put(1, "a", "2", 2, 3)),
    get(0, "a", "2", 10, 11),
  ]);
});

Deno.test("checkOperations() accepts an unknown-outcome put that did not take effect", () => {
  assertLegal([
    put(0, "a", "1", 0, 1),
    unknown(put(1, "a", "2", 2, 3)),
    get(0, "a", "1", 10, 11),
    put(0, "a", "3", 12, 13),
    get(0, "a", "3", 14, 15),
  ]);
});

Deno.test("checkOperations() accepts an unknown-outcome put taking effect long after its timeout", () => {
  // Recorded with a finite return: normalizeHistory() makes it Infinity, since a request that
  // timed out at 3 may still be applied later.
  const late: KvOp = { ...put(1, "a", "2", 2, 3), output: { unknown: true } };
  assertLegal([put(0, "a", "1", 0, 1), late, get(0, "a", "1", 10, 11), get(0, "a", "2", 12, 13)]);
});

Deno.test("checkOperations() rejects an unknown put whose value is read before the put's call", () => {
  const explanation = assertIllegal([
    get(0, "a", "2", 0, 2),
    unknown(put(1, "a", "2", 5, 6)),
  ]);
  assert.match(explanation, /client 0: get a → "2" \[0, 2\] could not be placed/);
});

Deno.test("checkOperations() rejects an unknown cas observed to swap when it could not", () => {
  assertIllegal([
    put(0, "a", "1", 0, 1),
    unknown(cas(1, "a", ["0", "2"], true, 2, 3)),
    get(0, "a", "2", 10, 11),
  ]);
});

Deno.test("normalizeHistory() drops unknown gets and makes unknown writes open-ended", () => {
  const history: KvOp[] = [
    { ...get(0, "a", null, 0, 1), output: { unknown: true } },
    { ...put(1, "a", "1", 2, 3), output: { unknown: true } },
    get(2, "a", "1", 4, 5),
  ];
  const out = normalizeHistory(history);
  assert.equal(out.length, 2);
  assert.equal(out[0]!.input.op, "put");
  assert.equal(out[0]!.return, Infinity);
  assert.deepEqual(out[1], history[2]);
  assert.equal(history[1]!.return, 3, "input not modified");
  // An unknown get reading garbage is no evidence of anything.
  assertLegal([history[0]!, put(1, "a", "1", 2, 3), get(2, "a", "1", 4, 5)]);
});

Deno.test("kvModel.partition() isolates keys", async (t) => {
  const history = [
    put(0, "a", "1", 0, 1),
    put(1, "b", "x", 0, 1),
    get(0, "a", "1", 2, 3),
    get(1, "b", null, 2, 3), // stale on b only
    get(2, "c", null, 0, 9),
  ];
  await t.step("splits by key in order of first appearance", () => {
    const parts = kvModel.partition!(history);
    assert.deepEqual(parts.map((p) => p.map((op) => op.input.key)), [["a", "a"], ["b", "b"], [
      "c",
    ]]);
  });
  await t.step("reports the failing partition", () => {
    const result = checkOperations(kvModel, history);
    assert.ok(result.ok === false);
    assert.equal(result.partition, 1);
    assert.match(result.explanation, /get b → null/);
  });
  await t.step("a write on one key does not explain a read on another", () => {
    assertIllegal([put(0, "a", "1", 0, 1), get(1, "b", "1", 2, 3)]);
  });
});

Deno.test("checkOperations() throws on a malformed history", () => {
  assert.throws(() => checkOperations(kvModel, [put(0, "a", "1", 5, 4)]), /before call time/);
  assert.throws(() => checkOperations(kvModel, [put(0, "a", "1", NaN, 4)]), /not finite/);
});

Deno.test("checkOperations() works with a model without partition or describe", () => {
  // A counter: input is the amount added, output the value after.
  const counter: Model<number, number, number> = {
    init: () => 0,
    step: (s, add, out) => [s + add === out, s + add],
    equal: (a, b) => a === b,
  };
  const op = (clientId: number, add: number, out: number, call: number, ret: number) => ({
    clientId,
    input: add,
    output: out,
    call,
    return: ret,
  });
  assert.deepEqual(checkOperations(counter, [op(0, 1, 3, 0, 5), op(1, 2, 2, 1, 4)]), { ok: true });
  const result = checkOperations(counter, [op(0, 1, 1, 0, 1), op(1, 2, 2, 2, 3)]);
  assert.ok(result.ok === false);
  assert.match(result.explanation, /client 1: 2 → 2 \[2, 3\] could not be placed/);
});

// ---------------------------------------------------------------------------------------------
// Randomized: histories of a simulated linearizable register

interface SimOptions {
  clients: number;
  opsPerClient: number;
  keys: number;
  /** Chance that an operation times out (outcome unknown; it may still apply later, or never). */
  unknownRate: number;
}

/**
 * A linearizable KV store with random concurrency: each operation takes effect at one instant
 * between its call and its return (or, if it timed out, at some later instant or never).
 */
function simulate(seed: number, opts: SimOptions): KvOp[] {
  const rand = seededRandom(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const store = new Map<string, string | null>();
  const keys = Array.from({ length: opts.keys }, (_, i) => `k${i}`);
  for (const k of keys) store.set(k, null);
  const history: KvOp[] = [];
  type Pending = { op: KvOp; applied: boolean };
  const clients = Array.from({ length: opts.clients }, () => ({
    left: opts.opsPerClient,
    pending: null as Pending | null,
    lastRead: new Map<string, string | null>(),
  }));
  const orphans: Pending[] = []; // timed out, not yet applied
  let time = 0;
  let nextValue = 0;

  const apply = (p: Pending): void => {
    const i = p.op.input;
    const current = store.get(i.key) ?? null;
    if (i.op === "get") p.op.output = { value: current };
    else if (i.op === "put") {
      store.set(i.key, i.value);
      p.op.output = { ok: true };
    } else {
      const swapped = current === i.expect;
      if (swapped) store.set(i.key, i.value);
      p.op.output = { ok: swapped };
    }
    p.applied = true;
  };

  for (;;) {
    const actions: (() => void)[] = [];
    for (const [clientId, c] of clients.entries()) {
      const p = c.pending;
      if (p === null && c.left > 0) {
        actions.push(() => {
          c.left--;
          const key = pick(keys);
          const r = rand();
          const value = `v${nextValue++}`;
          const input: KvInput = r < 0.4
            ? { key, op: "get" }
            : r < 0.7
            ? { key, op: "put", value }
            : { key, op: "cas", expect: c.lastRead.get(key) ?? null, value };
          const op: KvOp = { clientId, input, call: time, output: { unknown: true }, return: NaN };
          history.push(op);
          c.pending = { op, applied: false };
        });
      } else if (p !== null && !p.applied) {
        actions.push(() => apply(p));
        if (rand() < opts.unknownRate) {
          actions.push(() => { // times out before taking effect
            p.op.return = Infinity;
            orphans.push(p);
            c.pending = null;
          });
        }
      } else if (p !== null) {
        actions.push(() => {
          if (rand() < opts.unknownRate) { // took effect, but the answer was lost
            p.op.output = { unknown: true };
            p.op.return = Infinity;
          } else {
            p.op.return = time;
            const { input, output } = p.op;
            if ("value" in output) c.lastRead.set(input.key, output.value);
          }
          c.pending = null;
        });
      }
    }
    for (const [i, o] of orphans.entries()) {
      actions.push(() => {
        if (rand() < 0.5) apply(o);
        o.op.output = { unknown: true };
        orphans.splice(i, 1);
      });
    }
    if (actions.length === 0) break;
    pick(actions)();
    time++;
  }
  for (const o of orphans) o.op.output = { unknown: true }; // never took effect
  return history;
}

const RANDOM_SEEDS = 60;

Deno.test("checkOperations() accepts random histories of a linearizable register", () => {
  for (let seed = 1; seed <= RANDOM_SEEDS; seed++) {
    const history = simulate(seed, { clients: 4, opsPerClient: 15, keys: 2, unknownRate: 0.1 });
    const result = checkOperations(kvModel, history);
    assert.deepEqual(result, { ok: true }, `seed ${seed}`);
  }
});

Deno.test("checkOperations() rejects random histories with a read of a never-written value", () => {
  for (let seed = 1; seed <= RANDOM_SEEDS; seed++) {
    const history = simulate(seed, { clients: 4, opsPerClient: 15, keys: 2, unknownRate: 0.1 });
    const reads = history.filter((op) => op.input.op === "get" && "value" in op.output);
    assert.ok(reads.length > 0, `seed ${seed}: the simulation produced a completed read`);
    const victim = reads[Math.floor(seededRandom(seed)() * reads.length)]!;
    const mutated = history.map((op) => op === victim ? { ...op, output: { value: "never" } } : op);
    const result = checkOperations(kvModel, mutated);
    assert.equal(result.ok, false, `seed ${seed}`);
    assert.ok(result.ok === false);
    assert.match(result.explanation, /could not be placed/, `seed ${seed}`);
  }
});

Deno.test("checkOperations() rejects random histories with a duplicated successful cas", () => {
  let mutatedCount = 0;
  for (let seed = 1; seed <= RANDOM_SEEDS; seed++) {
    const history = simulate(seed, { clients: 4, opsPerClient: 15, keys: 2, unknownRate: 0.1 });
    const swaps = history.filter((op) =>
      op.input.op === "cas" && "ok" in op.output && op.output.ok
    );
    const victim = swaps[0];
    if (victim === undefined || victim.input.op !== "cas") continue;
    // Values are unique, so the expected value holds only until the first swap: a second swap
    // from it, whatever its timing, is impossible.
    const twin: KvOp = {
      ...victim,
      clientId: 99,
      input: { ...victim.input, value: "twin" },
    };
    const result = checkOperations(kvModel, [...history, twin]);
    assert.equal(result.ok, false, `seed ${seed}`);
    mutatedCount++;
  }
  assert.ok(mutatedCount > RANDOM_SEEDS / 2, `only ${mutatedCount} histories had a swap`);
});

Deno.test("checkOperations() checks 5 clients × 200 ops on 3 keys within its time budget", () => {
  const history = simulate(42, { clients: 5, opsPerClient: 200, keys: 3, unknownRate: 0.05 });
  assert.equal(history.length, 1000);
  const result = checkOperations(kvModel, history, { timeoutMs: 10_000 });
  assert.deepEqual(result, { ok: true });
});

Deno.test("checkOperations() returns unknown when its time budget is spent", () => {
  const history = simulate(7, { clients: 5, opsPerClient: 20, keys: 1, unknownRate: 0 });
  assert.deepEqual(checkOperations(kvModel, history, { timeoutMs: 0 }), { ok: "unknown" });
  assert.deepEqual(checkOperations(kvModel, history), { ok: true });
});
