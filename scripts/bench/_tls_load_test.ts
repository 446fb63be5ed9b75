import assert from "node:assert/strict";
import {
  h2loadLogP99,
  parseH2load,
  parseWrk,
  quantile,
  summarizeCurl,
  wrkDurationMs,
} from "./_tls_load.ts";

const WRK = `Running 1s test @ https://127.0.0.1:24443/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   364.10us  622.63us   7.35ms   92.85%
    Req/Sec     3.59k     1.28k    5.69k    70.00%
  Latency Distribution
     50%  174.00us
     75%  319.00us
     90%  746.00us
     99%    3.46ms
  3578 requests in 1.00s, 506.65KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   3567.02
Transfer/sec:    505.10KB
`;

const H2LOAD = `starting benchmark...
spawning thread #0: 32 total client(s). Timing-based test with 1s of warm-up time and 2s of main duration for measurements.
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2

finished in 2.00s, 24924.50 req/s, 1.02MB/s
requests: 49849 total, 50169 started, 49849 done, 49840 succeeded, 9 failed, 2 errored, 1 timeout
status codes: 49840 2xx, 0 3xx, 2 4xx, 5 5xx
`;

Deno.test("wrkDurationMs() reads wrk's µs, ms and s", () => {
  assert.equal(wrkDurationMs("812.00us"), 0.812);
  assert.equal(wrkDurationMs("3.46ms"), 3.46);
  assert.equal(wrkDurationMs("1.50s"), 1500);
  assert.throws(() => wrkDurationMs("3.46 parsecs"), /not understood/);
});

Deno.test("parseWrk() takes req/s and the 99% line, and counts socket errors and non-2xx", () => {
  assert.deepEqual(parseWrk(WRK), { rps: 3567.02, p99Ms: 3.46, errors: 7 });
  assert.throws(() => parseWrk("unable to connect to 127.0.0.1:1"), /not understood/);
});

Deno.test("summarizeCurl() counts 200s over the time, others as errors, p99 in ms", () => {
  const lines = Array.from({ length: 100 }, (_, i) => `@ ${((i + 1) / 1000).toFixed(3)} 200`);
  lines.push("@ 0.001 000", "@ 0.002 502", "a stray body line");
  const r = summarizeCurl(lines, 2_000);
  assert.equal(r.rps, 50);
  assert.equal(r.errors, 2);
  assert.equal(r.p99Ms, 100);
});

Deno.test("parseH2load() needs h2 and counts its failed requests (non-2xx, resets, timeouts)", () => {
  assert.deepEqual(parseH2load(H2LOAD), { rps: 24924.5, errors: 9 });
  assert.throws(
    () => parseH2load(H2LOAD.replace("Application protocol: h2", "No protocol negotiated")),
    /did not negotiate h2/,
  );
});

Deno.test("h2loadLogP99() takes the third column (µs) of the per-request log", () => {
  const log = Array.from({ length: 200 }, (_, i) => `1700000000${i}\t200\t${(i + 1) * 10}`);
  assert.equal(h2loadLogP99(log.join("\n") + "\n"), 1.99);
  assert.ok(Number.isNaN(quantile([], 0.99)));
});
