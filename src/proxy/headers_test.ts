import assert from "node:assert/strict";
import { readRequestHead, responseHeaders } from "./headers.ts";

Deno.test("responseHeaders() drops hop-by-hop headers in any case, keeps the rest as sent", () => {
  const raw = [
    "Server",
    "nginx",
    "CONNECTION",
    "keep-alive",
    "Keep-Alive",
    "timeout=5",
    "Transfer-Encoding",
    "chunked",
    "TE",
    "trailers",
    "Upgrade",
    "h2c",
    "Proxy-Authenticate",
    "Basic",
    "Content-Length",
    "3",
    "Date",
    "x",
    "Trailer",
    "X-T",
    "Expect",
    "100-continue",
    "HTTP2-Settings",
    "AAA",
    "Content-Type",
    "text/plain",
  ];
  assert.deepEqual(responseHeaders(raw), [
    "Server",
    "nginx",
    "Content-Length",
    "3",
    "Date",
    "x",
    "Content-Type",
    "text/plain",
  ]);
});

Deno.test("responseHeaders() drops the headers a Connection header names, never the framing", () => {
  const raw = ["Connection", "X-Hop, content-length", "X-Hop", "1", "Content-Length", "2"];
  assert.deepEqual(responseHeaders(raw), ["Content-Length", "2"]);
});

Deno.test("responseHeaders() with a request id says X-Request-Id once, in place of the instance's", () => {
  const raw = ["X-REQUEST-ID", "theirs", "Content-Type", "text/plain", "x-request-idx", "1"];
  assert.deepEqual(responseHeaders(raw, "ours"), [
    "Content-Type",
    "text/plain",
    "x-request-idx",
    "1",
    "x-request-id",
    "ours",
  ]);
  assert.deepEqual(responseHeaders(raw), raw);
});

Deno.test("readRequestHead() takes the first sane X-Request-Id apart and forwards none itself", () => {
  const req = (raw: string[]) => ({
    method: "GET",
    url: "/",
    rawHeaders: ["Host", "a.test", ...raw],
    remoteAddress: "10.0.0.1",
    body: null,
  });
  const head = readRequestHead(req(["X-Request-Id", "bad id", "x-request-id", "good"]), false);
  assert.equal(head.requestId, "good");
  assert.ok(!head.headers.some((h) => h.toLowerCase() === "x-request-id"));
  assert.equal(readRequestHead(req(["X-Request-Id", ""]), false).requestId, undefined);
  assert.equal(readRequestHead(req([]), false).requestId, undefined);
});

Deno.test("readRequestHead() drops the client's X-Forwarded-Proto/-Host/-Port/-Prefix/-Server/-User", () => {
  const raw = ["Host", "a.test"];
  for (const n of ["Proto", "Host", "Port", "Prefix", "Server", "User"]) {
    raw.push(`X-Forwarded-${n}`, "spoofed");
  }
  raw.push("X-Forwarded-For", "192.0.2.1", "X-Other", "kept");
  const head = readRequestHead(
    { method: "GET", url: "/", rawHeaders: raw, remoteAddress: "10.0.0.1", body: null },
    false,
  );
  assert.ok(!head.headers.includes("spoofed"), String(head.headers));
  assert.ok(head.headers.includes("192.0.2.1, 10.0.0.1"));
  assert.ok(head.headers.includes("kept"));
});
