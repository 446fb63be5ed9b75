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

Deno.test("parseDuration() says what is wrong with text that is not a duration", async (t) => {
  const cases: [string, RegExp][] = [
    ["", /^empty$/],
    ["10", /^no unit$/],
    ["1m30", /^no unit$/],
    ["1d", /^unknown unit "d"$/],
    ["10sx", /^unknown unit "sx"$/],
    ["5 s", /^not a duration$/],
    ["s", /^not a duration$/],
    ["-1s", /^not a duration$/],
    ["abc", /^not a duration$/],
  ];
  for (const [text, why] of cases) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(() => parseDuration(text), (e: Error) => why.test(e.message));
    });
  }
});
