import assert from "node:assert/strict";
import type { Target } from "./balancer.ts";
import { parseExposition, valueOf } from "../lib/_prom_parse.ts";
import {
  bucketIndex,
  DURATION_BUCKETS_S,
  mergeAdmission,
  mergeProxySnapshots,
  type MetricsRecord,
  NONE,
  OTHER,
  ProxyMetrics,
  renderProxyMetrics,
  retiredSnapshot,
  statusClass,
} from "./proxy_metrics.ts";

function record(over: Partial<MetricsRecord> = {}): MetricsRecord {
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

const instance = (service: string | undefined): Target => ({
  id: "i1",
  service,
  address: "127.0.0.1",
  port: 1,
  weight: 1,
  key: "i1|127.0.0.1|1",
});

function served(m: ProxyMetrics, r: MetricsRecord): void {
  m.begin(r.service);
  m.end(r);
}

const text = (m: ProxyMetrics) => parseExposition(renderProxyMetrics(m.snapshot()));

Deno.test("statusClass() maps statuses to 1xx..5xx and anything else to 5xx", () => {
  const table: [number, string][] = [
    [101, "1xx"],
    [200, "2xx"],
    [204, "2xx"],
    [308, "3xx"],
    [
      404,
      "4xx",
    ],
    [499, "4xx"],
    [502, "5xx"],
    [599, "5xx"],
    [0, "5xx"],
    [600, "5xx"],
    [99, "5xx"],
  ];
  const names = ["1xx", "2xx", "3xx", "4xx", "5xx"];
  for (const [status, want] of table) assert.equal(names[statusClass(status)], want, `${status}`);
});

Deno.test("bucketIndex() puts a value on a bound into that bound's bucket, above all into +Inf", () => {
  assert.equal(bucketIndex(0), 0);
  assert.equal(bucketIndex(0.005), 0);
  assert.equal(bucketIndex(0.0051), 1);
  assert.equal(bucketIndex(1), DURATION_BUCKETS_S.indexOf(1));
  assert.equal(bucketIndex(60), DURATION_BUCKETS_S.length - 1);
  assert.equal(bucketIndex(61), DURATION_BUCKETS_S.length);
});

Deno.test("ProxyMetrics.end() counts requests by service, route and status class", () => {
  const m = new ProxyMetrics();
  for (let i = 0; i < 3; i++) served(m, record());
  served(m, record({ status: 503 }));
  served(m, record({ route: "web.example/api", status: 404 }));
  served(m, record({ service: null, route: null, status: 404 }));
  const e = text(m);
  const web = { service: "web", route: "web.example/" };
  assert.equal(valueOf(e, "berth_proxy_requests_total", { ...web, code: "2xx" }), 3);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { ...web, code: "5xx" }), 1);
  assert.equal(
    valueOf(e, "berth_proxy_requests_total", { route: "web.example/api", code: "4xx" }),
    1,
  );
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: NONE, route: NONE }), 1);
  assert.equal(valueOf(e, "berth_proxy_requests_total"), 6);
  assert.equal(valueOf(e, "berth_proxy_received_bytes_total", web), 400);
  assert.equal(valueOf(e, "berth_proxy_sent_bytes_total", web), 4000);
});

Deno.test("ProxyMetrics: the duration histogram fills cumulative buckets, _sum and _count", () => {
  const m = new ProxyMetrics();
  for (const ms of [1, 5, 20, 700, 90_000]) served(m, record({ durationMs: ms }));
  const e = text(m);
  const b = (le: string) =>
    valueOf(e, "berth_proxy_request_duration_seconds_bucket", { service: "web", le });
  assert.equal(b("0.005"), 2); // 1 ms and 5 ms (on the bound)
  assert.equal(b("0.01"), 2);
  assert.equal(b("0.025"), 3);
  assert.equal(b("0.5"), 3);
  assert.equal(b("1"), 4);
  assert.equal(b("60"), 4);
  assert.equal(b("+Inf"), 5);
  assert.equal(valueOf(e, "berth_proxy_request_duration_seconds_count"), 5);
  const sum = valueOf(e, "berth_proxy_request_duration_seconds_sum");
  assert.ok(Math.abs(sum - 90.726) < 1e-6, `sum ${sum}`);
});

Deno.test("ProxyMetrics: retries are attempts beyond the first; active requests rise and fall", () => {
  const m = new ProxyMetrics();
  served(m, record({ attempts: 3 }));
  served(m, record({ attempts: 1 }));
  served(m, record({ attempts: 0, status: 503 })); // answered by the proxy
  m.begin("web");
  m.begin("web");
  m.begin(null);
  let e = text(m);
  assert.equal(valueOf(e, "berth_proxy_retries_total", { service: "web" }), 2);
  assert.equal(valueOf(e, "berth_proxy_active_requests", { service: "web" }), 2);
  assert.equal(valueOf(e, "berth_proxy_active_requests", { service: NONE }), 1);
  m.end(record());
  m.end(record({ service: null, route: null, status: 404 }));
  e = text(m);
  assert.equal(valueOf(e, "berth_proxy_active_requests", { service: "web" }), 1);
  assert.equal(valueOf(e, "berth_proxy_active_requests", { service: NONE }), 0);
});

Deno.test("ProxyMetrics: TCP connections, pool ejections and connect errors", () => {
  const m = new ProxyMetrics();
  m.tcpOpened("db", 5432);
  m.tcpOpened("db", 5432);
  m.tcpClosed("db", 5432, 10, 20);
  m.ejected(instance("web"));
  m.connectFailed(instance("web"));
  m.connectFailed(instance("web"));
  m.connectFailed(instance(undefined));
  const e = text(m);
  const db = { service: "db", route: "tcp:5432" };
  assert.equal(valueOf(e, "berth_proxy_tcp_connections_total", db), 2);
  assert.equal(valueOf(e, "berth_proxy_tcp_active_connections", db), 1);
  assert.equal(valueOf(e, "berth_proxy_received_bytes_total", db), 10);
  assert.equal(valueOf(e, "berth_proxy_sent_bytes_total", db), 20);
  assert.equal(valueOf(e, "berth_proxy_ejections_total", { service: "web" }), 1);
  assert.equal(valueOf(e, "berth_proxy_connect_errors_total", { service: "web" }), 2);
  assert.equal(valueOf(e, "berth_proxy_connect_errors_total", { service: NONE }), 1);
  assert.equal(valueOf(e, "berth_proxy_requests_total", db), 0); // no HTTP lines for TCP
});

Deno.test("ProxyMetrics: label sets over the cap count under <other>, each in overflow", () => {
  const m = new ProxyMetrics({ seriesMax: 3 });
  for (let i = 0; i < 5; i++) served(m, record({ service: `s${i}`, route: `r${i}` }));
  served(m, record({ service: "s4", route: "r4" }));
  served(m, record({ service: "s0", route: "r0" })); // one it has: counted as itself
  const e = text(m);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "s0" }), 2);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "s3" }), 0);
  assert.equal(
    valueOf(e, "berth_proxy_requests_total", { service: OTHER, route: OTHER }),
    3,
  );
  assert.equal(valueOf(e, "berth_proxy_requests_total"), 7);
  const labelSets = new Set(
    e.samples.filter((s) => s.name === "berth_proxy_requests_total").map((s) => s.labels.service),
  );
  assert.deepEqual([...labelSets].sort(), [OTHER, "s0", "s1", "s2"]);
  // 3 requests over the cap, each counted once (the active gauge's moves are not counted).
  assert.equal(valueOf(e, "berth_proxy_metrics_overflow_total"), 3);
  m.tcpOpened("db", 1);
  m.tcpClosed("db", 1, 0, 0);
  m.connectFailed(instance("s9"));
  const after = text(m);
  assert.equal(valueOf(after, "berth_proxy_metrics_overflow_total"), 5);
  assert.equal(
    valueOf(after, "berth_proxy_connect_errors_total", { service: OTHER }),
    1,
  );
  assert.equal(valueOf(e, "berth_proxy_active_requests", { service: OTHER }), 0);
});

Deno.test("mergeProxySnapshots() sums the workers' counts series by series", () => {
  const a = new ProxyMetrics();
  const b = new ProxyMetrics();
  served(a, record());
  served(a, record({ durationMs: 2000 }));
  served(b, record());
  served(b, record({ service: "api", route: "api.example/" }));
  b.begin("web");
  a.ejected(instance("web"));
  b.ejected(instance("web"));
  a.tcpOpened("db", 5432);
  const e = parseExposition(renderProxyMetrics(mergeProxySnapshots([a.snapshot(), b.snapshot()])));
  const web = { service: "web", route: "web.example/" };
  assert.equal(valueOf(e, "berth_proxy_requests_total", web), 3);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "api" }), 1);
  assert.equal(valueOf(e, "berth_proxy_request_duration_seconds_count", web), 3);
  assert.equal(valueOf(e, "berth_proxy_request_duration_seconds_bucket", { ...web, le: "1" }), 2);
  assert.equal(valueOf(e, "berth_proxy_active_requests", { service: "web" }), 1);
  assert.equal(valueOf(e, "berth_proxy_ejections_total", { service: "web" }), 2);
  assert.equal(valueOf(e, "berth_proxy_tcp_connections_total", { service: "db" }), 1);
});

Deno.test("mergeProxySnapshots() applies the cap to the union of the workers' label sets", () => {
  const a = new ProxyMetrics();
  const b = new ProxyMetrics();
  served(a, record({ service: "x", route: "x/" }));
  served(a, record({ service: "y", route: "y/" }));
  served(b, record({ service: "z", route: "z/" }));
  served(b, record({ service: "x", route: "x/" }));
  const merged = mergeProxySnapshots([a.snapshot(), b.snapshot()], 2);
  const e = parseExposition(renderProxyMetrics(merged));
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "x" }), 2);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "y" }), 1);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "z" }), 0);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: OTHER }), 1);
  assert.equal(valueOf(e, "berth_proxy_requests_total"), 4);
  assert.equal(merged.overflow >= 1, true);
});

Deno.test("retiredSnapshot() keeps the counters of a stopped worker and zeroes its gauges", () => {
  const m = new ProxyMetrics();
  served(m, record());
  m.begin("web");
  m.tcpOpened("db", 5432);
  const e = parseExposition(renderProxyMetrics(retiredSnapshot(m.snapshot())));
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "web" }), 1);
  assert.equal(valueOf(e, "berth_proxy_active_requests", { service: "web" }), 0);
  assert.equal(valueOf(e, "berth_proxy_tcp_connections_total", { service: "db" }), 1);
  assert.equal(valueOf(e, "berth_proxy_tcp_active_connections", { service: "db" }), 0);
});

Deno.test("renderProxyMetrics() writes valid text: every family typed, label values escaped", () => {
  const m = new ProxyMetrics();
  served(m, record({ service: 'we"b', route: "a\\b\nc/" }));
  const out = renderProxyMetrics(m.snapshot());
  const e = parseExposition(out);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: 'we"b', route: "a\\b\nc/" }), 1);
  for (
    const name of [
      "berth_proxy_requests_total",
      "berth_proxy_request_duration_seconds",
      "berth_proxy_received_bytes_total",
      "berth_proxy_sent_bytes_total",
      "berth_proxy_retries_total",
      "berth_proxy_active_requests",
      "berth_proxy_tcp_connections_total",
      "berth_proxy_tcp_active_connections",
      "berth_proxy_ejections_total",
      "berth_proxy_connect_errors_total",
      "berth_proxy_metrics_overflow_total",
      "berth_proxy_client_connections",
    ]
  ) assert.ok(e.types.has(name), name);
  assert.equal(e.types.get("berth_proxy_request_duration_seconds"), "histogram");
  // An empty snapshot still lists every family, with no samples but the overflow counter.
  const empty = parseExposition(renderProxyMetrics(new ProxyMetrics().snapshot()));
  assert.equal(empty.types.size, e.types.size);
  assert.deepEqual(empty.samples.map((s) => s.name), [
    "berth_proxy_metrics_overflow_total",
    "berth_proxy_client_connections",
  ]);
});

Deno.test("ProxyMetrics.read(): client connections read at snapshot time, summed; a stopped worker's are 0", () => {
  const a = new ProxyMetrics();
  const b = new ProxyMetrics();
  let open = 3;
  a.read({ clientConnections: () => open });
  b.read({ clientConnections: () => 2 });
  open = 4;
  const merged = mergeProxySnapshots([a.snapshot(), b.snapshot()]);
  const e = parseExposition(renderProxyMetrics(merged));
  assert.equal(valueOf(e, "berth_proxy_client_connections"), 6);
  const stopped = parseExposition(renderProxyMetrics(retiredSnapshot(a.snapshot())));
  assert.equal(valueOf(stopped, "berth_proxy_client_connections"), 0);
});

Deno.test("mergeProxySnapshots() with one admission keeps a shown series and a folded one where they were; <other> never goes back", () => {
  const a = new ProxyMetrics();
  const b = new ProxyMetrics();
  served(a, record({ service: "s1", route: "r1" }));
  served(a, record({ service: "s2", route: "r2" }));
  served(a, record({ service: "s2", route: "r2" }));
  served(b, record({ service: "s3", route: "r3" }));
  const admitted = mergeAdmission();
  const scrape = (snaps = [a.snapshot(), b.snapshot()]) => {
    const merged = mergeProxySnapshots(snaps, 2, admitted);
    const e = parseExposition(renderProxyMetrics(merged));
    const n = (service: string) => valueOf(e, "berth_proxy_requests_total", { service });
    return { s1: n("s1"), s2: n("s2"), s3: n("s3"), other: n(OTHER), overflow: merged.overflow };
  };
  assert.deepEqual(scrape(), { s1: 1, s2: 2, s3: 0, other: 1, overflow: 1 });
  // A new route of s1 comes before s2's in a's snapshot: it must not push s2/r2 out.
  served(a, record({ service: "s1", route: "r1b" }));
  assert.deepEqual(scrape(), { s1: 1, s2: 2, s3: 0, other: 2, overflow: 2 });
  // The workers listed the other way round: the same series.
  assert.deepEqual(scrape([b.snapshot(), a.snapshot()]), {
    s1: 1,
    s2: 2,
    s3: 0,
    other: 2,
    overflow: 2,
  });
});

Deno.test("mergeProxySnapshots() admits new label sets in label order, not in the order listed", () => {
  const a = new ProxyMetrics();
  const b = new ProxyMetrics();
  served(a, record({ service: "zz", route: "z/" }));
  served(b, record({ service: "aa", route: "a/" }));
  const labels = (snaps: ReturnType<ProxyMetrics["snapshot"]>[]) =>
    mergeProxySnapshots(snaps, 1).routes.map((r) => r.service).sort();
  assert.deepEqual(labels([a.snapshot(), b.snapshot()]), [OTHER, "aa"]);
  assert.deepEqual(labels([b.snapshot(), a.snapshot()]), [OTHER, "aa"]);
});

Deno.test("ProxyMetrics: services named _other and _none are services like any other, capped, never the sentinels", () => {
  const m = new ProxyMetrics({ seriesMax: 1 });
  served(m, record({ service: "web", route: "web/" }));
  served(m, record({ service: "_other", route: "o/" })); // over the cap: folded
  served(m, record({ service: null, route: null })); // no route
  const e = text(m);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "_other" }), 0);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: OTHER }), 2);
  assert.equal(valueOf(e, "berth_proxy_metrics_overflow_total"), 2);
  m.begin("_none");
  assert.equal(valueOf(text(m), "berth_proxy_active_requests", { service: NONE }), 0);
});

Deno.test("ProxyMetrics: a 101 (a tunnel's lifetime) counts as a request, not in the duration histogram", () => {
  const m = new ProxyMetrics();
  served(m, record({ status: 101, durationMs: 3_600_000 }));
  served(m, record({ status: 200, durationMs: 20 }));
  const e = text(m);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { code: "1xx" }), 1);
  assert.equal(valueOf(e, "berth_proxy_request_duration_seconds_count"), 1);
  assert.equal(valueOf(e, "berth_proxy_request_duration_seconds_sum"), 0.02);
});
