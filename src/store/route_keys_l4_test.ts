import assert from "node:assert/strict";
import { CommandError } from "./rule_basics.ts";
import { routeKey } from "./route_keys.ts";
import { routeValue } from "./route_key.ts";
import { rules } from "./instance_rules.ts";
import { parseProxyProtocol } from "./route_keys_l4.ts";

/** The canonical text of `value` for `key` through its registry row. */
function canonical(key: string, value: string): string {
  const row = routeKey(key);
  assert.ok(row !== undefined, `${key} is not in the registry`);
  return routeValue(row, key, value);
}

const GOOD: [string, string, string][] = [
  ["berth.proxy-protocol", "v2", "v2"],
  ["berth.proxy-protocol", " V1 ", "v1"],
  ["berth.proxy-protocol", "2", "v2"],
];

const BAD: [string, string, string][] = [
  ["berth.proxy-protocol", "v3", "v1 or v2"],
  ["berth.proxy-protocol", "true", "v1 or v2"],
  ["berth.proxy-protocol", "v2 v1", "v1 or v2"],
];

Deno.test("L4_KEYS rows store each good value as its canonical text", () => {
  for (const [key, value, want] of GOOD) {
    assert.equal(canonical(key, value), want, `${key}=${value}`);
  }
});

Deno.test("L4_KEYS rows refuse bad values with what they expect", () => {
  for (const [key, value, want] of BAD) {
    assert.throws(() => canonical(key, value), (e) => {
      assert.ok(e instanceof CommandError, `${key}=${value}`);
      assert.equal(e.want, want, `${key}=${value}`);
      return true;
    });
  }
});

Deno.test("parseProxyProtocol() reads the canonical values", () => {
  assert.equal(parseProxyProtocol("v1"), 1);
  assert.equal(parseProxyProtocol("v2"), 2);
});

Deno.test("rules.meta() a bad layer-4 value in an API registration: the 400's line names Meta.KEY", () => {
  assert.throws(
    () => rules.meta({ "berth.proxy-protocol": "v3" }, "Meta"),
    /^CommandError: Meta\.berth\.proxy-protocol: expected v1 or v2, got "v3"$/,
  );
  assert.deepEqual(rules.meta({ "berth.proxy-protocol": "V2" }, "M"), {
    "berth.proxy-protocol": "v2",
  });
});
