/**
 * The proxy's request metrics (README "Metrics"): a request observer (`begin`/`end`, one
 * record per finished request), the TCP route observer and the upstream pool's events, counted
 * per service and route (HTTP: `host/prefix` of the route the request matched; TCP:
 * `tcp:PORT`; UDP: `udp:PORT`), never per path. A proxy worker keeps one of these and sends `snapshot()` (plain
 * data) when the main thread asks; the main thread sums them (`mergeProxySnapshots`) and
 * renders the text (`renderProxyMetrics`).
 *
 * Cardinality is bounded: at most SERIES_MAX (service, route) label sets and SERIES_MAX
 * services; what would need more is counted under `service="<other>"` (and `route="<other>"`),
 * and each request, TCP connection or pool event counted there adds one to `overflow`. Requests no route matched count under
 * `service="<none>"`. Series live as long as the process (a counter never goes back).
 *
 * Per request the cost is two map lookups and a few additions into one Float64Array.
 *
 * @module
 */
import { family, histogramSamples, sample } from "../lib/prom_text.ts";
import type { Target } from "./balancer.ts";
import type { PoolEvents } from "./upstream_pool.ts";
import type { RequestObserver, RequestRecord } from "./request_record.ts";
import type { TcpObserver } from "./tcp_proxy.ts";
import type { UdpObserver } from "./udp_proxy.ts";

/** Upper bounds (seconds) of the request duration histogram's buckets (then +Inf). */
export const DURATION_BUCKETS_S: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];
/** Most (service, route) label sets, and most services, each; more go to OTHER. */
export const SERIES_MAX = 2000;
/** The service (and route) label of what is over SERIES_MAX (no service name has `<`). */
export const OTHER = "<other>";
/** The service (and route) label of requests no route matched (404, 421, …). */
export const NONE = "<none>";
/** Status class labels: index `floor(status / 100) - 1`. */
export const STATUS_CLASSES: readonly string[] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/** What the metrics read of a finished request. */
export type MetricsRecord = Pick<
  RequestRecord,
  "service" | "route" | "status" | "bytesIn" | "bytesOut" | "attempts" | "durationMs"
>;

// Layout of one (service, route) series: status classes, histogram buckets (one per bound and
// +Inf), then the scalars.
const CODE = 0;
const BUCKET = CODE + STATUS_CLASSES.length;
const SUM = BUCKET + DURATION_BUCKETS_S.length + 1;
const RECEIVED = SUM + 1;
const SENT = RECEIVED + 1;
const RETRIES = SENT + 1;
const CONNECTIONS = RETRIES + 1;
/** A gauge: TCP connections or UDP flows open now (zeroed when a worker's counts retire). */
const ACTIVE = CONNECTIONS + 1;
const SERIES_LENGTH = ACTIVE + 1;

/** One (service, route) series as plain data. */
export interface RouteSeriesData {
  service: string;
  route: string;
  /** SERIES_LENGTH numbers in this module's layout. */
  counts: number[];
}

/** One service's series as plain data. */
export interface ServiceSeriesData {
  service: string;
  /** Requests under way (a gauge). */
  active: number;
  connectErrors: number;
  ejections: number;
}

/** Everything one ProxyMetrics counted, as plain data (structured clone). */
export interface ProxyMetricsSnapshot {
  routes: RouteSeriesData[];
  services: ServiceSeriesData[];
  /** Observations counted under OTHER because a cap was reached. */
  overflow: number;
  /** Client connections open now (a gauge; ProxyReadings). */
  clientConnections: number;
}

/** What the metrics read from the proxy at each snapshot. */
export interface ProxyReadings {
  /** Client connections open now (HTTP/1.1, HTTP/2, TLS handshakes). */
  clientConnections(): number;
}

/** A snapshot with nothing counted. */
export function emptySnapshot(): ProxyMetricsSnapshot {
  return { routes: [], services: [], overflow: 0, clientConnections: 0 };
}

interface ServiceSeries {
  active: number;
  connectErrors: number;
  ejections: number;
}

/** Index of `seconds` in DURATION_BUCKETS_S (its length: above the last bound). */
export function bucketIndex(seconds: number): number {
  const b = DURATION_BUCKETS_S;
  let i = 0;
  while (i < b.length && seconds > b[i]!) i++;
  return i;
}

/** Index of a status in STATUS_CLASSES; anything outside 100..599 counts as 5xx. */
export function statusClass(status: number): number {
  const c = Math.floor(status / 100) - 1;
  return c >= 0 && c < STATUS_CLASSES.length ? c : STATUS_CLASSES.length - 1;
}

/** See the module comment. The proxy's RequestObserver, TcpObserver and PoolEvents. */
export class ProxyMetrics implements RequestObserver, TcpObserver, UdpObserver, PoolEvents {
  readonly #routes = new Map<string, Map<string, Float64Array>>();
  #routeCount = 0;
  readonly #services = new Map<string, ServiceSeries>();
  #overflow = 0;
  readonly #seriesMax: number;
  #readings: Partial<ProxyReadings> = {};

  /** `seriesMax`: the cap on label sets (default SERIES_MAX; smaller in tests). */
  constructor(opts: { seriesMax?: number } = {}) {
    this.#seriesMax = opts.seriesMax ?? SERIES_MAX;
  }

  /** Where snapshots read the client connections from. */
  read(readings: Partial<ProxyReadings>): void {
    this.#readings = { ...this.#readings, ...readings };
  }

  /** A request was routed (service null: no route matched). */
  begin(service: string | null): void {
    this.#service(service ?? NONE, false).active++;
  }

  /** A request finished (any status, the proxy's own answers and 499 included). */
  end(r: MetricsRecord): void {
    const service = r.service ?? NONE;
    this.#service(service, false).active--;
    const c = this.#series(service, r.route ?? NONE);
    c[CODE + statusClass(r.status)]!++;
    // A tunnel's (101: WebSocket) lifetime is no request duration: left out of the histogram.
    if (r.status !== 101) {
      const seconds = r.durationMs / 1000;
      c[BUCKET + bucketIndex(seconds)]!++;
      c[SUM]! += seconds;
    }
    c[RECEIVED]! += r.bytesIn;
    c[SENT]! += r.bytesOut;
    if (r.attempts > 1) c[RETRIES]! += r.attempts - 1;
  }

  /** A client connected to the TCP route on `port` of `service`. */
  tcpOpened(service: string, port: number): void {
    const c = this.#series(service, `tcp:${port}`);
    c[CONNECTIONS]!++;
    c[ACTIVE]!++;
  }

  /** That connection closed, after `bytesIn` from the client and `bytesOut` to it. */
  tcpClosed(service: string, port: number, bytesIn: number, bytesOut: number): void {
    const c = this.#series(service, `tcp:${port}`, false);
    c[ACTIVE]!--;
    c[RECEIVED]! += bytesIn;
    c[SENT]! += bytesOut;
  }

  /** A client flow began on the UDP route on `port` of `service`. */
  udpFlowOpened(service: string, port: number): void {
    const c = this.#series(service, `udp:${port}`);
    c[CONNECTIONS]!++;
    c[ACTIVE]!++;
  }

  /** That flow ended, after `bytesIn` from the client and `bytesOut` to it. */
  udpFlowClosed(service: string, port: number, bytesIn: number, bytesOut: number): void {
    const c = this.#series(service, `udp:${port}`, false);
    c[ACTIVE]!--;
    c[RECEIVED]! += bytesIn;
    c[SENT]! += bytesOut;
  }

  /** Passive health ejected an instance (upstream_pool.ts PoolEvents). */
  ejected(t: Target): void {
    this.#service(t.service ?? NONE).ejections++;
  }

  /** A new connection to an instance failed before it connected (PoolEvents). */
  connectFailed(t: Target): void {
    this.#service(t.service ?? NONE).connectErrors++;
  }

  /** Everything counted so far, as plain data. */
  snapshot(): ProxyMetricsSnapshot {
    const routes: RouteSeriesData[] = [];
    for (const [service, byRoute] of this.#routes) {
      for (const [route, c] of byRoute) routes.push({ service, route, counts: Array.from(c) });
    }
    const services: ServiceSeriesData[] = [];
    for (const [service, s] of this.#services) services.push({ service, ...s });
    return {
      routes,
      services,
      overflow: this.#overflow,
      clientConnections: this.#readings.clientConnections?.() ?? 0,
    };
  }

  /** `count`: an observation that adds to overflow when folded (a close is not one). */
  #series(service: string, route: string, count = true): Float64Array {
    let byRoute = this.#routes.get(service);
    let c = byRoute?.get(route);
    if (c !== undefined) return c;
    if (this.#routeCount >= this.#seriesMax && service !== OTHER) {
      if (count) this.#overflow++;
      return this.#series(OTHER, OTHER, false);
    }
    if (byRoute === undefined) this.#routes.set(service, byRoute = new Map());
    byRoute.set(route, c = new Float64Array(SERIES_LENGTH));
    if (service !== OTHER) this.#routeCount++;
    return c;
  }

  /** `count`: an observation (not a gauge's move) that adds to overflow when folded. */
  #service(service: string, count = true): ServiceSeries {
    let s = this.#services.get(service);
    if (s !== undefined) return s;
    if (this.#services.size >= this.#seriesMax && service !== OTHER) {
      if (count) this.#overflow++;
      return this.#service(OTHER, false);
    }
    this.#services.set(service, s = { active: 0, connectErrors: 0, ejections: 0 });
    return s;
  }
}

/**
 * The label sets a merge gave their own series (`mergeProxySnapshots`): kept from one scrape to
 * the next, so that a label set once shown keeps its series and one once folded into OTHER
 * stays there (OTHER and `overflow` never go back). Sets are only added, never removed: series
 * live until the agent restarts (README "Metrics").
 */
export interface MergeAdmission {
  routes: Set<string>;
  services: Set<string>;
}

/** A fresh MergeAdmission (nothing admitted yet). */
export function mergeAdmission(): MergeAdmission {
  return { routes: new Set(), services: new Set() };
}

/**
 * The sum of several snapshots (one per proxy worker), with the same caps: label sets not yet
 * in `admitted` are admitted in label order (not in the order the snapshots list them) while
 * fewer than `seriesMax` are; the others are added into OTHER. Pass the same `admitted` to
 * every merge of one output (the scrapes) so that the choice never changes.
 */
export function mergeProxySnapshots(
  snaps: readonly ProxyMetricsSnapshot[],
  seriesMax = SERIES_MAX,
  admitted: MergeAdmission = mergeAdmission(),
): ProxyMetricsSnapshot {
  const routeKey = (r: RouteSeriesData) => `${r.service}\n${r.route}`;
  admit(
    admitted.routes,
    snaps.flatMap((s) => s.routes.filter((r) => r.service !== OTHER).map(routeKey)),
    seriesMax,
  );
  admit(
    admitted.services,
    snaps.flatMap((s) => s.services.filter((v) => v.service !== OTHER).map((v) => v.service)),
    seriesMax,
  );
  const routes = new Map<string, RouteSeriesData>();
  const services = new Map<string, ServiceSeriesData>();
  let overflow = 0;
  let clientConnections = 0;
  for (const s of snaps) {
    overflow += s.overflow;
    clientConnections += s.clientConnections;
    for (const r of s.routes) {
      let key = routeKey(r);
      if (r.service !== OTHER && !admitted.routes.has(key)) {
        key = `${OTHER}\n${OTHER}`;
        overflow += requestsOf(r.counts) + r.counts[CONNECTIONS]!;
      }
      let into = routes.get(key);
      if (into === undefined) {
        const [service, route] = key.split("\n") as [string, string];
        routes.set(key, into = { service, route, counts: new Array(SERIES_LENGTH).fill(0) });
      }
      for (let i = 0; i < SERIES_LENGTH; i++) into.counts[i]! += r.counts[i] ?? 0;
    }
    for (const v of s.services) {
      let service = v.service;
      if (service !== OTHER && !admitted.services.has(service)) {
        service = OTHER;
        overflow += v.connectErrors + v.ejections;
      }
      let into = services.get(service);
      if (into === undefined) {
        services.set(service, into = { service, active: 0, connectErrors: 0, ejections: 0 });
      }
      into.active += v.active;
      into.connectErrors += v.connectErrors;
      into.ejections += v.ejections;
    }
  }
  return {
    routes: [...routes.values()],
    services: [...services.values()],
    overflow,
    clientConnections,
  };
}

/** Admits the new ones of `keys`, in sorted order, while `into` has fewer than `max`. */
function admit(into: Set<string>, keys: string[], max: number): void {
  if (into.size >= max) return;
  const fresh = [...new Set(keys.filter((k) => !into.has(k)))].sort();
  for (const k of fresh) {
    if (into.size >= max) return;
    into.add(k);
  }
}

/** A snapshot with its gauges zeroed: the counts of a worker that stopped, kept in the sums. */
export function retiredSnapshot(s: ProxyMetricsSnapshot): ProxyMetricsSnapshot {
  return {
    routes: s.routes.map((r) => {
      const counts = r.counts.slice();
      counts[ACTIVE] = 0;
      return { ...r, counts };
    }),
    services: s.services.map((v) => ({ ...v, active: 0 })),
    overflow: s.overflow,
    clientConnections: 0,
  };
}

function requestsOf(counts: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < STATUS_CLASSES.length; i++) n += counts[CODE + i]!;
  return n;
}

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
  for (const r of routes) {
    const labels = [["service", r.service], ["route", r.route]] as const;
    const c = r.counts;
    const n = requestsOf(c);
    for (let i = 0; i < STATUS_CLASSES.length; i++) {
      if (c[CODE + i]! > 0) {
        requests.push(
          sample(
            "berth_proxy_requests_total",
            [...labels, ["code", STATUS_CLASSES[i]!]],
            c[CODE + i]!,
          ),
        );
      }
    }
    if (n > 0) {
      const buckets = c.slice(BUCKET, BUCKET + DURATION_BUCKETS_S.length + 1);
      duration.push(
        ...histogramSamples(
          "berth_proxy_request_duration_seconds",
          labels,
          DURATION_BUCKETS_S,
          buckets,
          c[SUM]!,
        ),
      );
      retries.push(sample("berth_proxy_retries_total", labels, c[RETRIES]!));
    }
    if (c[CONNECTIONS]! > 0 && r.route.startsWith("udp:")) {
      udp.push(sample("berth_proxy_udp_flows_total", labels, c[CONNECTIONS]!));
      udpActive.push(sample("berth_proxy_udp_active_flows", labels, c[ACTIVE]!));
    } else if (c[CONNECTIONS]! > 0) {
      tcp.push(sample("berth_proxy_tcp_connections_total", labels, c[CONNECTIONS]!));
      tcpActive.push(sample("berth_proxy_tcp_active_connections", labels, c[ACTIVE]!));
    }
    received.push(sample("berth_proxy_received_bytes_total", labels, c[RECEIVED]!));
    sent.push(sample("berth_proxy_sent_bytes_total", labels, c[SENT]!));
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
