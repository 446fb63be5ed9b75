import assert from "node:assert/strict";
import { concatBytes } from "./bytes.ts";

Deno.test("concatBytes() joins the parts end to end in a new array", () => {
  const a = Uint8Array.of(1, 2);
  const b = Uint8Array.of(3);
  const view = Uint8Array.of(9, 4, 5, 9).subarray(1, 3);
  assert.deepEqual(concatBytes([a, b, view]), Uint8Array.of(1, 2, 3, 4, 5));
  assert.deepEqual(concatBytes([a, b], 3), Uint8Array.of(1, 2, 3));
  assert.deepEqual(concatBytes([]), new Uint8Array(0));
  const one = concatBytes([a]);
  one[0] = 7;
  assert.equal(a[0], 1, "a copy, not the part itself");
});
