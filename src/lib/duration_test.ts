import assert from "node:assert/strict";
import { parseDuration } from "./duration.ts";

Deno.test("parseDuration() adds up units into milliseconds", async (t) => {
  const cases: [string, number][] = [
    ["250ms", 250],
    ["5s", 5000],
    ["1.5s", 1500],
    ["1m30s", 90_000],
    ["2h", 7_200_000],
    ["0s", 0],
  ];
  for (const [text, ms] of cases) {
    await t.step(text, () => assert.equal(parseDuration(text), ms));
  }
});

Deno.test("parseDuration() rejects text that is not a duration", async (t) => {
  for (const text of ["", "5", "5 s", "s", "-1s", "1d", "10sx", "abc"]) {
    await t.step(JSON.stringify(text), () => assert.throws(() => parseDuration(text)));
  }
});
