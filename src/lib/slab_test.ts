import assert from "node:assert/strict";
import { ByteSlab, SLAB_ALLOC_MAX, SLAB_BYTES } from "./slab.ts";

Deno.test("ByteSlab.copy() gives copies that do not overlap, across slabs", () => {
  const slab = new ByteSlab();
  const copies: { src: Uint8Array; out: Uint8Array }[] = [];
  for (let i = 0; i < (SLAB_BYTES / 100) * 3; i++) {
    const src = Uint8Array.from({ length: 1 + (i % 200) }, (_, k) => (i + k) & 0xff);
    copies.push({ src, out: slab.copy(src) });
  }
  for (const { src, out } of copies) assert.deepEqual(out, src);
});

Deno.test("ByteSlab.alloc() gives large requests an array of their own", () => {
  const slab = new ByteSlab();
  const big = slab.alloc(SLAB_ALLOC_MAX + 1);
  assert.equal(big.byteOffset, 0);
  assert.equal(big.buffer.byteLength, SLAB_ALLOC_MAX + 1);
  const small = slab.alloc(10);
  assert.equal(small.buffer.byteLength, SLAB_BYTES);
});
