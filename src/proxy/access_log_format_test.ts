import assert from "node:assert/strict";
import { clfTime, formatRecord, isoTime } from "./access_log_format.ts";
import { record } from "./_record_testing.ts";

Deno.test("formatRecord(json) is one JSON object with every field, RFC 3339 time with ms", () => {
  const line = formatRecord(record(), "json");
  assert.ok(!line.includes("\n"));
  assert.deepEqual(JSON.parse(line), {
    time: "2026-12-02T05:10:00.123Z",
    member: "node-1",
    client: "10.0.0.7",
    method: "GET",
    host: "app.test",
    path: "/a?b=1",
    status: 200,
    bytes_in: 0,
    bytes_out: 512,
    service: "app",
    route: "app.test/",
    instance: "app-1",
    attempts: 1,
    duration_ms: 3,
    request_id: "3f9c0a61d2e4-1k7",
    proto: "HTTP/1.1",
  });
});

Deno.test("formatRecord(json) adds tls_version and sni over HTTPS, nulls where nothing was routed", () => {
  const https = JSON.parse(
    formatRecord(record({ tlsVersion: "TLSv1.3", sni: "app.test" }), "json"),
  );
  assert.equal(https.tls_version, "TLSv1.3");
  assert.equal(https.sni, "app.test");
  const none = JSON.parse(
    formatRecord(
      record({ service: null, route: null, instance: null, host: null, status: 404 }),
      "json",
    ),
  );
  assert.equal(none.service, null);
  assert.equal(none.host, null);
  assert.equal("sni" in none, false);
});

Deno.test("formatRecord(json) adds client_request_id when the client's own X-Request-Id was replaced, escaped and cut to 128 characters", () => {
  const line = (rawHeaders: string[]) => JSON.parse(formatRecord(record({ rawHeaders }), "json"));
  const replaced = line(["Host", "app.test", "X-Request-Id", "client-1", "x-request-id", "x-2"]);
  assert.equal(replaced.client_request_id, "client-1");
  assert.deepEqual(Object.keys(replaced).slice(-3), ["request_id", "client_request_id", "proto"]);
  // Kept (a --request-id-from client): the record's id is the client's, no second field.
  assert.equal("client_request_id" in line(["x-request-id", "3f9c0a61d2e4-1k7"]), false);
  assert.equal(
    "client_request_id" in line(["X-Request-Id", "a b", "X-Request-Id", "3f9c0a61d2e4-1k7"]),
    false,
  );
  assert.equal("client_request_id" in line(["Host", "app.test"]), false);
  const hostile = '"\n\u0000\\é' + "x".repeat(300);
  const text = formatRecord(record({ rawHeaders: ["x-request-id", hostile] }), "json");
  assert.ok(!text.includes("\n"));
  assert.equal(JSON.parse(text).client_request_id, hostile.slice(0, 128));
});

Deno.test("formatRecord(json) keeps a hostile path on one line, parseable", () => {
  const path = '/x"\n\u0000\\é';
  assert.equal(JSON.parse(formatRecord(record({ path }), "json")).path, path);
});

/** Apache's `%h %l %u %t "%r" %>s %b`, as httpd documents it. */
const COMMON =
  /^(\S+) (\S+) (\S+) \[(\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)$/;
/** The combined format: common + ` "%{Referer}i" "%{User-agent}i"`. */
const COMBINED = new RegExp(
  COMMON.source.slice(0, -1) + ' "((?:[^"\\\\]|\\\\.)*)" "((?:[^"\\\\]|\\\\.)*)"$',
);

Deno.test("formatRecord(common) is Apache's Common Log Format", () => {
  const line = formatRecord(record(), "common");
  assert.equal(line, '10.0.0.7 - - [02/Dec/2026:05:10:00 +0000] "GET /a?b=1 HTTP/1.1" 200 512');
  assert.match(line, COMMON);
  assert.match(formatRecord(record({ bytesOut: 0, status: 304 }), "common"), / 304 -$/);
});

Deno.test("formatRecord(combined) adds Referer and User-Agent, - when absent", () => {
  const line = formatRecord(record(), "combined");
  assert.equal(
    line,
    '10.0.0.7 - - [02/Dec/2026:05:10:00 +0000] "GET /a?b=1 HTTP/1.1" 200 512 ' +
      '"https://r.test/" "curl/8.5.0"',
  );
  assert.match(line, COMBINED);
  assert.match(formatRecord(record({ rawHeaders: [] }), "combined"), / "-" "-"$/);
});

Deno.test("formatRecord(common/combined) escapes quotes, backslashes and non-printables as Apache", () => {
  const line = formatRecord(
    record({ path: '/a"b\\c\u0001é', rawHeaders: ["user-agent", 'x"y\n'] }),
    "combined",
  );
  assert.match(line, COMBINED);
  assert.ok(line.includes('"GET /a\\"b\\\\c\\x01\\xe9 HTTP/1.1"'), line);
  assert.ok(line.endsWith('"-" "x\\"y\\n"'), line);
  assert.ok(!line.includes("\n"));
});

Deno.test("formatRecord(common/combined) writes \\b \\t \\n \\v \\r by name and HTTP/2 as HTTP/2.0, as Apache", () => {
  const line = formatRecord(
    record({ proto: "HTTP/2", rawHeaders: ["user-agent", "a\tb\bc\vd\re\nf\u0000"] }),
    "combined",
  );
  assert.ok(line.includes('"GET /a?b=1 HTTP/2.0"'), line);
  assert.ok(line.endsWith('"a\\tb\\bc\\vd\\re\\nf\\x00"'), line);
  assert.equal(JSON.parse(formatRecord(record({ proto: "HTTP/2" }), "json")).proto, "HTTP/2");
});

Deno.test("clfTime() is [dd/Mon/yyyy:hh:mm:ss +0000] in UTC", () => {
  assert.equal(clfTime(Date.UTC(2027, 0, 9, 23, 59, 58)), "[09/Jan/2027:23:59:58 +0000]");
  assert.equal(clfTime(Date.UTC(2027, 0, 9, 23, 59, 58, 999)), "[09/Jan/2027:23:59:58 +0000]");
});

Deno.test("isoTime() is Date.toISOString() (RFC 3339, ms, UTC) for any millisecond", () => {
  for (const ms of [0, 7, 42, 999, Date.UTC(2026, 11, 2, 5, 10, 0, 5), 1_796_189_308_559]) {
    assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
    assert.equal(isoTime(ms + 1000), new Date(ms + 1000).toISOString());
  }
});

Deno.test("formatRecord(json) equals JSON.stringify of the same fields, escapes included", () => {
  const r = record({ path: '/q?x="1"\\\u0007é', host: null, tlsVersion: "TLSv1.2", sni: "a.test" });
  assert.equal(
    formatRecord(r, "json"),
    JSON.stringify({
      time: new Date(r.time).toISOString(),
      member: r.member,
      client: r.client,
      method: r.method,
      host: r.host,
      path: r.path,
      status: r.status,
      bytes_in: r.bytesIn,
      bytes_out: r.bytesOut,
      service: r.service,
      route: r.route,
      instance: r.instance,
      attempts: r.attempts,
      duration_ms: r.durationMs,
      tls_version: r.tlsVersion,
      sni: r.sni,
      request_id: r.requestId,
      proto: r.proto,
    }),
  );
});
