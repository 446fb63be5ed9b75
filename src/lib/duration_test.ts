import assert from "node:assert/strict";
import { parseDuration, parseGoDuration } from "./duration.ts";

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

Deno.test("parseGoDuration() reads Go's duration syntax as Consul clients send it", () => {
  const cases: [string, number][] = [
    ["15s", 15_000],
    ["15.0s", 15_000],
    ["1m30s", 90_000],
    [".5h", 1_800_000],
    ["250ms", 250],
    ["1500us", 2],
    ["1h0m0s", 3_600_000],
    ["0", 0],
    ["0s", 0],
    ["+10s", 10_000],
  ];
  for (const [text, ms] of cases) assert.equal(parseGoDuration(text), ms, text);
});

Deno.test("parseGoDuration() refuses what Go refuses, and negative durations", () => {
  const cases: [string, string][] = [
    ["", "empty"],
    ["15", "no unit"],
    ["5d", 'unknown unit "d"'],
    ["-5s", "negative"],
    ["s", "not a duration"],
  ];
  for (const [text, why] of cases) {
    assert.throws(() => parseGoDuration(text), { message: why }, text);
  }
});
