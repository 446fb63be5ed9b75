import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createRequestParser, loadRequestParser, type ParsedHead } from "./_llhttp.ts";

Deno.test("loadRequestParser() loads llhttp once, after which requests parse", async () => {
  const first = loadRequestParser();
  assert.equal(loadRequestParser(), first);
  await first;
  const heads: ParsedHead[] = [];
  let body = "";
  const p = createRequestParser(1024, {
    onHead: (h) => heads.push(h),
    onBody: (chunk) => body += chunk.toString("latin1"),
    onComplete: () => {},
  });
  const wire =
    "PUT /a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
  assert.equal(p.execute(Buffer.from(wire, "latin1")), wire.length);
  p.free();
  assert.deepEqual(heads.map((h) => [h.method, h.url, h.versionMinor]), [
    ["PUT", "/a", 0],
    ["GET", "/b", 1],
  ]);
  assert.equal(body, "abc");
});
