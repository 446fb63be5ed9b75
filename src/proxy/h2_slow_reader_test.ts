import assert from "node:assert/strict";
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import type { Dispatch } from "./h2_frontend.ts";
import { h2Connect, h2Request, testTls, withH2, withH2Proxy } from "./_h2_testing.ts";
import type http from "node:http";
import { spec, startBackend, TestStore } from "./_testing.ts";

const { NGHTTP2_CANCEL } = http2.constants;
const GET = { ":method": "GET", ":path": "/", ":authority": "web.test" };

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A dispatch that streams 1 MiB as fast as the stream takes it; counts aborted responses. */
function bigResponse(state: { aborted: number; dispatched: number }): Dispatch {
  return (_req, res) => {
    state.dispatched++;
    res.onAbort = () => state.aborted++;
    res.writeHead(200, "", []);
    let sent = 0;
    const pump = () => {
      while (sent < 1024 * 1024) {
        sent += 16384;
        if (!res.write(Buffer.alloc(16384, 1))) return res.once("drain", pump);
      }
      res.end();
    };
    pump();
  };
}

Deno.test("H2Frontend resets a response the client's zero window holds for sendStallMs, aborting its request", async () => {
  const state = { aborted: 0, dispatched: 0 };
  await withH2({ dispatch: bigResponse(state), sendStallMs: 300 }, async (port) => {
    const client = http2.connect(`https://127.0.0.1:${port}`, {
      ca: testTls().caPem,
      servername: "web.test",
      settings: { initialWindowSize: 0 }, // lets no DATA out
    });
    client.on("error", () => {});
    try {
      const req = client.request(GET);
      let code = -1;
      req.on("error", () => {});
      req.once("close", () => code = req.rstCode ?? -1);
      await until(() => state.aborted === 1, "the stalled response aborted");
      await until(() => code !== -1, "the stream reset");
      assert.equal(code, NGHTTP2_CANCEL);
    } finally {
      client.destroy();
    }
  });
});

Deno.test("H2Frontend lets a slow reader that keeps opening its window outlast sendStallMs", async () => {
  const state = { aborted: 0, dispatched: 0 };
  await withH2({ dispatch: bigResponse(state), sendStallMs: 300 }, async (port) => {
    const client = h2Connect(port);
    try {
      const req = client.request(GET);
      let got = 0;
      req.pause();
      const ended = new Promise<void>((resolve) => req.once("end", resolve));
      req.on("data", (d: Buffer) => got += d.length);
      // Reads what came every 20 ms (each read opens the window again): about 1 s in all.
      const reader = setInterval(() => req.read(), 20);
      await ended;
      clearInterval(reader);
      assert.equal(got, 1024 * 1024);
      assert.equal(state.aborted, 0);
    } finally {
      client.close();
    }
  });
});

Deno.test("HTTP/2: one client connection holds at most ownerSocketsMax instance connections; other clients are not held up", async () => {
  const held: http.ServerResponse[] = [];
  const a = await startBackend("a", (req, res) => {
    if (req.url === "/hang") return void held.push(res);
    res.end("a fast");
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withH2Proxy(ts, { ownerSocketsMax: 2 }, async (port) => {
      const greedy = h2Connect(port);
      const other = h2Connect(port);
      try {
        const hanging = Array.from(
          { length: 3 },
          () => h2Request(greedy, { ...GET, ":path": "/hang" }),
        );
        await until(() => held.length === 2, "two requests at the instance");
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(held.length, 2, "the third waits for one of its connection's two");
        assert.equal((await h2Request(other, GET)).body.toString(), "a fast");
        held[0]!.end("done");
        await until(() => held.length === 3, "the third request at the instance");
        held[1]!.end("done");
        held[2]!.end("done");
        for (const r of await Promise.all(hanging)) assert.equal(r.body.toString(), "done");
      } finally {
        greedy.close();
        other.close();
      }
    });
  } finally {
    for (const r of held) r.end();
    await a.close();
  }
});
