/**
 * The Prometheus text of the proxy's metrics (README "Metrics"): `renderProxyMetrics` of a
 * snapshot (one ProxyMetrics', or the merged one of the proxy workers).
 *
 * @module
 */
import { family, labelsOpen, sample, sampleValue } from "../lib/prom_text.ts";
import {
  ACTIVE,
  BUCKET,
  CODE,
  CONNECTIONS,
  DURATION_BUCKETS_S,
  OTHER,
  type ProxyMetricsSnapshot,
  RECEIVED,
  requestsOf,
  RETRIES,
  SENT,
  SERIES_MAX,
  type ServiceSeriesData,
  STATUS_CLASSES,
  SUM,
} from "./proxy_metrics.ts";

const byLabels = <T extends { service: string; route?: string }>(a: T, b: T) =>
  a.service < b.service
    ? -1
    : a.service > b.service
    ? 1
    : (a.route ?? "") < (b.route ?? "")
    ? -1
    : (a.route ?? "") > (b.route ?? "")
    ? 1
    : 0;

/** `,code="2xx"} ` by status class: what follows a series' labelsOpen. */
const CODE_LABELS = STATUS_CLASSES.map((c) => `,code="${c}"} `);
/** `,le="0.005"} ` by bucket, the last `+Inf`. */
const LE_LABELS = [...DURATION_BUCKETS_S.map((b) => `,le="${sampleValue(b)}"} `), `,le="+Inf"} `];

/** The Prometheus text of a (merged) snapshot; every family is listed, even when empty. */
export function renderProxyMetrics(s: ProxyMetricsSnapshot): string {
  const routes = [...s.routes].sort(byLabels);
  const services = [...s.services].sort(byLabels);
  const requests: string[] = [];
  const duration: string[] = [];
  const received: string[] = [];
  const sent: string[] = [];
  const retries: string[] = [];
  const tcp: string[] = [];
  const tcpActive: string[] = [];
  const udp: string[] = [];
  const udpActive: string[] = [];
  // Each label set is escaped once and each line is one concatenation: at the cap (2000 label
  // sets, ~4.8 MB of text) building a label array and escaping it per line took ~4 times as long.
  for (const r of routes) {
    const open = labelsOpen([["service", r.service], ["route", r.route]]);
    const labels = open + "} ";
    const c = r.counts;
    const n = requestsOf(c);
    for (let i = 0; i < STATUS_CLASSES.length; i++) {
      const v = c[CODE + i]!;
      if (v > 0) {
        requests.push(`berth_proxy_requests_total${open}${CODE_LABELS[i]}${sampleValue(v)}`);
      }
    }
    if (n > 0) {
      let total = 0;
      for (let i = 0; i <= DURATION_BUCKETS_S.length; i++) {
        total += c[BUCKET + i]!;
        duration.push(`berth_proxy_request_duration_seconds_bucket${open}${LE_LABELS[i]}${total}`);
      }
      duration.push(`berth_proxy_request_duration_seconds_sum${labels}${sampleValue(c[SUM]!)}`);
      duration.push(`berth_proxy_request_duration_seconds_count${labels}${total}`);
      retries.push(`berth_proxy_retries_total${labels}${sampleValue(c[RETRIES]!)}`);
    }
    const connections = c[CONNECTIONS]!;
    if (connections > 0 && r.route.startsWith("udp:")) {
      udp.push(`berth_proxy_udp_flows_total${labels}${sampleValue(connections)}`);
      udpActive.push(`berth_proxy_udp_active_flows${labels}${sampleValue(c[ACTIVE]!)}`);
    } else if (connections > 0) {
      tcp.push(`berth_proxy_tcp_connections_total${labels}${sampleValue(connections)}`);
      tcpActive.push(`berth_proxy_tcp_active_connections${labels}${sampleValue(c[ACTIVE]!)}`);
    }
    received.push(`berth_proxy_received_bytes_total${labels}${sampleValue(c[RECEIVED]!)}`);
    sent.push(`berth_proxy_sent_bytes_total${labels}${sampleValue(c[SENT]!)}`);
  }
  const svc = (name: string, pick: (v: ServiceSeriesData) => number) =>
    services.map((v) => sample(name, [["service", v.service]], pick(v)));
  return [
    family(
      "berth_proxy_requests_total",
      "counter",
      "HTTP requests finished, by service, route and status class.",
      requests,
    ),
    family(
      "berth_proxy_request_duration_seconds",
      "histogram",
      "HTTP request duration (routing to the last byte sent), by service and route.",
      duration,
    ),
    family(
      "berth_proxy_received_bytes_total",
      "counter",
      "Bytes received from clients (HTTP requests, TCP routes), by service and route.",
      received,
    ),
    family(
      "berth_proxy_sent_bytes_total",
      "counter",
      "Bytes sent to clients (HTTP responses, TCP routes), by service and route.",
      sent,
    ),
    family(
      "berth_proxy_retries_total",
      "counter",
      "HTTP requests sent again to another instance, by service and route.",
      retries,
    ),
    family(
      "berth_proxy_active_requests",
      "gauge",
      "HTTP requests under way, by service.",
      svc("berth_proxy_active_requests", (v) => v.active),
    ),
    family(
      "berth_proxy_tcp_connections_total",
      "counter",
      "Client connections to TCP routes, by service and route (tcp:PORT).",
      tcp,
    ),
    family(
      "berth_proxy_tcp_active_connections",
      "gauge",
      "Client connections to TCP routes open now, by service and route.",
      tcpActive,
    ),
    family(
      "berth_proxy_udp_flows_total",
      "counter",
      "Client flows (address and port) on UDP routes, by service and route (udp:PORT).",
      udp,
    ),
    family(
      "berth_proxy_udp_active_flows",
      "gauge",
      "Client flows on UDP routes open now, by service and route.",
      udpActive,
    ),
    family(
      "berth_proxy_ejections_total",
      "counter",
      "Instances ejected by passive health, by service.",
      svc("berth_proxy_ejections_total", (v) => v.ejections),
    ),
    family(
      "berth_proxy_connect_errors_total",
      "counter",
      "Connections to instances that failed before connecting (refused, unreachable, timeout), by service.",
      svc("berth_proxy_connect_errors_total", (v) => v.connectErrors),
    ),
    family(
      "berth_proxy_metrics_overflow_total",
      "counter",
      `Observations counted under service="${OTHER}" because ${SERIES_MAX} label sets were in use.`,
      [sample("berth_proxy_metrics_overflow_total", [], s.overflow)],
    ),
    family(
      "berth_proxy_client_connections",
      "gauge",
      "Client connections open now (HTTP/1.1, HTTP/2, TLS handshakes).",
      [sample("berth_proxy_client_connections", [], s.clientConnections)],
    ),
  ].join("");
}
