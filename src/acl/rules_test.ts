import assert from "node:assert/strict";
import fc from "fast-check";
import { parseRules, RULES_BYTES_MAX, RulesError } from "./rules.ts";

/** What a one-line error must not hold: control characters, U+2028 and U+2029. */
// deno-lint-ignore no-control-regex
const LINE_BREAKING = /[\x00-\x1f\x7f\u2028\u2029]/;

Deno.test("parseRules() reads Consul's HCL subset with comments", () => {
  const r = parseRules(`
# KV
key_prefix "app/" {
  policy = "read"
}
key "app/x" { policy = "write" } // exact
/* services
   and nodes */
service_prefix "" { policy = "read" }
service "web" = { policy = "deny", }
node_prefix "n" { policy = "write" }; node "n1" { policy = "deny" }
session_prefix "" { policy = "write" }
session "s" { policy = "read" }
agent_prefix "" { policy = "read" }
agent "a\\"b" { policy = "write" }
operator = "read"
`);
  assert.deepEqual(r, {
    rules: [
      { resource: "key", segment: "app/", prefix: true, policy: "read" },
      { resource: "key", segment: "app/x", prefix: false, policy: "write" },
      { resource: "service", segment: "", prefix: true, policy: "read" },
      { resource: "service", segment: "web", prefix: false, policy: "deny" },
      { resource: "node", segment: "n", prefix: true, policy: "write" },
      { resource: "node", segment: "n1", prefix: false, policy: "deny" },
      { resource: "session", segment: "", prefix: true, policy: "write" },
      { resource: "session", segment: "s", prefix: false, policy: "read" },
      { resource: "agent", segment: "", prefix: true, policy: "read" },
      { resource: "agent", segment: 'a"b', prefix: false, policy: "write" },
    ],
    operator: "read",
  });
  assert.deepEqual(parseRules(""), { rules: [] });
  assert.deepEqual(parseRules("# nothing\n"), { rules: [] });
});

Deno.test("parseRules() reads the JSON form, objects or lists of objects", () => {
  const r = parseRules(JSON.stringify({
    key_prefix: { "a/": { policy: "read" } },
    service: [{ web: { policy: "write" } }, { db: { policy: "deny" } }],
    operator: "write",
  }));
  assert.deepEqual(r, {
    rules: [
      { resource: "key", segment: "a/", prefix: true, policy: "read" },
      { resource: "service", segment: "web", prefix: false, policy: "write" },
      { resource: "service", segment: "db", prefix: false, policy: "deny" },
    ],
    operator: "write",
  });
});

Deno.test("parseRules() refuses bad input with one line naming the position", () => {
  const bad: [string, RegExp][] = [
    [
      `key_prefix "a" { policy = "list" }`,
      /line 1, column 27: policy "list" is not one of read, write, deny/,
    ],
    [`key_prefix "a" {\n  polcy = "read" }`, /line 2, column 3: unknown field "polcy"/],
    [
      `key_prefix "a" { policy = "read"`,
      /line 1, column 33: expected policy = "read\|write\|deny" or "}", got the end/,
    ],
    [
      `key_prefix a { policy = "read" }`,
      /line 1, column 12: expected a quoted name after key_prefix, got "a"/,
    ],
    [`keys "a" { policy = "read" }`, /line 1, column 1: unknown rule kind "keys"/],
    [`acl = "write"`, /rule kind "acl" is not supported by berth/],
    [`key "a" { }`, /key "a" has no policy/],
    [`key "a { policy = "read" }`, /line 1, column 24: string is never closed/],
    [`key "a\n" { policy = "read" }`, /line 1, column 5: string is never closed/],
    [`key "a\\q" { policy = "read" }`, /unknown escape \\q/],
    [`key "a\\\n" { policy = "read" }`, /string is never closed/],
    [`key "a\\\u0001" { policy = "read" }`, /unknown escape \\\\u0001/],
    [`/* open`, /comment \/\* is never closed/],
    [`operator "read"`, /expected "=" after operator/],
    [`operator = "sudo"`, /policy "sudo" is not one of/],
    [`key "a" { policy = "read" } @`, /line 1, column 29: unexpected "@"/],
    [`{"key": {"a": {"policy": "read"}`, /^rules \(JSON\): /],
    [`{"key": {"a": {"policy": "read", "x": 1}}}`, /unknown field "x"/],
    [`{"key": {"a": {}}}`, /expected "policy"/],
    [`{"operator": 3}`, /expected a policy string/],
    [`{"query": {}}`, /not supported by berth/],
    [`[]`, /unexpected "\["/],
    [`key "${"k".repeat(513)}" { policy = "read" }`, /over 512 characters/],
    ["#".repeat(RULES_BYTES_MAX + 1), /at most 65536 characters/],
    // Found by the property below: V8's JSON error quotes the text raw, JSON.stringify leaves
    // U+2028 and U+2029 as they are.
    [`{"key": {"a/":\u0000{}}}`, /^rules \(JSON\): Unexpected token '\\u0000'/],
    [`{"key": \r\r}`, /^rules \(JSON\): .*\\u000d\\u000d/],
    [`\u2028`, /line 1, column 1: unexpected "\\u2028"/],
    [`key "\u2029\u007f" { }`, /key "\\u2029\\u007f" has no policy/],
    [`operator = "${"x".repeat(100)}"`, new RegExp(`policy "${"x".repeat(40)}" is not one`)],
  ];
  // An empty list of rule groups holds no rules: accepted.
  assert.deepEqual(parseRules(`{"key": []}`), { rules: [] });
  for (const [text, want] of bad) {
    assert.throws(() => parseRules(text), (e: unknown) => {
      assert.ok(e instanceof RulesError, `${text}: ${e}`);
      assert.match(e.message, want, text);
      assert.doesNotMatch(e.message, LINE_BREAKING, "one line");
      return true;
    });
  }
});

Deno.test("parseRules() on random and mangled input returns rules or throws RulesError, nothing else", () => {
  const good =
    `key_prefix "a/" { policy = "read" }\nservice "w" { policy = "write" }\noperator = "read"`;
  const goodJson = JSON.stringify({ key_prefix: { "a/": { policy: "read" } }, operator: "read" });
  const check = (text: string) => {
    try {
      const r = parseRules(text);
      assert.ok(Array.isArray(r.rules));
    } catch (e) {
      if (!(e instanceof RulesError)) throw e;
      assert.doesNotMatch(e.message, LINE_BREAKING);
    }
  };
  // Any UTF-16 code unit ("binary"), not only printable ASCII: control characters and line
  // separators are what break a one-line message.
  const text = (maxLength: number) =>
    fc.oneof(fc.string({ maxLength }), fc.string({ maxLength, unit: "binary" }));
  fc.assert(fc.property(text(200), check), { numRuns: 2000 });
  for (const base of [good, goodJson]) {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: base.length }), text(5), (at, s) => {
        check(base.slice(0, at) + s + base.slice(at));
      }),
      { numRuns: 2000 },
    );
  }
  fc.assert(fc.property(fc.json(), check), { numRuns: 1000 });
});
