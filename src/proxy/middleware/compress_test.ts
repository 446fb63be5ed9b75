import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import zlib from "node:zlib";
import type { ClientRequest } from "../client_conn.ts";
import type { DispatchSink } from "../conn_info.ts";
import { COMPRESSORS_MAX, compressorsRunning, CompressSink } from "./compress.ts";

/** A sink that records what reaches the client; `full` makes `write` say "wait". */
class FakeSink implements DispatchSink {
  status = 0;
  headers: readonly string[] = [];
  chunks: Buffer[] = [];
  trailers: readonly string[] | null = null;
  headersSent = false;
  writableEnded = false;
  destroyed = false;
  shouldKeepAlive = true;
  forwarded = false;
  onAbort: (() => void) | null = null;
  full = false;
  #drain: (() => void)[] = [];
  readonly ended = Promise.withResolvers<void>();

  writeHead(status: number, _reason: string, headers: readonly string[]): void {
    this.status = status;
    this.headers = headers;
    this.headersSent = true;
  }
  write(chunk: Uint8Array): boolean {
    this.chunks.push(Buffer.from(chunk));
    return !this.full;
  }
  end(chunk?: Uint8Array): void {
    if (chunk) this.chunks.push(Buffer.from(chunk));
    this.writableEnded = true;
    this.ended.resolve();
  }
  destroy(): void {
    this.destroyed = true;
  }
  once(_event: "drain", fn: () => void): void {
    this.#drain.push(fn);
  }
  writeTrailers(headers: readonly string[]): void {
    this.trailers = headers;
  }
  /** The client read everything: `drain`. */
  drain(): void {
    this.full = false;
    const fns = this.#drain;
    this.#drain = [];
    for (const fn of fns) fn();
  }
  header(name: string): string | undefined {
    for (let i = 0; i < this.headers.length; i += 2) {
      if (this.headers[i]!.toLowerCase() === name) return this.headers[i + 1];
    }
    return undefined;
  }
  get body(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function request(method: string, acceptEncoding?: string): ClientRequest {
  const rawHeaders = ["Host", "x"];
  if (acceptEncoding !== undefined) rawHeaders.push("Accept-Encoding", acceptEncoding);
  return { method, url: "/", rawHeaders, remoteAddress: "127.0.0.1", body: null };
}

const TEXT = Buffer.from(
  JSON.stringify(Array.from({ length: 400 }, (_, i) => ({ i, s: "berth" }))),
);

Deno.test("CompressSink gzips a JSON response for a client that accepts gzip", async () => {
  const inner = new FakeSink();
  const sink = new CompressSink(inner, request("GET", "gzip"), ["br", "gzip"]);
  sink.writeHead(200, "OK", [
    "Content-Type",
    "application/json",
    "Content-Length",
    String(TEXT.length),
    "ETag",
    '"v1"',
  ]);
  assert.ok(sink.compressing);
  sink.write(TEXT.subarray(0, 1000));
  sink.end(TEXT.subarray(1000));
  assert.ok(sink.writableEnded); // the proxy is done; the compressor flushes on
  await inner.ended.promise;
  assert.equal(inner.header("content-encoding"), "gzip");
  assert.equal(inner.header("content-length"), undefined);
  assert.equal(inner.header("etag"), 'W/"v1"');
  assert.equal(inner.header("vary"), "Accept-Encoding");
  assert.ok(inner.body.length < TEXT.length / 4, `${inner.body.length} bytes`);
  assert.deepEqual(zlib.gunzipSync(inner.body), TEXT);
});

Deno.test("CompressSink uses Brotli when the client weighs it as gzip", async () => {
  const inner = new FakeSink();
  const sink = new CompressSink(inner, request("GET", "gzip, deflate, br"), ["br", "gzip"]);
  sink.writeHead(200, "", ["content-type", "text/html"]);
  sink.end(TEXT);
  await inner.ended.promise;
  assert.equal(inner.header("content-encoding"), "br");
  assert.deepEqual(zlib.brotliDecompressSync(inner.body), TEXT);
});

Deno.test("CompressSink passes a response it does not compress through unchanged", async (t) => {
  const cases: [string, ClientRequest, number, string[], string[]][] = [
    ["HEAD", request("HEAD", "gzip"), 200, ["content-type", "text/html"], [
      "content-type",
      "text/html",
      "vary",
      "Accept-Encoding",
    ]],
    ["no Accept-Encoding", request("GET"), 200, ["content-type", "text/html"], [
      "content-type",
      "text/html",
      "vary",
      "Accept-Encoding",
    ]],
    ["an image", request("GET", "gzip"), 200, ["content-type", "image/png"], [
      "content-type",
      "image/png",
    ]],
    ["already encoded", request("GET", "gzip"), 200, [
      "content-type",
      "text/html",
      "content-encoding",
      "br",
    ], ["content-type", "text/html", "content-encoding", "br"]],
  ];
  for (const [name, req, status, headers, want] of cases) {
    await t.step(name, () => {
      const inner = new FakeSink();
      const sink = new CompressSink(inner, req, ["br", "gzip"]);
      sink.writeHead(status, "", headers);
      assert.ok(!sink.compressing);
      sink.write(TEXT);
      sink.end();
      assert.deepEqual(inner.headers, want);
      assert.deepEqual(inner.body, TEXT);
      assert.ok(inner.writableEnded);
    });
  }
});

Deno.test("CompressSink holds backpressure: a full client pauses the compressor, then the proxy", async () => {
  const inner = new FakeSink();
  inner.full = true; // the client reads nothing
  const sink = new CompressSink(inner, request("GET", "gzip"), ["gzip"]);
  sink.writeHead(200, "", ["content-type", "text/plain"]);
  // Incompressible bytes, so output comes as fast as input goes in: 1 MiB of them, written
  // on although the sink says wait after the first.
  const noise = Buffer.from(crypto.getRandomValues(new Uint8Array(64 * 1024)));
  assert.equal(sink.write(noise), false);
  for (let i = 1; i < 16; i++) sink.write(noise);
  const drained = new Promise<void>((resolve) => sink.once("drain", resolve));
  await new Promise((r) => setTimeout(r, 50));
  // One output chunk went out and was refused; the compressor waits with the rest.
  assert.equal(inner.chunks.length, 1);
  inner.drain(); // the client reads: the compressor goes on, and then the proxy
  await drained;
  sink.end();
  await inner.ended.promise;
  assert.equal(zlib.gunzipSync(inner.body).length, 16 * noise.length);
});

Deno.test("CompressSink destroys the compressor when the client goes away", async () => {
  const inner = new FakeSink();
  let told = 0;
  inner.onAbort = () => told++; // what the proxy set before the middleware wrapped the sink
  const sink = new CompressSink(inner, request("GET", "br"), ["br"]);
  sink.writeHead(200, "", ["content-type", "text/plain"]);
  sink.write(TEXT);
  assert.equal(compressorsRunning(), 1);
  inner.onAbort!(); // the connection closed
  assert.equal(told, 1);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(compressorsRunning(), 0);
  assert.equal(sink.write(TEXT), true); // writes after it are dropped
  sink.end();
  assert.ok(!inner.writableEnded);
});

Deno.test("CompressSink sends trailers after the compressed body", async () => {
  const inner = new FakeSink();
  const sink = new CompressSink(inner, request("GET", "gzip"), ["gzip"]);
  sink.writeHead(200, "", ["content-type", "application/json"]);
  sink.write(TEXT);
  sink.writeTrailers!(["x-checksum", "1"]);
  assert.equal(inner.trailers, null);
  sink.end();
  await inner.ended.promise;
  assert.deepEqual(inner.trailers, ["x-checksum", "1"]);
  assert.deepEqual(zlib.gunzipSync(inner.body), TEXT);
});

Deno.test("CompressSink runs at most COMPRESSORS_MAX compressors; the rest go uncompressed", async () => {
  const sinks: CompressSink[] = [];
  for (let i = 0; i < COMPRESSORS_MAX; i++) {
    const s = new CompressSink(new FakeSink(), request("GET", "gzip"), ["gzip"]);
    s.writeHead(200, "", ["content-type", "text/plain"]);
    assert.ok(s.compressing);
    sinks.push(s);
  }
  const inner = new FakeSink();
  const over = new CompressSink(inner, request("GET", "gzip"), ["gzip"]);
  over.writeHead(200, "", ["content-type", "text/plain"]);
  assert.ok(!over.compressing);
  assert.equal(inner.header("vary"), "Accept-Encoding");
  for (const s of sinks) s.destroy();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(compressorsRunning(), 0);
});

Deno.test("CompressSink flushes a streamed response (no length) when the instance's data pauses", async () => {
  for (const coding of ["gzip", "br"] as const) {
    const inner = new FakeSink();
    const sink = new CompressSink(inner, request("GET", coding), ["gzip", "br"]);
    sink.writeHead(200, "OK", ["content-type", "application/json"]);
    const decoder = coding === "gzip" ? zlib.createGunzip() : zlib.createBrotliDecompress();
    let text = "";
    const first = Promise.withResolvers<void>();
    decoder.on("data", (d: Buffer) => {
      text += d.toString();
      if (text.includes("\n")) first.resolve();
    });
    const write = inner.write.bind(inner);
    inner.write = (chunk) => (decoder.write(chunk), write(chunk));
    const event = JSON.stringify({ event: 1, pad: "x".repeat(100) }) + "\n";
    sink.write(Buffer.from(event));
    // Nothing more comes until the client has the first event (a watch, a long poll).
    const stuck = setTimeout(() => first.reject(new Error(`${coding}: not flushed`)), 5_000);
    try {
      await first.promise;
    } finally {
      clearTimeout(stuck);
    }
    assert.equal(text, event, coding);
    assert.equal(inner.writableEnded, false);
    sink.end(Buffer.from('{"event":2}\n'));
    await inner.ended.promise;
    decoder.end();
    await new Promise((r) => decoder.once("end", r));
    assert.equal(text, event + '{"event":2}\n', coding);
  }
});

Deno.test("CompressSink does not flush a response of known length before its end", async () => {
  const inner = new FakeSink();
  const sink = new CompressSink(inner, request("GET", "gzip"), ["gzip"]);
  const body = Buffer.from("y".repeat(4000));
  sink.writeHead(200, "OK", ["content-type", "text/plain", "content-length", "8000"]);
  sink.write(body);
  await new Promise((r) => setTimeout(r, 20)); // turns pass: no flush is due
  const before = inner.body.length;
  sink.end(body);
  await inner.ended.promise;
  assert.equal(zlib.gunzipSync(inner.body).length, 8000);
  assert.ok(before < 20, `${before} bytes before the end (the gzip header at most)`);
});
