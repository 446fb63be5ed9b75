import assert from "node:assert/strict";
import { h2ResponseHeaders, headerListBytes, readH2RequestHead } from "./h2_headers.ts";

const BASE = [":method", "GET", ":scheme", "https", ":path", "/p?q=1", ":authority", "web.test"];

Deno.test("readH2RequestHead() takes method, path and :authority as Host", () => {
  const head = readH2RequestHead([...BASE, "accept", "*/*", "te", "trailers"], 16384);
  assert.deepEqual(head, {
    method: "GET",
    url: "/p?q=1",
    rawHeaders: ["host", "web.test", "accept", "*/*", "te", "trailers"],
    trailers: true,
  });
});

Deno.test("readH2RequestHead() joins cookie fields with '; ' (RFC 9113 §8.2.3)", () => {
  const head = readH2RequestHead([...BASE, "cookie", "a=1", "x", "y", "cookie", "b=2"], 16384);
  assert.ok(!("status" in head));
  assert.deepEqual(head.rawHeaders, ["host", "web.test", "cookie", "a=1; b=2", "x", "y"]);
  assert.equal(head.trailers, false);
});

Deno.test("readH2RequestHead() takes Host when there is no :authority", () => {
  const raw = [":method", "GET", ":scheme", "https", ":path", "/", "host", "Web.Test"];
  const head = readH2RequestHead(raw, 16384);
  assert.ok(!("status" in head));
  assert.deepEqual(head.rawHeaders, ["host", "Web.Test"]);
});

Deno.test("readH2RequestHead() refuses bad requests with the status to answer", () => {
  const cases: [string[], number, RegExp][] = [
    [[...BASE, "x-big", "a".repeat(2000)], 431, /too large/],
    [[":method", "CONNECT", ":authority", "web.test:443"], 405, /CONNECT/],
    [[":method", "GET", ":scheme", "https", ":path", "/"], 400, /no :authority/],
    [[...BASE, "host", "other.test"], 400, /differs/],
    [[...BASE.slice(0, 6), "host", "a.test", "host", "a.test"], 400, /more than one Host/],
  ];
  for (const [raw, status, text] of cases) {
    const r = readH2RequestHead(raw, 1024);
    assert.ok("status" in r, JSON.stringify(raw).slice(0, 60));
    assert.equal(r.status, status);
    assert.match(r.text, text);
  }
  // The same authority in Host (case aside) is no conflict.
  assert.ok(!("status" in readH2RequestHead([...BASE, "host", "WEB.test"], 1024)));
});

Deno.test("headerListBytes() counts name + value + 32 per field (RFC 9113 §6.5.2)", () => {
  assert.equal(headerListBytes(["ab", "cde", "f", ""]), 2 + 3 + 32 + 1 + 0 + 32);
  const raw = [...BASE];
  const limit = headerListBytes(raw);
  assert.ok(!("status" in readH2RequestHead(raw, limit)));
  assert.equal((readH2RequestHead(raw, limit - 1) as { status: number }).status, 431);
});

Deno.test("h2ResponseHeaders() lower-cases names, drops connection-specific ones, keeps repeats", () => {
  const out = h2ResponseHeaders(200, [
    "Content-Type",
    "text/plain",
    "Connection",
    "close",
    "Keep-Alive",
    "timeout=5",
    "Transfer-Encoding",
    "chunked",
    "Proxy-Connection",
    "x",
    "Upgrade",
    "h2c",
    "TE",
    "trailers",
    "Set-Cookie",
    "a=1",
    "set-cookie",
    "b=2",
  ]);
  assert.deepEqual(out, [
    ":status",
    "200",
    "content-type",
    "text/plain",
    "set-cookie",
    "a=1",
    "set-cookie",
    "b=2",
  ]);
  assert.deepEqual(h2ResponseHeaders(null, ["Grpc-Status", "0"]), ["grpc-status", "0"]);
});

Deno.test("h2ResponseHeaders() throws on a name or value no HTTP field may hold", () => {
  for (const bad of [["", "v"], ["a b", "v"], [":path", "/"], ["x", "a\r\nb"], ["x", "a\0"]]) {
    assert.throws(() => h2ResponseHeaders(200, bad), /invalid header/, JSON.stringify(bad));
  }
});
