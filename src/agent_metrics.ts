/**
 * The data plane's part of `/metrics` (README "Metrics"): the proxy's request metrics and the
 * DNS query counts, each summed over its worker threads, and which workers did not answer in
 * time (a gauge per part and one comment line each; their last counts stand in for them).
 *
 * @module
 */
import type { DnsFront } from "./agent_dns.ts";
import type { ProxyFront } from "./agent_proxy.ts";
import { renderDnsMetrics } from "./dns/dns_metrics.ts";
import { family, sample } from "./lib/prom_text.ts";
import { renderProxyMetrics } from "./proxy/proxy_metrics_text.ts";

/** The proxy's and DNS's metrics text; a part that is off (null) writes nothing. */
export async function dataPlaneMetrics(
  dns: Pick<DnsFront, "queryCounts"> | null,
  proxy: Pick<ProxyFront, "metrics"> | null,
): Promise<string> {
  const [d, p] = await Promise.all([dns?.queryCounts() ?? null, proxy?.metrics() ?? null]);
  let out = "";
  const unanswered: string[] = [];
  const notes: string[] = [];
  const missing = (part: string, workers: number[]) => {
    unanswered.push(sample("berth_metrics_workers_unanswered", [["part", part]], workers.length));
    for (const w of workers) {
      notes.push(`# ${part} worker ${w} did not answer in time: its last counts are shown`);
    }
  };
  if (p !== null) {
    out += renderProxyMetrics(p.snapshot);
    missing("proxy", p.missing);
    if (p.accessLogDropped !== null) {
      out += family(
        "berth_access_log_dropped_total",
        "counter",
        "Access log lines dropped: the buffer was full (a slow disk) or a write failed.",
        [sample("berth_access_log_dropped_total", [], p.accessLogDropped)],
      );
    }
  }
  if (d !== null) {
    out += renderDnsMetrics(d.counts);
    missing("dns", d.missing);
  }
  if (unanswered.length === 0) return out;
  return out + family(
    "berth_metrics_workers_unanswered",
    "gauge",
    "Worker threads that did not send their counts in time for this scrape.",
    unanswered,
  ) + notes.map((n) => n + "\n").join("");
}
