import assert from "node:assert/strict";
import { HttpError, readBody } from "./http_error.ts";

const bytes = (n: number) => new Uint8Array(n).fill(118);

/** A request whose body comes as a stream of `chunks` (no Content-Length unless given). */
function streamed(chunks: Uint8Array[], headers: Record<string, string> = {}): Request {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const x of chunks) c.enqueue(x);
      c.close();
    },
  });
  return new Request("http://x/", { method: "PUT", body, headers });
}

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    assert.ok(e instanceof HttpError);
    return e.status;
  }
}

Deno.test("readBody() reads a body within its Content-Length whole", async () => {
  const r = streamed([bytes(100), bytes(156)], { "content-length": "256" });
  assert.deepEqual(await readBody(r, 256), bytes(256));
});

Deno.test("readBody() reads a body without Content-Length chunk by chunk up to the limit", async () => {
  assert.deepEqual(await readBody(streamed([bytes(3), bytes(4)]), 7), bytes(7));
  assert.equal(await status(readBody(streamed([bytes(3), bytes(5)]), 7)), 413);
});

Deno.test("readBody() refuses a declared length over the limit before reading", async () => {
  assert.equal(await status(readBody(streamed([bytes(1)], { "content-length": "9" }), 8)), 413);
});

Deno.test("readBody() refuses a body longer than the limit though its Content-Length says less", async () => {
  // Only a Request built in this process can lie (the HTTP server ends the body at its length).
  assert.equal(await status(readBody(streamed([bytes(9)], { "content-length": "2" }), 8)), 413);
  assert.deepEqual(await readBody(streamed([bytes(0)], { "content-length": "0" }), 8), bytes(0));
});

Deno.test("readBody() of a request without a body is empty", async () => {
  assert.deepEqual(await readBody(new Request("http://x/", { method: "PUT" }), 8), bytes(0));
});
