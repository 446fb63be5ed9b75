/**
 * End to end: `/metrics` of a real `berth agent` whose proxy and DNS run on worker threads
 * (`--proxy-workers 2 --dns-workers 2`, and both on the main thread): N requests through the
 * proxy and M DNS queries show as exactly N and M in the (summed) counters, and the whole text
 * parses line by line.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type net from "node:net";
import { parseExposition, valueOf } from "../src/lib/_prom_parse.ts";
import { dnsQuery, proxyGet, startAgent, uniq } from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

for (const threads of [2, 1]) {
  Deno.test({
    name: `e2e metrics: requests and DNS queries with ${threads} proxy and ${threads} DNS ` +
      "threads count exactly",
    ...e2e,
    fn: () => countsExactly(threads),
  });
}

async function countsExactly(threads: number): Promise<void> {
  const svc = uniq("met");
  const backend = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end("hello"));
  });
  await new Promise<void>((r) => backend.listen(0, "127.0.0.1", r));
  const port = (backend.address() as net.AddressInfo).port;
  const dir = await Deno.makeTempDir({ prefix: "berth-metrics-" });
  const accessLog = `${dir}/access.log`;
  const agent = await startAgent({
    node: uniq("metrics-"),
    docker: false,
    args: [
      ...["--proxy-workers", String(threads), "--dns-workers", String(threads)],
      ...["--access-log", accessLog],
    ],
  });
  const scrape = async () => {
    const r = await fetch(`${agent.httpUrl}/metrics`);
    assert.equal(r.status, 200);
    return parseExposition(await r.text());
  };
  try {
    const reg = await fetch(`${agent.httpUrl}/v1/agent/service/register`, {
      method: "PUT",
      body: JSON.stringify({
        ID: `${svc}-1`,
        Name: svc,
        Address: "127.0.0.1",
        Port: port,
        Meta: { "berth.http.host": `${svc}.test` },
      }),
    });
    assert.equal(reg.status, 200, await reg.text());
    await waitFor("the route in both workers", async () => {
      const got = await Promise.all(
        Array.from({ length: 8 }, () => proxyGet(agent.proxyPort, `${svc}.test`)),
      );
      return got.every((r) => r.status === 200);
    });
    const name = `${svc}.service.berth.`;
    await waitFor(
      "the name in DNS",
      async () => (await dnsQuery(agent.dnsPort, name)).rcode === "NOERROR",
    );

    const labels = { service: svc, route: `${svc}.test/` };
    const before = await scrape();
    const n = 60;
    const m = 40;
    for (let i = 0; i < n; i++) {
      const r = await proxyGet(agent.proxyPort, `${svc}.test`, `/p${i}`);
      assert.equal(r.status, 200);
    }
    for (let i = 0; i < m; i++) {
      const r = await dnsQuery(agent.dnsPort, name, "A", { tcp: i % 4 === 0 });
      assert.equal(r.rcode, "NOERROR");
    }
    const after = await scrape();
    const delta = (metric: string, l: Record<string, string>) =>
      valueOf(after, metric, l) - valueOf(before, metric, l);
    assert.equal(
      delta("berth_dns_queries_total", { rcode: "NOERROR", qtype: "A" }),
      m,
    );
    assert.equal(delta("berth_proxy_requests_total", { ...labels, code: "2xx" }), n);
    assert.equal(delta("berth_proxy_requests_total", labels), n);
    assert.equal(delta("berth_proxy_request_duration_seconds_count", labels), n);
    assert.equal(
      delta("berth_proxy_request_duration_seconds_bucket", { ...labels, le: "+Inf" }),
      n,
    );
    assert.equal(delta("berth_proxy_sent_bytes_total", labels), n * "hello".length);
    assert.equal(valueOf(after, "berth_proxy_active_requests", { service: svc }), 0);
    // No path labels: one route series however many paths were asked for.
    const series = after.samples.filter((s) =>
      s.name === "berth_proxy_requests_total" && s.labels.service === svc
    );
    assert.deepEqual(series.map((s) => s.labels.route), [`${svc}.test/`]);
    assert.equal(valueOf(after, "berth_metrics_workers_unanswered"), 0);
    assert.equal(
      valueOf(after, "berth_instance_health", { instance: `${svc}-1`, status: "passing" }),
      1,
    );
    assert.ok(valueOf(after, "berth_applied_index") > 0);
    assert.equal(after.types.get("berth_proxy_client_connections"), "gauge");
    // Every request counted is in the access log, or counted as dropped from it.
    await waitFor("the access log written", async () => {
      const e = await scrape();
      const lines = (await Deno.readTextFile(accessLog)).split("\n").filter((l) => l !== "");
      return lines.length + valueOf(e, "berth_access_log_dropped_total") ===
        valueOf(e, "berth_proxy_requests_total");
    });
  } finally {
    await agent.stop();
    await new Promise<void>((r) => backend.close(() => r()));
    await Deno.remove(dir, { recursive: true });
  }
}
