import assert from "node:assert/strict";
import { parseExposition, valueOf } from "../lib/_prom_parse.ts";
import {
  ACTIVE,
  bucketIndex,
  DURATION_BUCKETS_S,
  NONE,
  OTHER,
  ProxyMetrics,
  RECEIVED,
  requestsOf,
  SENT,
  statusClass,
} from "./proxy_metrics.ts";
import { ProxyMetricsMerge } from "./proxy_metrics_merge.ts";
import { renderProxyMetrics } from "./proxy_metrics_text.ts";
import { instance, record, served } from "./_metrics_testing.ts";

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

/** A ProxyMetrics on a clock the test moves (`clock.t`, ms), retention 1000 ms. */
function clocked(opts: { seriesMax?: number } = {}) {
  const clock = { t: 1_000_000 };
  const m = new ProxyMetrics({ ...opts, retentionMs: 1000, now: () => clock.t });
  const requests = (service: string) =>
    m.snapshot().routes.find((r) => r.service === service)?.counts.slice(0, 5)
      .reduce((a, b) => a + b, 0);
  return { clock, m, requests };
}

Deno.test("ProxyMetrics.snapshot() drops a series untouched for retentionMs; one that comes back starts from 0", () => {
  const { clock, m, requests } = clocked();
  served(m, record());
  served(m, record());
  m.connectFailed(instance("web"));
  assert.equal(requests("web"), 2); // seen now
  clock.t += 999;
  assert.equal(requests("web"), 2, "within the retention");
  clock.t += 1;
  assert.equal(requests("web"), undefined, "untouched for the retention: gone");
  assert.deepEqual(m.snapshot().services, []);
  assert.equal(m.routeCount, 0);
  const before = m.snapshot();
  served(m, record());
  const after = m.snapshot();
  assert.equal(after.routes[0]!.counts[1], 1, "starts from 0");
  assert.notEqual(after.routes[0]!.born, undefined);
  assert.equal(before.routes.length, 0);
});

Deno.test("ProxyMetrics.snapshot() keeps a series touched since the last snapshot, whatever the time", () => {
  const { clock, m, requests } = clocked();
  served(m, record());
  assert.equal(requests("web"), 1);
  clock.t += 5_000;
  served(m, record()); // after that snapshot: its counts are not reported yet
  assert.equal(requests("web"), 2);
  const seen = m.snapshot().routes[0]!.seen!;
  assert.equal(seen, clock.t, "seen by this snapshot's time");
});

Deno.test("ProxyMetrics keeps series with something open past the retention: a request, a TCP connection, a UDP flow", () => {
  const { clock, m } = clocked();
  m.begin("web");
  m.tcpOpened("db", 5432);
  m.udpFlowOpened("dns", 53);
  m.snapshot();
  clock.t += 10_000;
  const s = m.snapshot();
  assert.deepEqual(s.routes.map((r) => r.service).sort(), ["dns", "db"].sort());
  assert.deepEqual(s.services.map((v) => [v.service, v.active]), [["web", 1]]);
  m.end(record());
  m.tcpClosed("db", 5432, 1, 2);
  m.udpFlowClosed("dns", 53, 3, 4);
  m.snapshot(); // reports the closes
  clock.t += 1000;
  const later = m.snapshot();
  assert.deepEqual(later.routes, []);
  assert.deepEqual(later.services, []);
});

Deno.test("ProxyMetrics: the cap counts live series only; a full cap expires what is due and gives a new label set its room", () => {
  const { clock, m } = clocked({ seriesMax: 2 });
  served(m, record({ service: "s0", route: "r0" }));
  served(m, record({ service: "s1", route: "r1" }));
  m.snapshot();
  served(m, record({ service: "s2", route: "r2" })); // the cap is full of live series
  assert.equal(m.snapshot().overflow, 1);
  clock.t += 1000;
  served(m, record({ service: "s3", route: "r3" })); // s0 and s1 are due: swept
  const s = m.snapshot();
  assert.deepEqual(s.routes.map((r) => r.service).sort(), ["<other>", "s3"]);
  assert.equal(s.overflow, 1, "s3 got its own series");
  assert.equal(m.routeCount, 1);
  assert.equal(s.routes.find((r) => r.service === OTHER)!.counts[1], 1, "<other> keeps its count");
});

Deno.test("ProxyMetrics: a full cap never expires a series touched since the last snapshot", () => {
  const { clock, m } = clocked({ seriesMax: 1 });
  served(m, record({ service: "s0", route: "r0" }));
  m.snapshot();
  clock.t += 5_000;
  served(m, record({ service: "s0", route: "r0" })); // not reported yet
  served(m, record({ service: "s1", route: "r1" }));
  const s = m.snapshot();
  assert.deepEqual(s.routes.map((r) => [r.service, r.counts[1]]).sort(), [
    ["<other>", 1],
    ["s0", 2],
  ]);
});

Deno.test("ProxyMetrics keeps a route's series while a request on it is under way (a WebSocket, SSE), in the workers' sum too", () => {
  const { clock, m, requests } = clocked();
  const merge = new ProxyMetricsMerge({ retentionMs: 1000, now: () => clock.t });
  const ws = record({ service: "ws", route: "ws.test/", status: 101 });
  for (let i = 0; i < 5; i++) served(m, ws);
  merge.update(0, m.snapshot());
  m.begin("ws", "ws.test/"); // a tunnel that stays open
  clock.t += 10_000;
  merge.update(0, m.snapshot());
  const route = () => merge.merged().routes.find((r) => r.route === "ws.test/")?.counts;
  assert.equal(requestsOf(route()!), 5, "kept in the sum while the request is under way");
  assert.equal(requests("ws"), 5);
  m.end(ws);
  merge.update(0, m.snapshot());
  assert.equal(requestsOf(route()!), 6, "never back to 0");
  clock.t += 1000;
  merge.update(0, m.snapshot());
  assert.equal(route(), undefined, "gone once nothing is open and the retention passed");
  assert.equal(m.routeCount, 0);
});

/** The gauges of every series of a snapshot, `service/route` and `service` keys. */
function gauges(m: ProxyMetrics): Record<string, number> {
  const s = m.snapshot();
  const out: Record<string, number> = {};
  for (const r of s.routes) out[`${r.service}/${r.route}`] = r.counts[ACTIVE]!;
  for (const v of s.services) out[v.service] = v.active;
  return out;
}

Deno.test("ProxyMetrics: what opened under <other> closes there though its own series has room by then", () => {
  const { clock, m } = clocked({ seriesMax: 2 });
  served(m, record({ service: "a", route: "a/" }));
  served(m, record({ service: "b", route: "b/" }));
  m.snapshot(); // a's and b's series seen: the caps are full until they expire
  m.begin("c", "c/"); // folded (service and route)
  m.tcpOpened("c", 2);
  m.udpFlowOpened("c", 3);
  assert.deepEqual(gauges(m), {
    "a/a/": 0,
    "b/b/": 0,
    "<other>/<other>": 2,
    a: 0,
    b: 0,
    "<other>": 1,
  });
  clock.t += 1000;
  m.snapshot(); // a's and b's series expire: room
  m.end(record({ service: "c", route: "c/", status: 200 }));
  m.tcpClosed("c", 2, 5, 6);
  m.udpFlowClosed("c", 3, 7, 8);
  const s = m.snapshot();
  assert.deepEqual(
    gauges(m),
    { "<other>/<other>": 0, "<other>": 0 },
    "no series for c, nothing stuck",
  );
  const other = s.routes.find((r) => r.service === OTHER)!.counts;
  assert.equal(requestsOf(other), 1);
  assert.equal(other[RECEIVED], 100 + 5 + 7);
  assert.equal(other[SENT], 1000 + 6 + 8);
  assert.equal(s.overflow, 3, "the request, the TCP connection, the UDP flow");
  assert.equal(m.routeCount, 0);
  served(m, record({ service: "c", route: "c/" })); // c's own series now, from 0
  assert.equal(requestsOf(m.snapshot().routes.find((r) => r.service === "c")!.counts), 1);
});
