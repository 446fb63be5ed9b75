import assert from "node:assert/strict";
import net from "node:net";
import type http from "node:http";
import { rawClient, request, spec, startBackend, TestStore, withProxy } from "./_testing.ts";

/**
 * Runs `fn` on a proxy whose instance holds every response (`held`; the paths in `seen`), with
 * one connection and one queue place (`berth.http.max-conns`).
 */
async function withHoldingInstance(
  fn: (port: number, held: http.ServerResponse[], seen: string[]) => Promise<void>,
): Promise<void> {
  const held: http.ServerResponse[] = [];
  const seen: string[] = [];
  const a = await startBackend("a", (req, res) => {
    seen.push(req.url ?? "");
    held.push(res);
  });
  const ts = new TestStore();
  ts.register(spec({
    id: "web-a",
    port: a.port,
    meta: { "berth.http.max-conns": "1", "berth.http.max-conns.queue": "1" },
  }));
  try {
    await withProxy(ts, {}, (port) => fn(port, held, seen));
  } finally {
    for (const r of held) r.end();
    await a.close();
  }
}

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

Deno.test("HttpProxy withdraws a queued request whose client half-closed (FIN): never sent, its queue place freed", async () => {
  await withHoldingInstance(async (port, held, seen) => {
    const r1 = request(port, "/r1");
    r1.catch(() => {}); // awaited below; a failed assertion first must not leave it unhandled
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    // r2 is queued behind r1, then its client gives up with a FIN (not a reset).
    const r2 = await rawClient(port, "GET /r2 HTTP/1.1\r\nhost: web.test\r\n\r\n", {
      end: true,
    });
    assert.deepEqual(r2, { received: "", closed: true }, "withdrawn and closed, unanswered");
    // Its place in the queue is free again: r3 waits there, not 503.
    const r3 = request(port, "/r3");
    await new Promise((r) => setTimeout(r, 50)); // r3 queued (a full queue answers at once)
    held[0]!.end("r1 done");
    assert.equal((await r1).body, "r1 done");
    while (held.length < 2) await new Promise((r) => setTimeout(r, 5));
    held[1]!.end("r3 done");
    assert.equal((await r3).body, "r3 done");
    assert.deepEqual(seen, ["/r1", "/r3"], "r2 never reached the instance");
  });
});

Deno.test("HttpProxy withdraws a queued request whose client resets its connection: never sent", async () => {
  await withHoldingInstance(async (port, held, seen) => {
    const r1 = request(port, "/r1");
    r1.catch(() => {});
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    const s = net.connect(port, "127.0.0.1");
    s.on("error", () => {});
    await new Promise<void>((r) => s.once("connect", () => r()));
    s.write("GET /r2 HTTP/1.1\r\nhost: web.test\r\n\r\n");
    await new Promise((r) => setTimeout(r, 50)); // r2 queued
    s.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 50));
    const r3 = request(port, "/r3");
    await new Promise((r) => setTimeout(r, 50)); // r3 queued (a full queue answers at once)
    held[0]!.end("r1 done");
    assert.equal((await r1).body, "r1 done");
    while (held.length < 2) await new Promise((r) => setTimeout(r, 5));
    held[1]!.end("r3 done");
    assert.equal((await r3).body, "r3 done");
    assert.deepEqual(seen, ["/r1", "/r3"], "r2 never reached the instance");
  });
});
