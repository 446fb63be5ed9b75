import assert from "node:assert/strict";
import type http from "node:http";
import { request, spec, startBackend, TestStore, withProxy } from "./_testing.ts";

Deno.test("HttpProxy answers 503 to a request that waited queueTimeoutMs for an instance's busy connections", async () => {
  const held: http.ServerResponse[] = [];
  const a = await startBackend("a", (req, res) => {
    if (req.url === "/hang") return void held.push(res);
    res.end("a fast");
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    // The idle sweep that ends queued waits runs every idleTimeoutMs / 8.
    await withProxy(
      ts,
      { socketsMax: 1, queueTimeoutMs: 300, idleTimeoutMs: 400 },
      async (port) => {
        const hanging = request(port, "/hang");
        while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
        const queued = await request(port, "/fast");
        assert.equal(queued.status, 503);
        assert.match(queued.body, /service web: instance web-a has all its connections busy/);
        held[0]!.end("released");
        assert.equal((await hanging).body, "released");
        assert.equal((await request(port, "/fast")).body, "a fast", "the connection serves again");
      },
    );
  } finally {
    for (const r of held) r.end();
    await a.close();
  }
});
