import assert from "node:assert/strict";
import http2 from "node:http2";
import type { DispatchSink } from "./conn_info.ts";
import type { Dispatch } from "./h2_frontend.ts";
import { FRAME, getFrame, RawH2Client, requestBlock, withH2 } from "./_h2_testing.ts";

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("H2Frontend.close() sends GOAWAY twice (2^31-1, then the last stream), resets streams left REFUSED_STREAM if no instance got them, CANCEL if unanswered, else INTERNAL_ERROR", async () => {
  const sinks = new Map<string, DispatchSink>();
  const dispatch: Dispatch = (req, res) => {
    sinks.set(req.url, res);
    if (req.url === "/forwarded") res.forwarded = true; // as the proxy marks a request sent on
    if (req.url === "/started") {
      res.forwarded = true;
      res.writeHead(200, "", []);
      res.write(new Uint8Array([1]));
    }
  };
  await withH2({ dispatch, closeGraceMs: 300 }, async (port, h2) => {
    const raw = await RawH2Client.connect(port);
    try {
      raw.send(getFrame(1, requestBlock("/queued", "web.test")));
      raw.send(getFrame(3, requestBlock("/forwarded", "web.test")));
      raw.send(getFrame(5, requestBlock("/started", "web.test")));
      await until(() => sinks.size === 3, "three requests");
      await h2.close();
      await until(() => raw.closed, "the connection closed");
      const goaways = raw.frames.filter((f) => f.type === FRAME.GOAWAY).map((f) => [
        f.payload.readUInt32BE(0) & 0x7fffffff,
        f.payload.readUInt32BE(4),
      ]);
      assert.deepEqual(goaways, [[2 ** 31 - 1, 0], [5, 0]]);
      const resets = raw.resets();
      assert.equal(resets.get(1), NGHTTP2_REFUSED_STREAM);
      assert.equal(resets.get(3), NGHTTP2_CANCEL);
      assert.equal(resets.get(5), NGHTTP2_INTERNAL_ERROR, "a cut-off response never looks whole");
    } finally {
      raw.close();
    }
  });
});
