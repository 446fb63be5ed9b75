import assert from "node:assert/strict";
import type { Socket } from "node:net";
import {
  foreignCluster,
  limitedLog,
  LOG_KEYS_MAX,
  LOG_REPEAT_MS,
  remoteOf,
} from "./_transport_shared.ts";

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

Deno.test("limitedLog() logs at most LOG_KEYS_MAX + 1 lines per LOG_REPEAT_MS for a flood of new keys", () => {
  const lines: string[] = [];
  let now = 1000;
  const log = limitedLog((l) => lines.push(l), () => now);
  for (let i = 0; i < 3 * LOG_KEYS_MAX; i++) log(`host ${i}`, `line ${i}`);
  assert.equal(lines.length, LOG_KEYS_MAX + 1);
  assert.equal(lines[LOG_KEYS_MAX - 1], `line ${LOG_KEYS_MAX - 1}`);
  assert.match(lines[LOG_KEYS_MAX]!, /too many distinct diagnostics/);
  // Keys already seen stay limited; a minute later new keys are logged again.
  log("host 0", "again");
  assert.equal(lines.length, LOG_KEYS_MAX + 1);
  now += LOG_REPEAT_MS;
  log("host new", "new");
  assert.equal(lines.at(-1), "new");
});

Deno.test("foreignCluster() objects only when both sides are in different clusters", () => {
  assert.equal(foreignCluster("", "x"), null);
  assert.equal(foreignCluster("x", ""), null);
  assert.equal(foreignCluster("x", "x"), null);
  assert.equal(foreignCluster("x", "y"), "foreign cluster y (this node belongs to x)");
});

Deno.test("remoteOf() gives the peer's host and host:port, IPv6 in brackets", () => {
  const of = (remoteAddress?: string, remotePort?: number) =>
    remoteOf({ remoteAddress, remotePort } as Socket);
  assert.deepEqual(of("127.0.0.2", 4000), { host: "127.0.0.2", text: "127.0.0.2:4000" });
  assert.deepEqual(of("::1", 4000), { host: "::1", text: "[::1]:4000" });
  assert.deepEqual(of(undefined, undefined), { host: "?", text: "?" });
});
