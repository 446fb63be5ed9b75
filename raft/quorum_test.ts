import { deepStrictEqual as eq } from "node:assert/strict";
import fc from "fast-check";
import { committedIndex, majority, voteResult } from "./quorum.ts";

Deno.test("committedIndex() is the largest index acknowledged by a majority", () => {
  fc.assert(
    fc.property(fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 9 }), (acks) => {
      const ids = acks.map((_, i) => i + 1);
      const ci = committedIndex(ids, (id) => acks[id - 1]);
      const atLeast = (x: number) => acks.filter((a) => a >= x).length;
      // A majority acknowledged ci...
      eq(atLeast(ci) >= majority(ids.length), true);
      // ...and no larger index has a majority.
      eq(atLeast(ci + 1) >= majority(ids.length), false);
    }),
  );
  // Reference: §5.3
});

Deno.test("committedIndex() counts a voter without progress as 0 and ignores non-voters", () => {
  eq(committedIndex([1, 2, 3], (id) => (id === 1 ? 5 : undefined)), 0);
  eq(committedIndex([1, 2, 3], (id) => ({ 1: 5, 2: 4, 9: 100 } as Record<number, number>)[id]), 4);
  eq(committedIndex([], () => 7), 0);
  // Reference: §5.3
});

Deno.test("voteResult() is won iff a majority granted, lost iff a majority is impossible", () => {
  const vote = fc.constantFrom<boolean | undefined>(true, false, undefined);
  fc.assert(
    fc.property(fc.array(vote, { minLength: 1, maxLength: 9 }), (votes) => {
      const ids = votes.map((_, i) => i + 1);
      const res = voteResult(ids, (id) => votes[id - 1]);
      const yes = votes.filter((v) => v === true).length;
      const missing = votes.filter((v) => v === undefined).length;
      const q = majority(ids.length);
      const want = yes >= q ? "won" : yes + missing >= q ? "pending" : "lost";
      eq(res, want);
    }),
  );
  // Reference: §5.2
});

Deno.test("voteResult() is monotonic: granting more votes never turns won into lost", () => {
  const vote = fc.constantFrom<boolean | undefined>(true, false, undefined);
  fc.assert(
    fc.property(fc.array(vote, { minLength: 1, maxLength: 9 }), fc.nat(), (votes, k) => {
      const ids = votes.map((_, i) => i + 1);
      const before = voteResult(ids, (id) => votes[id - 1]);
      const more = [...votes];
      const i = k % more.length;
      if (more[i] === undefined) more[i] = true;
      const after = voteResult(ids, (id) => more[id - 1]);
      if (before === "won") eq(after, "won");
      if (after === "lost") eq(before, "lost");
    }),
  );
  // Reference: §5.2
});

Deno.test("any two majorities of the same voter set intersect", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 9 }), fc.nat(), fc.nat(), (n, a, b) => {
      const q = majority(n);
      const ids = Array.from({ length: n }, (_, i) => i);
      const pick = (seed: number) => new Set(ids.filter((i) => ((seed >> i) & 1) === 1));
      const A = pick(a), B = pick(b);
      if (A.size >= q && B.size >= q) eq([...A].some((x) => B.has(x)), true);
    }),
  );
  // Reference: §5.2, thesis §4.1
});
