import assert from "node:assert/strict";
import {
  canonicalCompress,
  canonicalRateLimit,
  COMPRESS_META_KEY,
  parseCompress,
  parseRateLimit,
  RATELIMIT_META_KEY,
} from "./route_keys_limits.ts";
import { canonicalRouteMeta, routeKey } from "./route_keys.ts";
import { routeValue } from "./route_key.ts";
import { CommandError } from "./rule_basics.ts";

Deno.test("parseRateLimit() reads RATE/s and RATE/m with an optional burst", async (t) => {
  const cases: [string, number, number, string][] = [
    ["100/s,burst=200", 100, 200, "100/s,burst=200"],
    ["100/s", 100, 100, "100/s,burst=100"],
    ["30/m", 0.5, 1, "30/m,burst=1"],
    ["90/m", 1.5, 2, "90/m,burst=2"],
    ["1/m,burst=5", 1 / 60, 5, "1/m,burst=5"],
    [" 5 / S , Burst = 7 ", 5, 7, "5/s,burst=7"],
    ["007/s", 7, 7, "7/s,burst=7"],
    ["1000000/s,burst=1000000", 1_000_000, 1_000_000, "1000000/s,burst=1000000"],
  ];
  for (const [text, perSecond, burst, canonical] of cases) {
    await t.step(JSON.stringify(text), () => {
      assert.deepEqual(parseRateLimit(text), { perSecond, burst });
      assert.equal(canonicalRateLimit(text), canonical);
      // The canonical text reads back the same.
      assert.deepEqual(parseRateLimit(canonical), { perSecond, burst });
    });
  }
});

Deno.test("parseRateLimit() refuses anything else with what it expects", async (t) => {
  const cases: [string, RegExp][] = [
    ["", /RATE\/s or RATE\/m/],
    ["100", /RATE\/s or RATE\/m/],
    ["100/h", /RATE\/s or RATE\/m/],
    ["-1/s", /RATE\/s or RATE\/m/],
    ["1.5/s", /RATE\/s or RATE\/m/],
    ["100/s,burst=", /RATE\/s or RATE\/m/],
    ["100/s,burst=2,burst=3", /RATE\/s or RATE\/m/],
    ["100/s;burst=2", /RATE\/s or RATE\/m/],
    ["0/s", /a rate in \[1, 1000000\]/],
    ["1000001/s", /a rate in \[1, 1000000\]/],
    ["1/s,burst=0", /a burst in \[1, 1000000\]/],
    ["1/s,burst=1000001", /a burst in \[1, 1000000\]/],
  ];
  for (const [text, want] of cases) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(() => parseRateLimit(text), (e) => {
        assert.ok(e instanceof CommandError);
        assert.match(e.want, want);
        assert.equal(e.message, text);
        return true;
      });
    });
  }
});

Deno.test("parseCompress() reads true, false and lists of gzip and br", async (t) => {
  const cases: [string, string[], string][] = [
    ["true", ["br", "gzip"], "br,gzip"],
    ["TRUE", ["br", "gzip"], "br,gzip"],
    ["false", [], "false"],
    ["gzip", ["gzip"], "gzip"],
    ["br", ["br"], "br"],
    ["gzip,br", ["br", "gzip"], "br,gzip"],
    [" Br , GZIP ", ["br", "gzip"], "br,gzip"],
  ];
  for (const [text, list, canonical] of cases) {
    await t.step(JSON.stringify(text), () => {
      assert.deepEqual(parseCompress(text), list);
      assert.equal(canonicalCompress(text), canonical);
      assert.deepEqual(parseCompress(canonical), list);
    });
  }
  for (const bad of ["yes", "1", "deflate", "gzip,gzip", "gzip,", "zstd", "gzip br"]) {
    await t.step(`bad ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseCompress(bad), (e) => {
        assert.ok(e instanceof CommandError);
        assert.equal(e.want, "true, false, or a list of gzip and br (e.g. gzip,br)");
        return true;
      });
    });
  }
});

Deno.test("LIMITS_KEYS rows are in the registry and store canonical text", () => {
  const rl = routeKey(RATELIMIT_META_KEY)!;
  const cz = routeKey(COMPRESS_META_KEY)!;
  assert.equal(routeValue(rl, RATELIMIT_META_KEY, " 10/m "), "10/m,burst=1");
  assert.equal(routeValue(cz, COMPRESS_META_KEY, "True"), "br,gzip");
  const meta = { [RATELIMIT_META_KEY]: "5/s", [COMPRESS_META_KEY]: "gzip", other: "x" };
  canonicalRouteMeta(meta, "Meta");
  assert.deepEqual(meta, {
    [RATELIMIT_META_KEY]: "5/s,burst=5",
    [COMPRESS_META_KEY]: "gzip",
    other: "x",
  });
});

Deno.test("canonicalRouteMeta() names Meta.KEY, the value and what is expected for a bad limit", () => {
  assert.throws(
    () => canonicalRouteMeta({ [RATELIMIT_META_KEY]: "fast" }, "Meta"),
    /^CommandError: Meta\.berth\.http\.ratelimit: expected RATE\/s or RATE\/m, optionally ,burst=N \(e\.g\. 100\/s,burst=200\), got "fast"$/,
  );
  assert.throws(
    () => canonicalRouteMeta({ [COMPRESS_META_KEY]: "zstd" }, "Meta"),
    /^CommandError: Meta\.berth\.http\.compress: expected true, false, or a list of gzip and br \(e\.g\. gzip,br\), got "zstd"$/,
  );
});
