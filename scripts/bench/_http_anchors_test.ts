import assert from "node:assert/strict";
import { haproxyHttpConfig, nginxProxyConfig } from "./_http_anchors.ts";
import { wrkFigures } from "./http.ts";

const o = { dir: "/tmp/x", host: "127.0.0.1", port: 8080, backendPort: 9090 };

Deno.test("nginxProxyConfig() sets worker_processes and proxies to the side's backend", () => {
  const auto = nginxProxyConfig({ ...o, workers: "auto" });
  assert.match(auto, /^worker_processes auto;$/m);
  assert.match(auto, /upstream backend \{ server 127\.0\.0\.1:9090; keepalive 64; \}/);
  assert.match(auto, /listen 127\.0\.0\.1:8080;/);
  assert.match(nginxProxyConfig({ ...o, workers: 2 }), /^worker_processes 2;$/m);
});

Deno.test("haproxyHttpConfig() sets nbthread when given a count, HAProxy's default for auto", () => {
  assert.match(haproxyHttpConfig({ ...o, workers: 2 }), /^ {2}nbthread 2$/m);
  assert.doesNotMatch(haproxyHttpConfig({ ...o, workers: "auto" }), /nbthread/);
  assert.match(haproxyHttpConfig({ ...o, workers: 1 }), /server b1 127\.0\.0\.1:9090/);
});

Deno.test("wrkFigures() reads requests/s, p50, p99 and errors of a wrk --latency report", () => {
  const out = `Running 2s test @ http://127.0.0.1:2000/
  Latency Distribution
     50%  610.00us
     75%    0.90ms
     90%    1.20ms
     99%    3.06ms
  10116 requests in 2.00s, 1.60MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 12
Requests/sec:   5058.21
`;
  assert.deepEqual(wrkFigures(out), { rate: 5058.21, p50Ms: 0.61, p99Ms: 3.06, errors: 15 });
  assert.throws(() => wrkFigures("Requests/sec: 1\n     99%  1.00ms\n"), /no 50% line/);
});
