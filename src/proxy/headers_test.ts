import assert from "node:assert/strict";
import { responseHeaders } from "./headers.ts";

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
