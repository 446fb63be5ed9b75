import assert from "node:assert/strict";
import { AWAITING_CHECK_OUTPUT, checkerOwns } from "./ownership.ts";

Deno.test("checkerOwns() yields Docker rows to the watcher's verdicts only", async (t) => {
  const cases: [string | null, string, boolean][] = [
    ["c1", "", true],
    ["c1", AWAITING_CHECK_OUTPUT, true],
    ["c1", "HTTP GET /health: 500 Internal Server Error", true],
    ["c1", "TCP connect 10.0.0.5:80: connection refused", true],
    ["c1", "container being stopped", false],
    ["c1", "docker health: unhealthy", false],
    ["c1", "container paused", false],
    [null, "set by an operator", true],
  ];
  for (const [containerId, output, owns] of cases) {
    await t.step(`${containerId ?? "api"} "${output}" → ${owns}`, () => {
      assert.equal(checkerOwns({ containerId, output }), owns);
    });
  }
});
