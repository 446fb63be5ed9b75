import assert from "node:assert/strict";
import { FilterError, parseFilter } from "./filter.ts";

const ROW = {
  Node: { Node: "n1", Address: "10.0.0.1", Meta: { env: "prod", "a.b": "x" } },
  Service: { ID: "web-1", Service: "web", Tags: ["v1", "primary"], Port: 8080, Meta: {} },
  Checks: [
    { CheckID: "serfHealth", Status: "passing", ServiceID: "" },
    { CheckID: "service:web-1", Status: "critical", ServiceID: "web-1" },
  ],
};
/** The shape as an endpoint describes it: maps are empty objects. */
const SAMPLE = { ...ROW, Node: { ...ROW.Node, Meta: {} } };

/** Filter → whether ROW is kept. */
const CASES: [string, boolean][] = [
  ['Service.Service == "web"', true],
  ["Service.Service == web", true],
  ["Service.Service != web", false],
  ["Service.Port == 8080", true],
  ["Node.Address == 10.0.0.1", true],
  ['"v1" in Service.Tags', true],
  ['"v2" in Service.Tags', false],
  ['"v2" not in Service.Tags', true],
  ["Service.Tags contains primary", true],
  ["Service.Tags not contains primary", false],
  ['Service.Service contains "we"', true],
  ['"env" in Node.Meta', true],
  ["Node.Meta.env == prod", true],
  ['Node.Meta["a.b"] == x', true],
  ["Node.Meta.missing == x", false],
  ["Service.Meta is empty", true],
  ["Service.Meta is not empty", false],
  ["Service.Tags is not empty", true],
  ["Checks.Status == critical", true],
  ["Checks.Status == warning", false],
  ['Checks.CheckID matches "^service:"', true],
  ['Service.ID not matches "^web-[0-9]+$"', false],
  ["Service.Service == web and Service.Port == 80", false],
  ["Service.Service == db or Service.Port == 8080", true],
  ["not Service.Service == db", true],
  ["not (Service.Service == web and not Checks.Status == critical)", true],
  ["(Service.Service == db or Service.Service == web) and Node.Meta.env == prod", true],
  ["Service.Service == `web`", true],
  ['Service.Service == "w\\"eb"', false],
];

Deno.test("parseFilter() evaluates Consul's operators on nested fields, lists and maps", () => {
  for (const [src, want] of CASES) {
    assert.equal(parseFilter(src, SAMPLE).test(ROW), want, src);
  }
});

Deno.test("parseFilter() matches with RE2: linear time on (a+)+$, Consul's (?i) flag", () => {
  // A backtracking RegExp takes seconds on this (it blocked the agent's one thread for 14.8 s).
  const row = { ...ROW, Service: { ...ROW.Service, Service: "a".repeat(29) + "!" } };
  assert.equal(parseFilter('Service.Service matches "(a+)+$"', SAMPLE).test(row), false);
  assert.equal(parseFilter('Service.Service not matches "(a+)+$"', SAMPLE).test(row), true);
  assert.equal(parseFilter('Service.Service matches "^(a+)+!$"', SAMPLE).test(row), true);
  assert.equal(parseFilter('Service.Service matches "(?i)^WEB$"', SAMPLE).test(ROW), true);
  assert.equal(parseFilter('Service.Service matches "^WEB$"', SAMPLE).test(ROW), false);
});

Deno.test("parseFilter() looks up own fields and map keys only, not Object.prototype's", () => {
  const empty = { ...ROW, Node: { ...ROW.Node, Meta: {} } };
  assert.equal(parseFilter('Node.Meta contains "toString"', SAMPLE).test(empty), false);
  assert.equal(parseFilter('"constructor" in Node.Meta', SAMPLE).test(empty), false);
  assert.equal(parseFilter("Node.Meta.toString is empty", SAMPLE).test(empty), true);
  assert.equal(parseFilter("Node.Meta.hasOwnProperty == x", SAMPLE).test(empty), false);
  assert.equal(parseFilter('Node.Meta contains "env"', SAMPLE).test(ROW), true);
});

Deno.test("parseFilter() refuses bad filters with one line, never a crash", () => {
  const bad: [string, RegExp][] = [
    ["", /empty filter/],
    ["   ", /empty filter/],
    ["Service.Service ==", /expected a value at the end/],
    ["Service.Service = web", /unexpected "=" at 17/],
    ["Service.Service == web and", /expected a match expression at the end/],
    ["(Service.Service == web", /expected "\)" at the end/],
    ["Service.Service == web)", /unexpected token at 23/],
    ['Service.Service == "web', /unterminated string starting at 20/],
    ["Service.Nope == x", /selector "Service.Nope" is not valid/],
    ["Nope == x", /selector "Nope" is not valid/],
    ["Service.Service", /expected ==, !=, contains, matches, in or is \[not\] empty at the end/],
    ["Service.Tags is full", /expected "empty" at 17/],
    ['Service.ID matches "("', /bad regular expression/],
    ['Service.ID matches "(?=web)"', /bad regular expression/], // a lookahead is not RE2
    ["== web", /expected a selector at 1/],
    ["Node.Meta[env] == x", /expected a quoted key/],
    ["not ".repeat(100) + "Service.ID == x", /nested deeper than 64/],
    ["x".repeat(5000), /over 4096 characters/],
    ["Service.ID == x ; drop", /unexpected ";"/],
  ];
  for (const [src, want] of bad) {
    assert.throws(() => parseFilter(src, SAMPLE), (e: unknown) => {
      assert.ok(e instanceof FilterError, `${src}: ${e}`);
      assert.match(e.message, want, src);
      return true;
    });
  }
});

Deno.test("parseFilter() treats an empty object in the sample as a map of any keys", () => {
  const f = parseFilter("Service.Meta.version == 2", SAMPLE);
  assert.equal(f.test({ ...ROW, Service: { ...ROW.Service, Meta: { version: "2" } } }), true);
  assert.equal(f.test(ROW), false);
});
