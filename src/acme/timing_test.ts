import assert from "node:assert/strict";
import {
  BACKOFF_MAX_MS,
  BACKOFF_MIN_MS,
  backoffMs,
  nextPollMs,
  POLL_MAX_MS,
  POLL_MIN_MS,
  renewAt,
} from "./timing.ts";

Deno.test("renewAt() is two-thirds into the certificate's lifetime", () => {
  assert.equal(renewAt(0, 90 * 86_400_000), 60 * 86_400_000);
  assert.equal(renewAt(1000, 4000), 3000);
  // Let's Encrypt's 90 days from a given start.
  const nb = Date.UTC(2026, 0, 1);
  assert.equal(renewAt(nb, nb + 90 * 86_400_000), nb + 60 * 86_400_000);
});

Deno.test("backoffMs() doubles from 1 min to at most 24 h, never below Retry-After", () => {
  assert.deepEqual(
    [1, 2, 3, 4].map((f) => backoffMs(f)),
    [BACKOFF_MIN_MS, 2 * BACKOFF_MIN_MS, 4 * BACKOFF_MIN_MS, 8 * BACKOFF_MIN_MS],
  );
  assert.equal(backoffMs(11), 1024 * BACKOFF_MIN_MS); // 17 h
  assert.equal(backoffMs(12), BACKOFF_MAX_MS); // 34 h, cut to 24 h
  assert.equal(backoffMs(1000), BACKOFF_MAX_MS);
  assert.equal(backoffMs(0), BACKOFF_MIN_MS);
  assert.equal(backoffMs(1, 3_600_000), 3_600_000);
  assert.equal(backoffMs(5, 1000), 16 * BACKOFF_MIN_MS);
  assert.equal(backoffMs(1, 10 * BACKOFF_MAX_MS), BACKOFF_MAX_MS);
});

Deno.test("nextPollMs() starts at POLL_MIN_MS and grows by half to 30 s; Retry-After lengthens it", () => {
  const seen: number[] = [];
  let p = 0;
  for (let i = 0; i < 12; i++) seen.push(p = nextPollMs(p));
  assert.equal(seen[0], POLL_MIN_MS);
  assert.equal(seen[1], POLL_MIN_MS * 1.5);
  assert.equal(seen.at(-1), POLL_MAX_MS);
  assert.ok(seen.every((x, i) => i === 0 || x >= seen[i - 1]!));
  assert.equal(nextPollMs(0, 10_000), 10_000);
});
