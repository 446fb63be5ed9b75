import assert from "node:assert/strict";
import { parseExposition, valueOf } from "../lib/_prom_parse.ts";
import { OTHER, ProxyMetrics, type ProxyMetricsSnapshot, SERIES_LENGTH } from "./proxy_metrics.ts";
import { renderProxyMetrics } from "./proxy_metrics_text.ts";
import { ProxyMetricsMerge } from "./proxy_metrics_merge.ts";
import { instance, record, served } from "./_metrics_testing.ts";

/** The merge of `snaps` as sources 0, 1, … (one scrape). */
function mergeOnce(snaps: ProxyMetricsSnapshot[], seriesMax?: number): ProxyMetricsSnapshot {
  const m = new ProxyMetricsMerge({ seriesMax });
  snaps.forEach((s, i) => m.update(i, s));
  return m.merged();
}

const exposition = (s: ProxyMetricsSnapshot) => parseExposition(renderProxyMetrics(s));

/** Requests of `service` in a merged snapshot; undefined: no such series. */
const requestsOf = (s: ProxyMetricsSnapshot, service: string) =>
  s.routes.find((r) => r.service === service)?.counts.slice(0, 5).reduce((a, b) => a + b, 0);

Deno.test("ProxyMetricsMerge sums the sources' counts series by series", () => {
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
  const e = exposition(mergeOnce([a.snapshot(), b.snapshot()]));
  const web = { service: "web", route: "web.example/" };
  assert.equal(valueOf(e, "berth_proxy_requests_total", web), 3);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "api" }), 1);
  assert.equal(valueOf(e, "berth_proxy_request_duration_seconds_count", web), 3);
  assert.equal(valueOf(e, "berth_proxy_request_duration_seconds_bucket", { ...web, le: "1" }), 2);
  assert.equal(valueOf(e, "berth_proxy_active_requests", { service: "web" }), 1);
  assert.equal(valueOf(e, "berth_proxy_ejections_total", { service: "web" }), 2);
  assert.equal(valueOf(e, "berth_proxy_tcp_connections_total", { service: "db" }), 1);
});

Deno.test("ProxyMetricsMerge applies the cap to the union of the sources' label sets", () => {
  const a = new ProxyMetrics();
  const b = new ProxyMetrics();
  served(a, record({ service: "x", route: "x/" }));
  served(a, record({ service: "y", route: "y/" }));
  served(b, record({ service: "z", route: "z/" }));
  served(b, record({ service: "x", route: "x/" }));
  const merged = mergeOnce([a.snapshot(), b.snapshot()], 2);
  const e = exposition(merged);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "x" }), 2);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "y" }), 1);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "z" }), 0);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: OTHER }), 1);
  assert.equal(valueOf(e, "berth_proxy_requests_total"), 4);
  assert.equal(merged.overflow >= 1, true);
});

Deno.test("ProxyMetricsMerge keeps a shown series and a folded one where they were, scrape after scrape; <other> never goes back", () => {
  const a = new ProxyMetrics();
  const b = new ProxyMetrics();
  served(a, record({ service: "s1", route: "r1" }));
  served(a, record({ service: "s2", route: "r2" }));
  served(a, record({ service: "s2", route: "r2" }));
  served(b, record({ service: "s3", route: "r3" }));
  const merge = new ProxyMetricsMerge({ seriesMax: 2 });
  const scrape = () => {
    merge.update(0, a.snapshot());
    merge.update(1, b.snapshot());
    const merged = merge.merged();
    const e = exposition(merged);
    const n = (service: string) => valueOf(e, "berth_proxy_requests_total", { service });
    return { s1: n("s1"), s2: n("s2"), s3: n("s3"), other: n(OTHER), overflow: merged.overflow };
  };
  assert.deepEqual(scrape(), { s1: 1, s2: 2, s3: 0, other: 1, overflow: 1 });
  // A new route of s1 sorts before s2's: it must not push s2/r2 out.
  served(a, record({ service: "s1", route: "r1b" }));
  assert.deepEqual(scrape(), { s1: 1, s2: 2, s3: 0, other: 2, overflow: 2 });
});

Deno.test("ProxyMetricsMerge admits new label sets in label order, not in the order listed", () => {
  const a = new ProxyMetrics();
  const b = new ProxyMetrics();
  served(a, record({ service: "zz", route: "z/" }));
  served(b, record({ service: "aa", route: "a/" }));
  const labels = (snaps: ProxyMetricsSnapshot[]) =>
    mergeOnce(snaps, 1).routes.map((r) => r.service).sort();
  assert.deepEqual(labels([a.snapshot(), b.snapshot()]), [OTHER, "aa"]);
  assert.deepEqual(labels([b.snapshot(), a.snapshot()]), [OTHER, "aa"]);
});

Deno.test("ProxyMetricsMerge.stopped() keeps a source's counters, zeroes its gauges and client connections", () => {
  const a = new ProxyMetrics();
  const b = new ProxyMetrics();
  let open = 3;
  a.read({ clientConnections: () => open });
  b.read({ clientConnections: () => 2 });
  open = 4;
  served(a, record());
  a.begin("web");
  a.tcpOpened("db", 5432);
  const merge = new ProxyMetricsMerge();
  merge.update(0, a.snapshot());
  merge.update(1, b.snapshot());
  assert.equal(valueOf(exposition(merge.merged()), "berth_proxy_client_connections"), 6);
  merge.stopped(0);
  const e = exposition(merge.merged());
  assert.equal(valueOf(e, "berth_proxy_client_connections"), 2);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "web" }), 1);
  assert.equal(valueOf(e, "berth_proxy_active_requests", { service: "web" }), 0);
  assert.equal(valueOf(e, "berth_proxy_tcp_connections_total", { service: "db" }), 1);
  assert.equal(valueOf(e, "berth_proxy_tcp_active_connections", { service: "db" }), 0);
});

/** Two sources and a merge on one clock the test moves; retention 1000 ms. */
function twoSources(seriesMax?: number) {
  const clock = { t: 1_000_000 };
  const now = () => clock.t;
  const a = new ProxyMetrics({ retentionMs: 1000, now });
  const b = new ProxyMetrics({ retentionMs: 1000, now });
  const merge = new ProxyMetricsMerge({ retentionMs: 1000, now, seriesMax });
  const scrape = () => {
    merge.update(0, a.snapshot());
    merge.update(1, b.snapshot());
    return merge.merged();
  };
  return { clock, a, b, merge, scrape };
}

Deno.test("ProxyMetricsMerge: a series one source expired and another still has never goes back; it goes with the last", () => {
  const { clock, a, b, scrape } = twoSources();
  for (let i = 0; i < 5; i++) served(a, record());
  served(b, record());
  assert.equal(requestsOf(scrape(), "web"), 6);
  const seen: number[] = [];
  // b goes on serving web now and then; a never again: a drops it after 1000 ms.
  for (let step = 0; step < 12; step++) {
    clock.t += 250;
    if (step % 3 === 0) served(b, record());
    seen.push(requestsOf(scrape(), "web")!);
  }
  assert.deepEqual(seen, [7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 10]);
  assert.equal(a.snapshot().routes.length, 0, "a dropped it");
  // b served last 750 ms ago: the series goes from the sum once b drops it, not before.
  const last: (number | undefined)[] = [];
  for (let step = 0; step < 4; step++) {
    clock.t += 250;
    last.push(requestsOf(scrape(), "web"));
  }
  assert.deepEqual(last, [10, undefined, undefined, undefined]);
  // It comes back from 0 (a counter reset).
  served(a, record());
  assert.equal(requestsOf(scrape(), "web"), 1);
});

Deno.test("ProxyMetricsMerge: a stopped source's series stay until the retention after they were last seen", () => {
  const { clock, a, merge, scrape } = twoSources();
  served(a, record());
  scrape();
  merge.stopped(0);
  clock.t += 999;
  assert.equal(requestsOf(merge.merged(), "web"), 1);
  clock.t += 1;
  assert.equal(requestsOf(merge.merged(), "web"), undefined);
  assert.equal(scrape().routes.length, 0);
});

Deno.test("ProxyMetricsMerge: a series a source made again between two snapshots (a new birth) adds on, never back", () => {
  const snap = (requests: number, born: number): ProxyMetricsSnapshot => {
    const counts = new Array(SERIES_LENGTH).fill(0);
    counts[1] = requests;
    return {
      routes: [{ service: "web", route: "web/", counts, seen: 0, born }],
      services: [],
      overflow: 0,
      clientConnections: 0,
    };
  };
  const merge = new ProxyMetricsMerge({ now: () => 0 });
  merge.update(0, snap(5, 1));
  assert.equal(requestsOf(merge.merged(), "web"), 5);
  merge.update(0, snap(2, 7)); // dropped and made again: 5 were the old one's final counts
  assert.equal(requestsOf(merge.merged(), "web"), 7);
  merge.update(0, snap(3, 7));
  assert.equal(requestsOf(merge.merged(), "web"), 8);
});

Deno.test("ProxyMetricsMerge: a folded label set that goes leaves its counts in <other> and overflow, and frees no own room it never had", () => {
  const { clock, a, b, scrape } = twoSources(1);
  served(a, record({ service: "s1", route: "r1" }));
  served(b, record({ service: "s2", route: "r2" }));
  served(b, record({ service: "s2", route: "r2" }));
  const first = scrape();
  assert.equal(requestsOf(first, "s1"), 1);
  assert.equal(requestsOf(first, OTHER), 2);
  assert.equal(first.overflow, 2);
  // s2 goes quiet and expires in b; s1 goes on in a.
  for (let step = 0; step < 6; step++) {
    clock.t += 500;
    served(a, record({ service: "s1", route: "r1" }));
    const s = scrape();
    assert.equal(requestsOf(s, OTHER), 2, "<other> never goes back");
    assert.equal(s.overflow, 2);
  }
  assert.deepEqual(b.snapshot().routes, []);
  // A new label set while s1 holds the one own series: folded too.
  served(b, record({ service: "s3", route: "r3" }));
  const s = scrape();
  assert.equal(requestsOf(s, OTHER), 3);
  assert.equal(s.overflow, 3);
});
