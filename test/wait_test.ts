import assert from "node:assert/strict";
import { waitFor } from "./wait.ts";

Deno.test("waitFor() resolves with the first value that is not undefined or false", async () => {
  let calls = 0;
  const v = await waitFor(
    "the third call",
    () => ++calls === 3 ? "done" : calls === 1 ? false : undefined,
    {
      intervalMs: 1,
    },
  );
  assert.equal(v, "done");
  assert.equal(calls, 3);
});

Deno.test("waitFor() treats a throw as not yet and keeps polling", async () => {
  let calls = 0;
  const v = await waitFor("no throw", async () => {
    if (++calls < 3) throw new Error("not ready");
    return await Promise.resolve(calls);
  }, { intervalMs: 1 });
  assert.equal(v, 3);
});

Deno.test("waitFor() rejects after the timeout naming what and the last error", async () => {
  await assert.rejects(
    waitFor("the moon", () => {
      throw new Error("cloudy");
    }, { timeoutMs: 20, intervalMs: 1 }),
    /timed out after 20ms waiting for the moon \(last error: cloudy\)/,
  );
});
