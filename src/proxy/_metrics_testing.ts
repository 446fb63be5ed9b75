/**
 * Test helpers of the proxy's metrics: a finished request's record and an instance.
 *
 * @module
 */
import type { Target } from "./balancer.ts";
import type { ProxyMetrics } from "./proxy_metrics.ts";
import type { MetricsRecord } from "./request_record.ts";

/** A 200 of service web on route web.example/, `over` changed. */
export function record(over: Partial<MetricsRecord> = {}): MetricsRecord {
  return {
    service: "web",
    route: "web.example/",
    status: 200,
    bytesIn: 100,
    bytesOut: 1000,
    attempts: 1,
    durationMs: 3,
    ...over,
  };
}

/** An instance of `service`. */
export const instance = (service: string | undefined): Target => ({
  id: "i1",
  service,
  address: "127.0.0.1",
  port: 1,
  weight: 1,
  key: "i1|127.0.0.1|1",
});

/** `r` begun and ended on `m`. */
export function served(m: ProxyMetrics, r: MetricsRecord): void {
  m.begin(r.service, r.route);
  m.end(r);
}
