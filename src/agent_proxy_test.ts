import assert from "node:assert/strict";
import { proxyNote } from "./agent_proxy.ts";

const http = { host: "127.0.0.1", port: 8080 };
const https = { host: "127.0.0.1", port: 8443 };

Deno.test("proxyNote: the plain listener carries the thread count", () => {
  assert.equal(
    proxyNote({ proxyHttp: http, proxyHttps: https, proxyWorkers: 2 }),
    "proxy 127.0.0.1:8080 (2 threads), https 127.0.0.1:8443",
  );
});

Deno.test("proxyNote: HTTPS alone carries the thread count", () => {
  assert.equal(
    proxyNote({ proxyHttp: null, proxyHttps: https, proxyWorkers: 1 }),
    "proxy off, https 127.0.0.1:8443 (1 thread)",
  );
});

Deno.test("proxyNote: no listener, no threads", () => {
  assert.equal(
    proxyNote({ proxyHttp: null, proxyHttps: null, proxyWorkers: 2 }),
    "proxy off, https off",
  );
});
