import assert from "node:assert/strict";
import { parseWrk, tail } from "./_measure.ts";

Deno.test("tail() answers the nearest-rank p50 and p99 of a sample", () => {
  const ms = Array.from({ length: 200 }, (_, i) => 200 - i); // 200 … 1, unsorted on purpose
  assert.deepEqual(tail(ms), { p50: 100, p99: 198, n: 200 });
  assert.deepEqual(tail([7]), { p50: 7, p99: 7, n: 1 });
  assert.equal(tail([]).n, 0);
});

Deno.test("parseWrk() reads requests/s, the 50% and 99% latency in ms and the non-2xx count", () => {
  const out = `Running 2s test @ http://127.0.0.2:2000/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   610.00us    2.10ms  60.80ms   98.00%
  Latency Distribution
     50%  610.00us
     75%    0.90ms
     90%    1.20ms
     99%    1.06s
  10116 requests in 2.00s, 1.60MB read
  Non-2xx or 3xx responses: 12
Requests/sec:   5058.21
Transfer/sec:    819.00KB
`;
  assert.deepEqual(parseWrk(out), { rps: 5058.21, p50: 0.61, p99: 1060, non2xx: 12 });
  assert.throws(() => parseWrk("wrk: connection refused"), /wrk output not understood/);
});
