import assert from "node:assert/strict";
import { CommandError } from "./rule_basics.ts";
import { routeKey } from "./route_keys.ts";
import { routeValue } from "./route_key.ts";
import { rules } from "./instance_rules.ts";
import { parseProxyProtocol, parseUdpIdleTimeout, parseUdpPort } from "./route_keys_l4.ts";

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
  ["berth.udp.port", "5353", "5353"],
  ["berth.udp.port", "1", "1"],
  ["berth.udp.port", "065535", "65535"],
  ["berth.udp.idle-timeout", "30s", "30s"],
  ["berth.udp.idle-timeout", "90s", "90s"],
  ["berth.udp.idle-timeout", "60m", "1h"],
];

const BAD: [string, string, string][] = [
  ["berth.proxy-protocol", "v3", "v1 or v2"],
  ["berth.proxy-protocol", "true", "v1 or v2"],
  ["berth.proxy-protocol", "v2 v1", "v1 or v2"],
  ["berth.udp.port", "0", "an integer in [1, 65535]"],
  ["berth.udp.port", "65536", "an integer in [1, 65535]"],
  ["berth.udp.port", "53/udp", "an integer in [1, 65535]"],
  ["berth.udp.port", "-53", "an integer in [1, 65535]"],
  ["berth.udp.idle-timeout", "30", "a duration from 1s to 1h"],
  ["berth.udp.idle-timeout", "500ms", "a duration from 1s to 1h"],
  ["berth.udp.idle-timeout", "2h", "a duration from 1s to 1h"],
  ["berth.udp.idle-timeout", "never", "a duration from 1s to 1h"],
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

Deno.test("parseProxyProtocol(), parseUdpPort(), parseUdpIdleTimeout() read canonical values", () => {
  assert.equal(parseProxyProtocol("v1"), 1);
  assert.equal(parseProxyProtocol("v2"), 2);
  assert.equal(parseUdpPort("53"), 53);
  assert.equal(parseUdpIdleTimeout("1m"), 60_000);
});

Deno.test("rules.meta() a bad layer-4 value in an API registration: the 400's line names Meta.KEY", () => {
  assert.throws(
    () => rules.meta({ "berth.proxy-protocol": "v3" }, "Meta"),
    /^CommandError: Meta\.berth\.proxy-protocol: expected v1 or v2, got "v3"$/,
  );
  assert.throws(
    () => rules.meta({ "berth.udp.port": "70000" }, "Meta"),
    /Meta\.berth\.udp\.port: expected an integer in \[1, 65535\], got "70000"/,
  );
  assert.deepEqual(rules.meta({ "berth.proxy-protocol": "V2", "berth.udp.port": "053" }, "M"), {
    "berth.proxy-protocol": "v2",
    "berth.udp.port": "53",
  });
});
