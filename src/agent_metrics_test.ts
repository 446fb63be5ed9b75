import assert from "node:assert/strict";
import { dataPlaneMetrics } from "./agent_metrics.ts";
import { emptySnapshot } from "./proxy/proxy_metrics.ts";
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
