import assert from "node:assert/strict";
import { checkMutualExclusion, type Section } from "./jepsen_lock.ts";

const s = (client: number, acquisition: number, enter: number, exit: number): Section => ({
  client,
  acquisition,
  enter,
  exit,
});

Deno.test("checkMutualExclusion() accepts back-to-back holders and counts acquisitions", () => {
  const r = checkMutualExclusion([
    s(2, 3, 40, 50),
    s(0, 1, 0, 10),
    s(0, 1, 11, 20),
    s(1, 2, 20, 30),
  ]);
  assert.deepEqual(r, { ok: true, acquisitions: 3, sections: 4 });
  assert.deepEqual(checkMutualExclusion([]), { ok: true, acquisitions: 0, sections: 0 });
});

Deno.test("checkMutualExclusion() finds two holders at once, whatever the order given", () => {
  const r = checkMutualExclusion([s(1, 2, 25, 30), s(0, 1, 0, 10), s(0, 1, 20, 26)]);
  assert.equal(r.ok, false);
  assert.ok(
    !r.ok &&
      /client 1 \(acquisition 2\) entered at 25\.0 ms while client 0 \(acquisition 1\) worked until 26\.0 ms/
        .test(r.explanation),
    JSON.stringify(r),
  );
});

Deno.test("checkMutualExclusion() finds an overlap hidden behind a long section of the same holder", () => {
  // B overlaps A's long first section although A's short second section came in between.
  const r = checkMutualExclusion([s(0, 1, 0, 100), s(0, 1, 10, 20), s(1, 2, 50, 60)]);
  assert.equal(r.ok, false);
  // Overlap with a section that is not the furthest-reaching one.
  const r2 = checkMutualExclusion([s(1, 2, 0, 100), s(0, 1, 5, 6), s(0, 1, 7, 200)]);
  assert.equal(r2.ok, false);
});

Deno.test("checkMutualExclusion() rejects a section that ends before it starts", () => {
  assert.equal(checkMutualExclusion([s(0, 1, 5, 4)]).ok, false);
});
