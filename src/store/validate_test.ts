import assert from "node:assert/strict";
import { instanceSpec } from "../../test/fixtures.ts";
import { CommandError, rules, validateInstance } from "./validate.ts";
import { checkDefinitionKey } from "./health.ts";

type Rule = (x: unknown, path: string) => unknown;

/** Each rule: values it accepts (with the clean value) and values it refuses. */
const CASES: [string, Rule, [unknown, unknown][], unknown[]][] = [
  ["serviceName", rules.serviceName, [["web", "web"], ["Web_2-a", "Web_2-a"]], [
    "",
    "-web",
    "a.b",
    "a b",
    "x".repeat(64),
    7,
  ]],
  ["idPart", rules.idPart, [["api-1.a_b", "api-1.a_b"]], ["a:b", "a b", "", "x".repeat(127)]],
  ["port", rules.port, [[0, 0], [65535, 65535]], [-1, 65536, 1.5, "80"]],
  ["listenPort", rules.listenPort, [[1, 1], [65535, 65535]], [0, 65536, NaN]],
  ["weight", rules.weight, [[0, 0], [65535, 65535]], [-1, 65536, "1"]],
  ["tags", rules.tags, [[["a", "b"], ["a", "b"]]], [
    "a,b",
    [""],
    ["x".repeat(513)],
    Array(65).fill("t"),
  ]],
  ["meta", rules.meta, [
    [{ a: "" }, { a: "" }],
    [{ "berth.lb": "Least-Conn" }, { "berth.lb": "least_conn" }],
    [{ "berth.tls": "ACME" }, { "berth.tls": "acme" }],
    [{ "berth.http.proto": "GRPC" }, { "berth.http.proto": "grpc" }],
    [{ "berth.http.redirect": "HTTPS" }, { "berth.http.redirect": "https" }],
    [{ "berth.http.redirect": " ^/a  /b " }, { "berth.http.redirect": "^/a /b 302" }],
    [{ "berth.http.hsts": "max-age=60;preload" }, { "berth.http.hsts": "max-age=60; preload" }],
  ], [
    { a: 1 },
    { "": "x" },
    { "berth.lb": "fastest" },
    { "berth.tls": "letsencrypt" },
    { "berth.http.proto": "h3" },
    { "berth.http.redirect": "http" },
    { "berth.http.hsts": "1 year" },
    [],
  ]],
  ["hsts", rules.hsts, [
    ["max-age=31536000", "max-age=31536000"],
    ["Max-Age=0", "max-age=0"],
    [
      ' preload ; max-age="63072000";includesubdomains',
      "max-age=63072000; includeSubDomains; preload",
    ],
  ], [
    "",
    "max-age",
    "max-age=-1",
    "max-age=1e6",
    "max-age=2147483648",
    "max-age=60; max-age=70",
    "max-age=60; preload; preload",
    "includeSubDomains",
    "max-age=60; includeSubDomains; foo",
    "max-age=60;",
    60,
  ]],
  ["lbPolicy", rules.lbPolicy, [["rr", "round_robin"], ["p2c", "p2c"]], ["fast", 1]],
  ["tlsMode", rules.tlsMode, [["acme", "acme"], [" Acme", "acme"]], ["", "manual", 1, null]],
  ["httpProto", rules.httpProto, [["h2c", "h2c"], ["HTTP2", "h2c"], ["http/1.1", "http1"]], [
    "spdy",
    "",
    2,
  ]],
  ["httpHosts", rules.httpHosts, [
    [["A.Example.com", "*.x.test", "web_1.local"], ["a.example.com", "*.x.test", "web_1.local"]],
  ], [["bad host"], ["a..b"], ["-a.b"], ["a.b-"], [`${"a".repeat(250)}.com`], "a.com"]],
  ["urlPath", rules.urlPath, [["/", "/"], ["/api/v1?x=1", "/api/v1?x=1"]], [
    "api",
    "/a b",
    "/a\u0000",
    "",
  ]],
  ["checkIntervalMs", rules.checkIntervalMs, [[100, 100], [86_400_000, 86_400_000]], [
    99,
    86_400_001,
    1.5,
    "5s",
  ]],
  ["checkTimeoutMs", rules.checkTimeoutMs, [[10, 10], [3_600_000, 3_600_000]], [9, 3_600_001]],
  ["checkGrpcTarget", rules.checkGrpcTarget, [
    ["10.0.0.5:9090", "10.0.0.5:9090"],
    ["[::1]:9090/pkg.Svc_v1-x", "[::1]:9090/pkg.Svc_v1-x"],
  ], ["10.0.0.5", "h:0", "h:1/", "h:1/a b", "h:1/a/b", 9090]],
  ["status", rules.status, [["warning", "warning"]], ["green", null]],
];

Deno.test("rules accept good values (clean) and refuse bad ones naming the path", async (t) => {
  for (const [name, rule, good, bad] of CASES) {
    await t.step(name, () => {
      for (const [x, clean] of good) assert.deepEqual(rule(x, "f"), clean, JSON.stringify(x));
      for (const x of bad) {
        assert.throws(
          () => rule(x, "f"),
          (e: unknown) => e instanceof CommandError && e.message.startsWith("f") && e.want !== "",
          `${name} accepted ${JSON.stringify(x)}`,
        );
      }
    });
  }
});

Deno.test("rules.checkIntervalMs() words its bounds as durations", () => {
  assert.throws(() => rules.checkIntervalMs(50, "i"), {
    message: 'i: expected a duration from 100ms to 24h, got "50ms"',
  });
});

Deno.test("validateInstance() applies the field rules to every field", async (t) => {
  const bad: [string, Record<string, unknown>][] = [
    ["service", { service: "a.b" }],
    ["port", { port: 70000 }],
    ["weight", { weight: -1 }],
    ["httpHosts", { httpHosts: ["bad host"] }],
    ["httpPath", { httpPath: "api" }],
    ["tcpPort", { tcpPort: 0 }],
    ["meta", { meta: { "berth.lb": "fastest" } }],
    ["check.intervalMs", { check: { intervalMs: 10, timeoutMs: 1000 } }],
    ["check.http", { check: { intervalMs: 1000, timeoutMs: 1000, http: "health" } }],
    ["check.grpc", { check: { intervalMs: 1000, timeoutMs: 1000, grpc: "yes" } }],
    ["check.udp", { check: { intervalMs: 1000, timeoutMs: 1000, udp: "a\\q" } }],
    ["check.udp", { check: { intervalMs: 1000, timeoutMs: 1000, udp: "x".repeat(513) } }],
    ["check.udp", { check: { intervalMs: 1000, timeoutMs: 1000, udp: 7 } }],
    ["check.udpExpect", { check: { intervalMs: 1000, timeoutMs: 1000, udpExpect: "PONG" } }],
    ["check.udpExpect", { check: { intervalMs: 1000, timeoutMs: 1000, udp: "", udpExpect: "\\" } }],
    ["check.failClosed", { check: { intervalMs: 1000, timeoutMs: 1000, udp: "", failClosed: 7 } }],
    ["check.failClosed", { check: { intervalMs: 1000, timeoutMs: 1000, udp: "", failClosed: "" } }],
    ["meta", { meta: { "berth.http.proto": "h3" } }],
  ];
  for (const [field, over] of bad) {
    await t.step(field, () => {
      assert.throws(() => validateInstance(instanceSpec(over as never)), {
        name: "CommandError",
        message: new RegExp(`^instance\\.${field.replace(".", "\\.")}`),
      });
    });
  }
  const ok = validateInstance(
    instanceSpec({
      httpHosts: ["Web.Test"],
      meta: { "berth.lb": "leastconn", "berth.http.proto": "H2C" },
      check: { intervalMs: 1000, timeoutMs: 1000, grpc: true },
    }),
  );
  assert.deepEqual(ok.httpHosts, ["web.test"]);
  assert.equal(ok.meta["berth.lb"], "least_conn");
  assert.equal(ok.meta["berth.http.proto"], "h2c");
  assert.deepEqual(ok.check, { intervalMs: 1000, timeoutMs: 1000, grpc: true });
  const udp = { intervalMs: 1000, timeoutMs: 1000, udp: "\\x00PING", udpExpect: "PONG" };
  assert.deepEqual(validateInstance(instanceSpec({ check: udp })).check, udp);
  const empty = { intervalMs: 1000, timeoutMs: 1000, udp: "" };
  assert.deepEqual(validateInstance(instanceSpec({ check: empty })).check, empty);
  const closed = { intervalMs: 1000, timeoutMs: 1000, udp: "PING", failClosed: "bad label" };
  assert.deepEqual(validateInstance(instanceSpec({ check: closed })).check, closed);
});

Deno.test("checkDefinitionKey() tells UDP checks apart by payload and expected text", () => {
  const base = { intervalMs: 1000, timeoutMs: 1000 };
  const keys = [
    { ...base, tcp: true },
    { ...base, udp: "" },
    { ...base, udp: "PING" },
    { ...base, udp: "PING", udpExpect: "PONG" },
    { ...base, udp: "PING", failClosed: "bad label" },
  ].map(checkDefinitionKey);
  assert.equal(new Set(keys).size, keys.length);
  assert.equal(
    checkDefinitionKey({ ...base, tcp: true }),
    JSON.stringify([null, true, 1000, 1000]),
  );
});
