import assert from "node:assert/strict";
import { notConnected } from "./jepsen_client.ts";

Deno.test("notConnected() tells a refused connection (nothing sent) from other fetch failures", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close(); // nothing listens there now
  const refused = await fetch(`http://127.0.0.1:${port}/v1/kv/k`, { method: "PUT", body: "v" })
    .then(() => undefined, (e) => e);
  assert.ok(refused !== undefined);
  assert.equal(notConnected(refused), true);
  assert.equal(notConnected(new DOMException("timed out", "TimeoutError")), false);
  assert.equal(notConnected(new TypeError("error reading a body from connection")), false);
});
