import assert from "node:assert/strict";
import { parseWrkDone, summarizeWrk, wrkScript } from "./_wrk.ts";

Deno.test("wrkScript() lists each request's path and body and quotes them for Lua", () => {
  const lua = wrkScript({
    method: "POST",
    paths: ["/a", '/b"q'],
    bodies: ['{"k":"x"}', "y\\z"],
    headers: { "Content-Type": "application/json" },
  });
  assert.match(lua, /local method = "POST"/);
  assert.match(lua, /local paths = \{\n {2}"\/a",\n {2}"\/b\\"q",\n\}/);
  assert.match(lua, /local bodies = \{\n {2}"\{\\"k\\":\\"x\\"\}",\n {2}"y\\\\z",\n\}/);
  assert.match(lua, /local extra = \{ \["Content-Type"\] = "application\/json" \}/);
  assert.match(lua, /WRK_DONE/);
});

Deno.test("wrkScript() gives one body to every path, and none when absent", () => {
  assert.match(wrkScript({ method: "PUT", paths: ["/a", "/b"], bodies: "v" }), /"v",\n {2}"v",/);
  assert.match(wrkScript({ method: "GET", paths: ["/a"] }), /local bodies = \{\}/);
});

Deno.test("wrkScript() refuses no paths, a body count that differs, and non-ASCII text", () => {
  assert.throws(() => wrkScript({ method: "GET", paths: [] }), /no requests/);
  assert.throws(() => wrkScript({ method: "PUT", paths: ["/a"], bodies: ["x", "y"] }), /2 bodies/);
  assert.throws(() => wrkScript({ method: "GET", paths: ["/é"] }), /not printable ASCII/);
});

Deno.test("parseWrkDone() reads counts, µs duration and percentiles as ms", () => {
  const out = "Running 2s test @ http://127.0.0.1:1\nWRK_DONE 2000 3 2000500 1500 9000\n";
  assert.deepEqual(parseWrkDone(out), {
    requests: 2000,
    errors: 3,
    seconds: 2.0005,
    p50Ms: 1.5,
    p99Ms: 9,
  });
  assert.throws(() => parseWrkDone("Requests/sec: 1"), /no WRK_DONE line/);
});

Deno.test("summarizeWrk() counts successes over the summed time, weights percentiles by requests", () => {
  const s = summarizeWrk([
    { requests: 300, errors: 0, seconds: 1, p50Ms: 1, p99Ms: 10 },
    { requests: 100, errors: 20, seconds: 1, p50Ms: 5, p99Ms: 30 },
  ]);
  assert.deepEqual(s, { perSecond: 190, p50Ms: 2, p99Ms: 15, errors: 20 });
  assert.ok(Number.isNaN(summarizeWrk([]).p99Ms));
});
