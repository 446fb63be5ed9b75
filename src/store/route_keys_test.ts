import assert from "node:assert/strict";
import { CommandError } from "./rule_basics.ts";
import { isFamily, routeKeyCell, RouteKeyIndex, routeValue } from "./route_key.ts";
import { canonicalRouteMeta, ROUTE_KEYS } from "./route_keys.ts";
import { rules } from "./instance_rules.ts";
import { TEST_ROUTE_INDEX, TEST_ROUTE_KEYS } from "../../test/route_key_fixtures.ts";

Deno.test("RouteKeyIndex.find() takes the exact key, else the longest family prefix", () => {
  const key = (k: string) => TEST_ROUTE_INDEX.find(k)?.key;
  assert.equal(key("berth.test.n"), "berth.test.n");
  assert.equal(key("berth.test.h.X-Env"), "berth.test.h.");
  assert.equal(key("berth.test.h.x.Y"), "berth.test.h.x.");
  assert.equal(key("berth.test.h.xY"), "berth.test.h.");
});

Deno.test("RouteKeyIndex.find() knows no other key: unknown, a family prefix alone, a longer exact key", () => {
  for (const k of ["berth.test.m", "berth.test.h.", "berth.test.h", "berth.test.n.x", "x"]) {
    assert.equal(TEST_ROUTE_INDEX.find(k), undefined, k);
  }
});

Deno.test("RouteKeyIndex() refuses a key listed twice", () => {
  assert.throws(
    () => new RouteKeyIndex([...TEST_ROUTE_KEYS, TEST_ROUTE_KEYS[1]!]),
    /berth\.test\.h\. is listed twice/,
  );
});

Deno.test("routeValue() trims, parses, and refuses empty and over-long values with a want", () => {
  const n = TEST_ROUTE_KEYS[0]!;
  assert.equal(routeValue(n, "berth.test.n", " 007 "), "7");
  for (const [value, want] of [[" ", "a non-empty value"], ["x", "a whole number"]]) {
    assert.throws(() => routeValue(n, "berth.test.n", value!), (e) => {
      assert.ok(e instanceof CommandError);
      assert.equal(e.want, want);
      return true;
    });
  }
  const h = TEST_ROUTE_KEYS[1]!;
  assert.throws(() => routeValue(h, "berth.test.h.a", "a".repeat(513)), (e) => {
    assert.ok(e instanceof CommandError);
    assert.equal(e.want, "a value of at most 512 characters");
    return true;
  });
});

Deno.test("canonicalRouteMeta() stores canonical values and leaves other keys alone", () => {
  const m = { "berth.test.n": "010", "berth.test.h.A": "XY", "berth.test.h.x.b": "z", o: "Q" };
  canonicalRouteMeta(m, "Meta", TEST_ROUTE_INDEX);
  assert.deepEqual(m, {
    "berth.test.n": "10",
    "berth.test.h.A": "xy",
    "berth.test.h.x.b": "Z",
    o: "Q",
  });
});

Deno.test("canonicalRouteMeta() a bad value: the error names Meta.KEY, the value and what is expected", () => {
  assert.throws(
    () => canonicalRouteMeta({ "berth.test.n": "ten" }, "Meta", TEST_ROUTE_INDEX),
    (e) => {
      assert.ok(e instanceof CommandError);
      assert.equal(e.message, 'Meta.berth.test.n: expected a whole number, got "ten"');
      return true;
    },
  );
  assert.throws(
    () => canonicalRouteMeta({ "berth.test.h.A": "" }, "Meta", TEST_ROUTE_INDEX),
    /^CommandError: Meta\.berth\.test\.h\.A: expected a non-empty value, got ""$/,
  );
});

Deno.test("canonicalRouteMeta() refuses two keys of a family that name one header in another case", () => {
  assert.throws(
    () =>
      canonicalRouteMeta(
        { "berth.test.h.X-A": "1", "berth.test.h.x-a": "2" },
        "Meta",
        TEST_ROUTE_INDEX,
      ),
    /^CommandError: Meta\.berth\.test\.h\.x-a: names the same header as Meta\.berth\.test\.h\.X-A \(header names ignore case\); give it once$/,
  );
  const distinct = { "berth.test.h.X-A": "1", "berth.test.h.X-B": "2" };
  canonicalRouteMeta(distinct, "Meta", TEST_ROUTE_INDEX);
  assert.deepEqual(Object.keys(distinct), ["berth.test.h.X-A", "berth.test.h.X-B"]);
});

Deno.test("ROUTE_KEYS rows: berth.* keys, families end in '.', README text set", () => {
  for (const k of ROUTE_KEYS) {
    assert.match(k.key, /^berth\.[a-z0-9.-]+$/, k.key);
    assert.ok(k.doc !== "" && k.onBad !== "" && k.example !== "", k.key);
    assert.ok(routeKeyCell(k).startsWith(k.key), k.key);
    assert.equal(isFamily(k), k.key.endsWith("."));
  }
});

Deno.test("rules.meta() runs every ROUTE_KEYS row: an empty value is refused naming the key", () => {
  for (const k of ROUTE_KEYS) {
    const key = isFamily(k) ? `${k.key}x` : k.key;
    assert.throws(
      () => rules.meta({ [key]: " " }, "Meta"),
      new RegExp(`^CommandError: Meta\\.${key.replaceAll(".", "\\.")}: expected`),
      key,
    );
  }
});

Deno.test("routeKeyCell() writes key=example, and key+example for a family", () => {
  assert.equal(routeKeyCell(TEST_ROUTE_KEYS[0]!), "berth.test.n=3");
  assert.equal(routeKeyCell(TEST_ROUTE_KEYS[1]!), "berth.test.h.NAME=V");
});
