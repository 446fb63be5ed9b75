import assert from "node:assert/strict";
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import type { Dispatch } from "./h2_frontend.ts";
import { h2Connect, testTls, withH2 } from "./_h2_testing.ts";

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
