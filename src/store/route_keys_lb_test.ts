import assert from "node:assert/strict";
import { CommandError } from "./rule_basics.ts";
import { routeKey } from "./route_keys.ts";
import { routeValue } from "./route_key.ts";
import { rules } from "./instance_rules.ts";
import { parseHashSource } from "./route_keys_lb.ts";

/** The canonical text of `value` for `key` through its registry row. */
function canonical(key: string, value: string): string {
  const row = routeKey(key);
  assert.ok(row !== undefined, `${key} is not in the registry`);
  return routeValue(row, key, value);
}

const GOOD: [string, string, string][] = [
  ["berth.lb.hash", "ip", "ip"],
  ["berth.lb.hash", " IP ", "ip"],
  ["berth.lb.hash", "header:X-User", "header:x-user"],
  ["berth.lb.hash", "Header: X-User ", "header:x-user"],
  ["berth.lb.hash", "cookie:Session_ID", "cookie:Session_ID"],
  ["berth.lb.cookie", "srv", "srv"],
  ["berth.lb.cookie", "berth_web-1", "berth_web-1"],
  ["berth.lb.cookie.ttl", "1h", "1h"],
  ["berth.lb.cookie.ttl", "90m", "90m"],
  ["berth.lb.cookie.ttl", "1.5s", "1500ms"],
  ["berth.http.timeout", "5s", "5s"],
  ["berth.http.timeout", "60m", "1h"],
  ["berth.http.retries", "0", "0"],
  ["berth.http.retries", "010", "10"],
  ["berth.http.max-conns", "1", "1"],
  ["berth.http.max-conns.queue", "0", "0"],
  ["berth.http.max-conns.queue", "100000", "100000"],
  ["berth.http.slow-start", "30s", "30s"],
];

const BAD: [string, string, string][] = [
  ["berth.lb.hash", "client", "ip, header:NAME or cookie:NAME"],
  ["berth.lb.hash", "header:", "ip, header:NAME or cookie:NAME"],
  ["berth.lb.hash", "header:X User", "ip, header:NAME or cookie:NAME"],
  ["berth.lb.hash", "query:a", "ip, header:NAME or cookie:NAME"],
  ["berth.lb.hash", `cookie:${"a".repeat(129)}`, "ip, header:NAME or cookie:NAME"],
  ["berth.lb.cookie", "a b", "a cookie name (letters, digits, !#$%&'*+-.^_`|~)"],
  ["berth.lb.cookie", "a;b", "a cookie name (letters, digits, !#$%&'*+-.^_`|~)"],
  ["berth.lb.cookie", "a=b", "a cookie name (letters, digits, !#$%&'*+-.^_`|~)"],
  ["berth.lb.cookie.ttl", "forever", "a duration from 1s to 8760h"],
  ["berth.lb.cookie.ttl", "500ms", "a duration from 1s to 8760h"],
  ["berth.lb.cookie.ttl", "60", "a duration from 1s to 8760h"],
  ["berth.http.timeout", "0s", "a duration from 1s to 1h"],
  ["berth.http.timeout", "2h", "a duration from 1s to 1h"],
  ["berth.http.timeout", "-5s", "a duration from 1s to 1h"],
  ["berth.http.retries", "11", "an integer in [0, 10]"],
  ["berth.http.retries", "-1", "an integer in [0, 10]"],
  ["berth.http.retries", "two", "an integer in [0, 10]"],
  ["berth.http.retries", "1.5", "an integer in [0, 10]"],
  ["berth.http.max-conns", "0", "an integer in [1, 100000]"],
  ["berth.http.max-conns", "1e3", "an integer in [1, 100000]"],
  ["berth.http.max-conns.queue", "100001", "an integer in [0, 100000]"],
  ["berth.http.slow-start", "soon", "a duration from 1s to 1h"],
  ["berth.http.slow-start", "3h", "a duration from 1s to 1h"],
];

Deno.test("LB_KEYS rows store each good value as its canonical text", () => {
  for (const [key, value, want] of GOOD) {
    assert.equal(canonical(key, value), want, `${key}=${value}`);
  }
});

Deno.test("LB_KEYS rows refuse bad values with what they expect", () => {
  for (const [key, value, want] of BAD) {
    assert.throws(() => canonical(key, value), (e) => {
      assert.ok(e instanceof CommandError, `${key}=${value}`);
      assert.equal(e.want, want, `${key}=${value}`);
      return true;
    });
  }
});

Deno.test("parseHashSource() reads ip, header:NAME (lower-cased) and cookie:NAME", () => {
  assert.deepEqual(parseHashSource("ip"), { from: "ip" });
  assert.deepEqual(parseHashSource("header:X-User"), { from: "header", name: "x-user" });
  assert.deepEqual(parseHashSource("cookie:sid"), { from: "cookie", name: "sid" });
});

Deno.test("rules.meta() a bad balancing value in an API registration: the 400's line names Meta.KEY", () => {
  assert.throws(
    () => rules.meta({ "berth.http.retries": "11" }, "Meta"),
    /^CommandError: Meta\.berth\.http\.retries: expected an integer in \[0, 10\], got "11"$/,
  );
  assert.throws(
    () => rules.meta({ "berth.lb.hash": "query:a" }, "Meta"),
    /Meta\.berth\.lb\.hash: expected ip, header:NAME or cookie:NAME, got "query:a"/,
  );
  assert.deepEqual(rules.meta({ "berth.lb": "sticky-cookie", "berth.lb.cookie.ttl": "60m" }, "M"), {
    "berth.lb": "sticky_cookie",
    "berth.lb.cookie.ttl": "1h",
  });
});
