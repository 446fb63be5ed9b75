import assert from "node:assert/strict";
import { NAME, World } from "./_world_testing.ts";
import { VALIDATION_BACKOFF_MIN_MS } from "./timing.ts";

const HOUR = 3_600_000;
const NAMES = ["a.example.com", "b.example.com", "c.example.com", "d.example.com", "e.example.com"];

Deno.test("AcmeManager makes at most newOrdersPerHour new orders in an hour, also across a leader change", async () => {
  const w = new World();
  w.names = NAMES;
  w.ca.finalizeStatus = "processing"; // every order stays in flight
  let leader = "n1";
  const a = w.manager("n1", () => leader === "n1" ? 1 : null, { newOrdersPerHour: 3 });
  const b = w.manager("n2", () => leader === "n2" ? 2 : null, { newOrdersPerHour: 3 });
  const orders = () => w.ca.calls.filter((c) => c === "newOrder").length;
  await w.run(a, 60);
  assert.equal(orders(), 3);
  assert.ok(w.logs.some((l) => l.includes("3 new orders in the last hour")), w.logs.join("\n"));
  leader = "n2"; // a new leader does not start the hour afresh
  await w.run(b, 60);
  assert.equal(orders(), 3);
  w.nowMs += HOUR;
  await w.run(b, 60);
  assert.equal(orders(), 5);
});

Deno.test("AcmeManager waits VALIDATION_BACKOFF_MIN_MS (1 h) after a failed validation, doubling from there", async () => {
  const w = new World();
  const m = w.manager("n1", () => 1);
  w.ca.validator = () => "wrong";
  await w.until(m, () => (w.store.acme.name(NAME)?.failures ?? 0) > 0);
  const row = w.store.acme.name(NAME)!;
  assert.equal(VALIDATION_BACKOFF_MIN_MS, HOUR);
  assert.equal(row.nextAttemptMs - row.lastErrorMs, HOUR);
});
