import assert from "node:assert/strict";
import { misconfigured } from "./misconfigured.ts";
import { stateOf } from "./_request_testing.ts";

Deno.test("misconfigured(): answers every request 500 naming the key, never the value", async () => {
  const m = misconfigured("allow", "berth.http.allow");
  assert.equal(m.name, "allow");
  assert.equal(m.response, undefined);
  for (const client of ["127.0.0.1", "10.0.0.1", "::1"]) {
    assert.deepEqual(await m.request!(stateOf({ client })), {
      status: 500,
      text: "service misconfigured: bad berth.http.allow value",
    });
  }
});
