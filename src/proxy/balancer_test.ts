import assert from "node:assert/strict";
import { Balancer, type Target } from "./balancer.ts";
import { hash64, stickyToken, unit } from "./rendezvous.ts";

function target(id: string, weight = 1): Target {
  return { id, address: "10.0.0.1", port: 8000, weight, key: `${id}|10.0.0.1|8000` };
}

function targets(n: number, weight = (_i: number) => 1): Target[] {
  return Array.from({ length: n }, (_, i) => target(`i${String(i).padStart(3, "0")}`, weight(i)));
}

function keys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
}

Deno.test("Balancer.peek() names what pick() returns next and changes no rotation", () => {
  const ts = [target("a", 5), target("b"), target("c")];
  const peeked = new Balancer("round_robin", ts);
  const plain = new Balancer("round_robin", ts);
  for (let i = 0; i < 14; i++) {
    const p = peeked.peek();
    assert.equal(peeked.peek(), p, `step ${i}: a second peek differs`);
    const got = peeked.pick();
    assert.equal(got, p, `step ${i}`);
    assert.equal(got, plain.pick(), `step ${i}: peeks changed the sequence`);
  }
});

Deno.test("Balancer.peek() with least_conn names the least loaded; ties go round robin", () => {
  const load = new Map([["a|10.0.0.1|8000", 2], ["b|10.0.0.1|8000", 0], ["c|10.0.0.1|8000", 0]]);
  const ts = [target("a"), target("b"), target("c")];
  const b = new Balancer("least_conn", ts, { load: (k) => load.get(k) ?? 0 });
  // Ties between b and c alternate (smooth weighted round robin among the tied).
  const seq: string[] = [];
  for (let i = 0; i < 6; i++) {
    const p = b.peek();
    assert.equal(b.peek(), p);
    assert.equal(b.pick(), p);
    seq.push(p!.id);
  }
  assert.deepEqual(seq, ["b", "c", "b", "c", "b", "c"]);
});

Deno.test("Balancer.peek() with p2c names the least loaded per weight and draws no random", () => {
  const load = new Map([["a|10.0.0.1|8000", 4], ["b|10.0.0.1|8000", 3], ["c|10.0.0.1|8000", 5]]);
  const ts = [target("a", 4), target("b"), target("c", 2)];
  const b = new Balancer("p2c", ts, {
    load: (k) => load.get(k) ?? 0,
    random: () => assert.fail("peek drew a random number"),
  });
  assert.equal(b.peek()!.id, "a"); // 4/4 < 5/2 < 3/1
  assert.equal(b.peek((t) => t.id === "a")!.id, "c");
});

Deno.test("Balancer.pick() with hash sends a key to the same target every time and on a new balancer", () => {
  const ts = targets(7);
  const one = new Balancer("hash", ts);
  const other = new Balancer("hash", targets(7)); // another member: equal targets, new objects
  for (const k of keys(500)) {
    const t = one.pick(undefined, k)!;
    assert.equal(one.peek(undefined, k), t);
    assert.equal(one.pick(undefined, k), t);
    assert.equal(other.pick(undefined, k)!.id, t.id);
  }
});

Deno.test("Balancer.pick() with hash: removing a target moves exactly its keys (10,000 keys)", () => {
  const ts = targets(8);
  const before = new Balancer("hash", ts);
  const removed = ts[3]!;
  const after = new Balancer("hash", ts.filter((t) => t !== removed));
  let moved = 0;
  let had = 0;
  for (const k of keys(10_000)) {
    const was = before.pick(undefined, k)!;
    const now = after.pick(undefined, k)!;
    if (was === removed) {
      had++;
      assert.notEqual(now, removed);
    } else assert.equal(now, was, `key ${k} moved from ${was.id} to ${now.id}`);
    if (now !== was) moved++;
  }
  assert.equal(moved, had);
  assert.ok(had > 0);
  // Skipping a target (tried, ejected) is the same as removing it.
  for (const k of keys(2_000)) {
    const was = before.pick(undefined, k)!;
    const skipped = before.pick((t) => t === removed, k)!;
    assert.equal(skipped, was === removed ? after.pick(undefined, k) : was);
  }
});

Deno.test("Balancer.pick() with hash: adding a target takes keys only to it", () => {
  const ts = targets(6);
  const small = new Balancer("hash", ts.slice(0, 5));
  const big = new Balancer("hash", ts);
  for (const k of keys(5_000)) {
    const now = big.pick(undefined, k)!;
    if (now !== ts[5]) assert.equal(now, small.pick(undefined, k));
  }
});

Deno.test("Balancer.pick() with hash shares 40,000 keys by weight (within 5%)", () => {
  for (const weights of [[1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [1, 2, 3, 4], [10, 1]]) {
    const ts = targets(weights.length, (i) => weights[i]!);
    const b = new Balancer("hash", ts);
    const count = new Map<Target, number>();
    const n = 40_000;
    for (const k of keys(n)) {
      const t = b.pick(undefined, k)!;
      count.set(t, (count.get(t) ?? 0) + 1);
    }
    const total = weights.reduce((a, w) => a + w, 0);
    for (const t of ts) {
      const want = n * t.weight / total;
      const got = count.get(t) ?? 0;
      assert.ok(
        Math.abs(got - want) <= want * 0.05 + 50,
        `weights ${weights}: ${t.id} got ${got} keys, want ~${want}`,
      );
    }
  }
});

Deno.test("Balancer.pick() with hash goes round robin for a request without a key", () => {
  const b = new Balancer("hash", targets(3));
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => b.pick()!.id), [
    "i000",
    "i001",
    "i002",
    "i000",
    "i001",
    "i002",
  ]);
});

Deno.test("Balancer.pick() with sticky_cookie hashes its key as hash does", () => {
  const ts = targets(5);
  const h = new Balancer("hash", ts);
  const s = new Balancer("sticky_cookie", ts);
  for (const k of keys(300)) assert.equal(s.pick(undefined, k), h.pick(undefined, k));
});

Deno.test("Balancer.byToken() finds the target a sticky cookie names, and null for others", () => {
  const ts = targets(4);
  const b = new Balancer("sticky_cookie", ts);
  for (const t of ts) {
    const token = Balancer.token(t);
    assert.match(token, /^[0-9a-f]{16}$/);
    assert.ok(!token.includes(t.address));
    assert.equal(b.byToken(token), t);
  }
  assert.equal(b.byToken("0000000000000000"), null);
  assert.equal(b.byToken(""), null);
  assert.equal(new Balancer("sticky_cookie", ts.slice(1)).byToken(Balancer.token(ts[0]!)), null);
});

Deno.test("Balancer uses the weight option (slow start) in every policy but hash", () => {
  const ts = [target("a", 10), target("b", 10)];
  const weight = (t: Target) => t.id === "a" ? 1 : t.weight; // a ramps up: 1 of 10
  const rr = new Balancer("round_robin", ts, { weight });
  const picks = Array.from({ length: 11 }, () => rr.pick()!.id);
  assert.equal(picks.filter((id) => id === "a").length, 1);
  const lc = new Balancer("least_conn", ts, { weight, load: () => 1 });
  assert.equal(lc.pick()!.id, "b"); // 1/10 < 1/1
  // A sticky cookie's first pick (no key) is round robin: weighed too.
  const sticky = new Balancer("sticky_cookie", ts, { weight });
  assert.equal(
    Array.from({ length: 11 }, () => sticky.pick()!.id).filter((id) => id === "a").length,
    1,
  );
  // hash ignores a ramp (local to a member): every key goes where it goes without one.
  const hashed = new Balancer("hash", ts, { weight });
  const plain = new Balancer("hash", ts);
  for (const k of keys(2_000)) assert.equal(hashed.pick(undefined, k), plain.pick(undefined, k), k);
});

Deno.test("Balancer.pick() with least_conn and p2c: idle targets share by weight (slow start at light load)", () => {
  const ts = [target("a", 10), target("b", 10)];
  const weight = (t: Target) => t.id === "a" ? 1 : t.weight; // a ramps up: 1 of 10
  // Nothing in flight (sequential requests): every score is 0, a tie.
  const lc = new Balancer("least_conn", ts, { weight, load: () => 0 });
  const lcPicks = Array.from({ length: 1_100 }, () => lc.pick()!.id);
  assert.equal(lcPicks.filter((id) => id === "a").length, 100);
  let seed = 1;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  const p2c = new Balancer("p2c", ts, { weight, load: () => 0, random });
  const toA = Array.from({ length: 1_100 }, () => p2c.pick()!.id).filter((id) => id === "a").length;
  assert.ok(toA > 50 && toA < 160, `p2c sent ${toA} of 1100 to a, want ~100`);
  // Full weights: an even share.
  const even = new Balancer("least_conn", ts, { load: () => 0 });
  assert.equal(
    Array.from({ length: 100 }, () => even.pick()!.id).filter((id) => id === "a").length,
    50,
  );
});

Deno.test("hash64() and stickyToken() give the values every member and version must agree on", () => {
  // Pinned: members of different versions pick alike only while these stay the same.
  assert.deepEqual(hash64("10.0.0.1"), { hi: 70453742, lo: 2041068344 });
  assert.equal(stickyToken("web-1"), "1924c74699939679");
  assert.notEqual(stickyToken("web-1"), stickyToken("web-2"));
  for (const k of keys(1_000)) {
    const u = unit(hash64(k), hash64("x"));
    assert.ok(u > 0 && u < 1, `unit ${u}`);
  }
});

Deno.test("Balancer.pick() under hash: a request without a key follows the ramped weight (slow start applies)", () => {
  const ts = [target("a", 10), target("b", 10)];
  // b ramps at a tenth of its weight (slow_start.ts's `weight`).
  const b = new Balancer("hash", ts, { weight: (t) => t.id === "b" ? 1 : t.weight });
  const n: Record<string, number> = { a: 0, b: 0 };
  for (let i = 0; i < 110; i++) n[b.pick(undefined, undefined)!.id]!++;
  assert.deepEqual(n, { a: 100, b: 10 });
});
