import assert from "node:assert/strict";
import { foreignCluster, limitedLog, LOG_REPEAT_MS } from "./_transport_shared.ts";

Deno.test("limitedLog() logs a repeated key once per LOG_REPEAT_MS", () => {
  const lines: string[] = [];
  let now = 1000;
  const log = limitedLog((l) => lines.push(l), () => now);
  log("a", "a1");
  log("a", "a2");
  log("b", "b1");
  now += LOG_REPEAT_MS;
  log("a", "a3");
  assert.deepEqual(lines, ["a1", "b1", "a3"]);
});

Deno.test("foreignCluster() objects only when both sides are in different clusters", () => {
  assert.equal(foreignCluster("", "x"), null);
  assert.equal(foreignCluster("x", ""), null);
  assert.equal(foreignCluster("x", "x"), null);
  assert.equal(foreignCluster("x", "y"), "foreign cluster y (this node belongs to x)");
});
