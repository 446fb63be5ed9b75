import assert from "node:assert/strict";
import type { Target } from "./balancer.ts";
import { SLOW_START_KEPT_MS, SlowStart } from "./slow_start.ts";
import { UpstreamPool } from "./upstream_pool.ts";

const t = (key: string, weight = 10): Target => ({
  id: key,
  address: "127.0.0.1",
  port: 1,
  weight,
  key,
});

Deno.test("SlowStart.weight() ramps linearly from 10% to full over the ramp, full for others", () => {
  let now = 1_000;
  const s = new SlowStart(() => now);
  assert.equal(s.weight(t("a"), 10_000), 10, "never began: full weight");
  s.began("a");
  const at = (ms: number) => {
    now = 1_000 + ms;
    return s.weight(t("a"), 10_000);
  };
  assert.equal(at(0), 1);
  assert.equal(at(5_000), 5.5);
  assert.equal(at(9_000), 9.1);
  assert.equal(at(10_000), 10);
  assert.equal(at(60_000), 10);
  assert.equal(s.weight(t("b"), 10_000), 10);
});

Deno.test("SlowStart.began() with afterMs (an ejection's end) holds the floor until then", () => {
  let now = 0;
  const s = new SlowStart(() => now);
  s.began("a", 5_000);
  assert.equal(s.weight(t("a"), 1_000), 1);
  now = 5_500;
  assert.equal(s.weight(t("a"), 1_000), 5.5);
});

Deno.test("SlowStart drops ramps that ended over an hour ago", () => {
  let now = 0;
  const s = new SlowStart(() => now);
  s.began("old");
  now = SLOW_START_KEPT_MS + 1;
  for (let i = 0; i < 255; i++) s.began(`new-${i}`);
  assert.equal(s.size, 255, "old was swept");
});

Deno.test("UpstreamPool starts a ramp for targets served again and at the end of an ejection", () => {
  let now = 1_000;
  const pool = new UpstreamPool({ failuresMax: 1, ejectMs: 100, now: () => now, log: () => {} });
  try {
    pool.retainChanged([], ["back"]);
    assert.equal(pool.slowStart.weight(t("back"), 1_000), 1);
    // A local ejection: floor until it ends, then the ramp.
    pool.failed(pool.get(t("local")), "ECONNREFUSED");
    // Another worker's ejection, before this one has a pool for the target.
    pool.eject("remote", 100);
    for (const key of ["local", "remote"]) {
      assert.equal(pool.slowStart.weight(t(key), 1_000), 1, key);
    }
    now += 100 + 500;
    for (const key of ["local", "remote"]) {
      assert.equal(pool.slowStart.weight(t(key), 1_000), 5.5, key);
    }
    assert.equal(pool.slowStart.weight(t("never"), 1_000), 10);
  } finally {
    pool.close();
  }
});

Deno.test("SlowStart runs on the monotonic clock: a step of the wall clock does not end a ramp", () => {
  const wall = Date.now;
  let step = 0;
  Date.now = () => wall() + step;
  try {
    const s = new SlowStart();
    s.began("a");
    step = 3_600_000; // NTP steps the wall clock an hour forward
    assert.ok(s.weight(t("a"), 60_000) < 2, "still near the 10% floor");
    step = -3_600_000; // and an hour back
    assert.ok(s.weight(t("a"), 60_000) >= 1);
  } finally {
    Date.now = wall;
  }
});
