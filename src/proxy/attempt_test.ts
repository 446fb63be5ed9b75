import assert from "node:assert/strict";
import { classifyFailure, type FailedAttempt, type Failure, foundClosed } from "./attempt.ts";

const base: FailedAttempt = {
  method: "GET",
  reused: false,
  wrote: true,
  bodyStarted: false,
  responseStarted: false,
  timeout: null,
};

Deno.test("classifyFailure() sends a replayable request found on a closed pooled connection to the same instance", () => {
  const cases: [Partial<FailedAttempt>, Failure][] = [
    [{}, "retryable"], // a new connection failed: the next instance
    [{ reused: true }, "stale"],
    [{ reused: true, method: "POST" }, "final"], // the instance may have read it
    [{ reused: true, method: "POST", wrote: false }, "stale"], // none of it was written
    [{ reused: true, method: "PUT", bodyStarted: true }, "final"], // the body is gone
    [{ reused: true, responseStarted: true }, "retryable"], // the instance answered something
    [{ reused: true, timeout: "ERESPONSETIMEOUT" }, "response timeout"],
    [{ method: "POST", wrote: false, timeout: "ECONNECTTIMEOUT" }, "retryable"],
    [{ method: "POST" }, "final"],
  ];
  for (const [over, want] of cases) {
    assert.equal(classifyFailure({ ...base, ...over }), want, JSON.stringify(over));
  }
});

Deno.test("foundClosed() holds for a reused connection that failed with no response and no timeout", () => {
  assert.equal(foundClosed({ ...base, reused: true }), true);
  assert.equal(foundClosed({ ...base, reused: true, method: "POST" }), true);
  assert.equal(foundClosed(base), false);
  assert.equal(foundClosed({ ...base, reused: true, responseStarted: true }), false);
  assert.equal(foundClosed({ ...base, reused: true, timeout: "ERESPONSETIMEOUT" }), false);
});
