import { deepStrictEqual as eq, throws } from "node:assert/strict";
import fc from "fast-check";
import { Inflights } from "./inflights.ts";
import { Progress } from "./progress.ts";

Deno.test("Inflights tracks count and bytes exactly like a reference model", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("add" as const), bytes: fc.nat({ max: 50 }) }),
    fc.record({ kind: fc.constant("free" as const), upTo: fc.nat({ max: 60 }) }),
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.nat({ max: 120 }),
      fc.array(op, { maxLength: 60 }),
      (size, maxBytes, ops) => {
        const inf = new Inflights(size, maxBytes);
        const model: { index: number; bytes: number }[] = [];
        let next = 1;
        for (const o of ops) {
          if (o.kind === "add") {
            if (inf.full()) {
              throws(() => inf.add(next, o.bytes));
              continue;
            }
            inf.add(next, o.bytes);
            model.push({ index: next, bytes: o.bytes });
            next++;
          } else {
            inf.freeLE(o.upTo);
            while (model.length > 0 && model[0]!.index <= o.upTo) model.shift();
          }
          const bytes = model.reduce((s, x) => s + x.bytes, 0);
          eq(inf.count(), model.length);
          eq(inf.bytes(), bytes);
          eq(inf.full(), model.length === size || (maxBytes > 0 && bytes >= maxBytes));
        }
      },
    ),
  );
  // Reference: thesis §10.2 (pipelining flow control)
});

Deno.test("Inflights.add() rejects a non-increasing index", () => {
  const inf = new Inflights(4);
  inf.add(5, 1);
  throws(() => inf.add(5, 1), /not above last/);
  // Reference: thesis §10.2
});

Deno.test("Progress keeps match < next under any sequence of updates", () => {
  const op = fc.oneof(
    fc.record({ k: fc.constant("update" as const), n: fc.nat({ max: 100 }) }),
    fc.record({
      k: fc.constant("decr" as const),
      rej: fc.nat({ max: 100 }),
      hint: fc.nat({ max: 100 }),
    }),
    fc.record({ k: fc.constant("probe" as const) }),
    fc.record({ k: fc.constant("replicate" as const) }),
    fc.record({ k: fc.constant("snapshot" as const), i: fc.nat({ max: 100 }) }),
    fc.record({ k: fc.constant("send" as const), n: fc.integer({ min: 1, max: 5 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const pr = new Progress({ match: 0, next: 1, maxInflight: 4 });
      let lastMatch = 0;
      for (const o of ops) {
        switch (o.k) {
          case "update":
            pr.maybeUpdate(o.n);
            break;
          case "decr":
            // As stepLeader does: a rejection in replicate state falls back to probing.
            if (pr.maybeDecrTo(o.rej, o.hint) && pr.state === "replicate") pr.becomeProbe();
            break;
          case "probe":
            pr.becomeProbe();
            break;
          case "replicate":
            pr.becomeReplicate();
            break;
          case "snapshot":
            pr.becomeSnapshot(o.i);
            break;
          case "send":
            if (pr.state === "replicate" && !pr.inflights.full()) {
              const last = pr.next - 1 + o.n;
              pr.optimisticUpdate(last);
              pr.inflights.add(last, o.n);
            }
            break;
        }
        eq(pr.match < pr.next, true, `match ${pr.match} next ${pr.next}`);
        eq(pr.match >= lastMatch, true, "match never decreases");
        lastMatch = pr.match;
      }
    }),
  );
  // Reference: §5.3 (nextIndex/matchIndex)
});

Deno.test("Progress.maybeDecrTo() ignores stale rejections", async (t) => {
  await t.step("replicate: a rejection at or below match is stale", () => {
    const pr = new Progress({ match: 5, next: 10, maxInflight: 4 });
    pr.becomeReplicate();
    eq(pr.maybeDecrTo(5, 0), false);
    eq(pr.maybeDecrTo(7, 0), true);
    eq(pr.next, 6);
  });
  await t.step("probe: only the answer to the last probe counts, and hints jump back", () => {
    const pr = new Progress({ match: 0, next: 10, maxInflight: 4 });
    eq(pr.maybeDecrTo(5, 0), false);
    eq(pr.maybeDecrTo(9, 3), true);
    eq(pr.next, 4);
  });
  // Reference: §5.3
});

Deno.test("Progress.isPaused() follows the flow-control state", () => {
  const pr = new Progress({ match: 0, next: 1, maxInflight: 1 });
  eq(pr.isPaused(), false);
  pr.probeSent = true;
  eq(pr.isPaused(), true);
  pr.becomeReplicate();
  eq(pr.isPaused(), false);
  pr.inflights.add(1, 0);
  eq(pr.isPaused(), true);
  pr.becomeSnapshot(10);
  eq(pr.isPaused(), true);
  pr.becomeProbe();
  eq(pr.next, 11, "resumes after the snapshot being sent");
  // Reference: §5.3, §7
});
