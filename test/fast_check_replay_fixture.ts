// A property that fails for most seeds, run by test/fast_check_setup_test.ts (not a test itself).
import fc from "fast-check";

Deno.test("a property that fails", () => {
  fc.assert(fc.property(fc.array(fc.integer()), (xs) => xs.length < 3), { numRuns: 1000 });
});

Deno.test("an async property that fails", async () => {
  await fc.assert(
    fc.asyncProperty(fc.string(), async (s) => {
      await Promise.resolve();
      return s.length < 4;
    }),
    { numRuns: 1000 },
  );
});
