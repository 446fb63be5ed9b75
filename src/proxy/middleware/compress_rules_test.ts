import assert from "node:assert/strict";
import {
  chooseEncoding,
  compressedHeaders,
  isCompressible,
  planCompression,
  responseFacts,
} from "./compress_rules.ts";

const BOTH = ["br", "gzip"] as const;

Deno.test("chooseEncoding() takes the coding with the highest q, br at equal q", async (t) => {
  const cases: [string | undefined, readonly ("br" | "gzip")[], string | null][] = [
    [undefined, BOTH, null],
    ["", BOTH, null],
    ["gzip, deflate, br", BOTH, "br"],
    ["gzip, deflate, br", ["gzip"], "gzip"],
    ["gzip, deflate, br", ["br"], "br"],
    ["gzip;q=1.0, br;q=0.8", BOTH, "gzip"],
    ["br;q=0.5, gzip;q=0.5", BOTH, "br"],
    ["gzip", BOTH, "gzip"],
    ["x-gzip", BOTH, "gzip"],
    ["GZIP;Q=0.3", BOTH, "gzip"],
    ["br;q=0, gzip;q=0", BOTH, null],
    ["*", BOTH, "br"],
    ["*;q=0.2, gzip;q=0.5", BOTH, "gzip"],
    ["*;q=0", BOTH, null],
    ["br;q=0, *", BOTH, "gzip"],
    ["identity", BOTH, null],
    ["deflate, compress", BOTH, null],
    ["gzip;q=abc", BOTH, "gzip"], // a malformed q: the default weight
    ["gzip;level=1;q=0.4, br;q=0.3", BOTH, "gzip"],
    ["gzip, gzip;q=0", BOTH, "gzip"], // the first of a repeated coding
    ["br", [], null],
  ];
  for (const [accept, offered, want] of cases) {
    await t.step(`${JSON.stringify(accept)} of ${offered} → ${want}`, () => {
      assert.equal(chooseEncoding(accept, offered), want);
    });
  }
});

Deno.test("isCompressible() knows text, JSON, JS, XML, SVG; not images, streams or events", () => {
  for (
    const t of [
      "text/html",
      "text/html; charset=utf-8",
      "TEXT/CSS",
      "text/plain",
      "application/json",
      "application/problem+json",
      "application/javascript",
      "application/xml",
      "application/atom+xml",
      "image/svg+xml",
      "application/wasm",
    ]
  ) assert.ok(isCompressible(t), t);
  for (
    const t of [
      undefined,
      "",
      "text/event-stream",
      "image/png",
      "image/jpeg",
      "application/octet-stream",
      "application/zip",
      "application/grpc",
      "video/mp4",
      "font/woff2",
    ]
  ) assert.ok(!isCompressible(t), String(t));
});

const GET = { method: "GET", acceptEncoding: "gzip, br" };
const JSON_2K = responseFacts(["Content-Type", "application/json", "Content-Length", "2048"]);

Deno.test("planCompression() compresses a compressible response the client accepts", () => {
  assert.deepEqual(planCompression(GET, 200, JSON_2K, BOTH), { encoding: "br", vary: true });
  // Unknown length (chunked): compressed.
  const chunked = responseFacts(["content-type", "text/html"]);
  assert.deepEqual(planCompression(GET, 200, chunked, ["gzip"]), { encoding: "gzip", vary: true });
  // Errors are bodies too.
  assert.deepEqual(planCompression(GET, 404, chunked, BOTH), { encoding: "br", vary: true });
});

Deno.test("planCompression() leaves alone what must not or need not be compressed", async (t) => {
  const none = { encoding: null, vary: false };
  const cases: [
    string,
    ReturnType<typeof planCompression>,
    typeof none | { encoding: null; vary: true },
  ][] = [
    ["101", planCompression(GET, 101, JSON_2K, BOTH), none],
    ["204", planCompression(GET, 204, JSON_2K, BOTH), none],
    ["206", planCompression(GET, 206, JSON_2K, BOTH), none],
    ["304", planCompression(GET, 304, JSON_2K, BOTH), none],
    [
      "Content-Range",
      planCompression(GET, 200, { ...JSON_2K, contentRange: "bytes 0-9/20" }, BOTH),
      none,
    ],
    ["encoded", planCompression(GET, 200, { ...JSON_2K, contentEncoding: "gzip" }, BOTH), none],
    [
      "no-transform",
      planCompression(GET, 200, { ...JSON_2K, cacheControl: "public, no-transform" }, BOTH),
      none,
    ],
    ["image/png", planCompression(GET, 200, { ...JSON_2K, contentType: "image/png" }, BOTH), none],
    ["no type", planCompression(GET, 200, { contentLength: "5000" }, BOTH), none],
    ["1023 bytes", planCompression(GET, 200, { ...JSON_2K, contentLength: "1023" }, BOTH), none],
    [
      "HEAD",
      planCompression({ ...GET, method: "HEAD" }, 200, JSON_2K, BOTH),
      { encoding: null, vary: true },
    ],
    [
      "no Accept-Encoding",
      planCompression({ method: "GET", acceptEncoding: undefined }, 200, JSON_2K, BOTH),
      { encoding: null, vary: true },
    ],
  ];
  for (const [name, got, want] of cases) await t.step(name, () => assert.deepEqual(got, want));
  // `identity` is no encoding; a 1024-byte body is compressed.
  assert.equal(
    planCompression(GET, 200, { ...JSON_2K, contentEncoding: "identity" }, BOTH).encoding,
    "br",
  );
  assert.equal(
    planCompression(GET, 200, { ...JSON_2K, contentLength: "1024" }, BOTH).encoding,
    "br",
  );
  // `no-transform-x` is not the directive.
  assert.equal(
    planCompression(GET, 200, { ...JSON_2K, cacheControl: "no-transform-x" }, BOTH).encoding,
    "br",
  );
});

Deno.test("responseFacts() reads the first of each field, any case, and joins Cache-Control", () => {
  assert.deepEqual(
    responseFacts([
      "CONTENT-TYPE",
      "text/html",
      "content-type",
      "text/plain",
      "Cache-Control",
      "public",
      "cache-control",
      "no-transform",
      "X-Other",
      "1",
    ]),
    { contentType: "text/html", cacheControl: "public, no-transform" },
  );
});

Deno.test("compressedHeaders() sets the encoding, drops the length, weakens the ETag, adds Vary", () => {
  const headers = [
    "Content-Type",
    "application/json",
    "Content-Length",
    "2048",
    "ETag",
    '"abc"',
    "Accept-Ranges",
    "bytes",
    "X-Keep",
    "1",
  ];
  assert.deepEqual(compressedHeaders(headers, { encoding: "gzip", vary: true }), [
    "Content-Type",
    "application/json",
    "ETag",
    'W/"abc"',
    "X-Keep",
    "1",
    "vary",
    "Accept-Encoding",
    "content-encoding",
    "gzip",
  ]);
  // A weak ETag stays as it is; an existing Vary gains the field once.
  assert.deepEqual(
    compressedHeaders(["etag", 'W/"x"', "Vary", "Origin"], { encoding: "br", vary: true }),
    ["etag", 'W/"x"', "Vary", "Origin, Accept-Encoding", "content-encoding", "br"],
  );
  assert.deepEqual(
    compressedHeaders(["Vary", "accept-encoding"], { encoding: "br", vary: true }),
    ["Vary", "accept-encoding", "content-encoding", "br"],
  );
  assert.deepEqual(compressedHeaders(["Vary", "*"], { encoding: null, vary: true }), ["Vary", "*"]);
  // Only Vary when not compressing: the length and ETag stay.
  assert.deepEqual(
    compressedHeaders(["Content-Length", "5", "ETag", '"a"'], { encoding: null, vary: true }),
    ["Content-Length", "5", "ETag", '"a"', "vary", "Accept-Encoding"],
  );
});
