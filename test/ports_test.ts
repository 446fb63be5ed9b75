import assert from "node:assert/strict";
import { unusedPort } from "./ports.ts";

Deno.test("unusedPort() gives a port that refuses connections", async () => {
  const port = await unusedPort();
  assert.ok(port > 0 && port < 65536);
  await assert.rejects(
    Deno.connect({ hostname: "127.0.0.1", port }),
    Deno.errors.ConnectionRefused,
  );
});
