import assert from "node:assert/strict";
import { dataPlaneMetrics } from "./agent_metrics.ts";
import { emptySnapshot } from "./proxy/proxy_metrics.ts";
import { zeroCounts } from "./dns/dns_metrics.ts";
import { parseExposition, valueOf } from "./lib/_prom_parse.ts";
import type { WorkersMetrics } from "./proxy/workers/proxy_workers.ts";

const empty = (accessLogDropped: number | null): WorkersMetrics => ({
  snapshot: emptySnapshot(),
  missing: [],
  accessLogDropped,
});

Deno.test("dataPlaneMetrics() counts the access log's dropped lines only when it is on", async () => {
  const on = await dataPlaneMetrics(null, { metrics: () => Promise.resolve(empty(7)) });
  assert.match(on, /^# TYPE berth_access_log_dropped_total counter$/m);
  assert.match(on, /^berth_access_log_dropped_total 7$/m);
  const off = await dataPlaneMetrics(null, { metrics: () => Promise.resolve(empty(null)) });
  assert.doesNotMatch(off, /berth_access_log_dropped_total/);
});

Deno.test("dataPlaneMetrics() names the workers that did not answer, per part, in valid text", async () => {
  const counts = zeroCounts();
  counts[0] = 5; // NOERROR A
  const out = await dataPlaneMetrics(
    { queryCounts: () => Promise.resolve({ counts, missing: [1] }) },
    { metrics: () => Promise.resolve({ ...empty(null), missing: [0, 2] }) },
  );
  const e = parseExposition(out);
  assert.equal(valueOf(e, "berth_metrics_workers_unanswered", { part: "proxy" }), 2);
  assert.equal(valueOf(e, "berth_metrics_workers_unanswered", { part: "dns" }), 1);
  assert.equal(valueOf(e, "berth_dns_queries_total", { rcode: "NOERROR", qtype: "A" }), 5);
  assert.deepEqual(e.comments, [
    "# proxy worker 0 did not answer in time: its last counts are shown",
    "# proxy worker 2 did not answer in time: its last counts are shown",
    "# dns worker 1 did not answer in time: its last counts are shown",
  ]);
  // Off parts write nothing.
  assert.equal(await dataPlaneMetrics(null, null), "");
});
