import assert from "node:assert/strict";
import net from "node:net";
import { echoOnce, spec, TestStore } from "../_testing.ts";
import { parseExposition, valueOf } from "../../lib/_prom_parse.ts";
import { waitFor } from "../../../test/wait.ts";
import { unusedPort } from "../../../test/ports.ts";
import { ProxyMetrics } from "../proxy_metrics.ts";
import { renderProxyMetrics } from "../proxy_metrics_text.ts";
import type { ProxyWorkers } from "./proxy_workers.ts";
import { twoWorkers } from "./_testing.ts";
import { WorkerGather } from "../../lib/worker_gather.ts";

function workers(ts: TestStore, main?: ProxyMetrics): ProxyWorkers {
  return twoWorkers(ts.store, { metrics: main });
}

/** A TCP echo server and service `db` routed from `tcpPort` to it; `close` ends the store and it. */
async function echoRoute() {
  const echo = net.createServer((s) => s.on("data", (d) => s.write(d)).on("error", () => {}));
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  const tcpPort = await unusedPort();
  const ts = new TestStore();
  const port = (echo.address() as net.AddressInfo).port;
  ts.register(spec({ id: "db-a", service: "db", port, tcpPort, httpHosts: [] }));
  return {
    ts,
    tcpPort,
    close: async () => {
      ts.store.close();
      await new Promise<void>((r) => echo.close(() => r()));
    },
  };
}

/** Starts `w` and waits until both workers listen on the TCP route on `tcpPort`. */
async function startListening(w: ProxyWorkers, tcpPort: number): Promise<void> {
  await w.start();
  await waitFor("both workers listen on the TCP route", async () => {
    const report = await w.report();
    return report.tcp.some((t) => t.port === tcpPort && t.state === "listening");
  });
}

const total = async (w: ProxyWorkers, name: string, labels: Record<string, string> = {}) =>
  valueOf(parseExposition(renderProxyMetrics((await w.metrics()).snapshot)), name, labels);

Deno.test("ProxyWorkers.metrics() sums every worker's counts and the main thread's, and keeps a stopped worker's", async () => {
  const { ts, tcpPort, close } = await echoRoute();
  const main = new ProxyMetrics(); // the main thread's UDP routes count here
  main.udpFlowOpened("dns", 5353);
  const w = workers(ts, main);
  try {
    await startListening(w, tcpPort);
    const n = 40;
    for (let i = 0; i < n; i++) await echoOnce(tcpPort, "ping");
    const route = { service: "db", route: `tcp:${tcpPort}` };
    await waitFor(
      "every relay closed",
      async () => await total(w, "berth_proxy_tcp_active_connections", route) === 0,
    );
    const m = await w.metrics();
    assert.deepEqual(m.missing, []);
    assert.equal(await total(w, "berth_proxy_udp_flows_total", { service: "dns" }), 1);
    // Spread over both workers by the kernel; summed here.
    assert.equal(await total(w, "berth_proxy_tcp_connections_total", route), n);
    assert.equal(await total(w, "berth_proxy_received_bytes_total", route), 4 * n);
    // A worker that stops keeps its counts in the sum (no counter goes back).
    w.kill(0);
    assert.equal(await total(w, "berth_proxy_tcp_connections_total", route), n);
    await waitFor("worker 0 restarted", () => w.running === 2);
    await echoOnce(tcpPort, "ping");
    await waitFor(
      "the new connection is counted",
      async () => await total(w, "berth_proxy_tcp_connections_total", route) === n + 1,
    );
  } finally {
    await w.close();
    await close();
  }
});

Deno.test("ProxyWorkers.metrics(): a worker that fails between its answer and the gather's end is counted once, never less later", async () => {
  const { ts, tcpPort, close } = await echoRoute();
  const w = workers(ts);
  const answer = WorkerGather.prototype.answer;
  try {
    await startListening(w, tcpPort);
    const n = 40;
    for (let i = 0; i < n; i++) await echoOnce(tcpPort, "ping");
    const route = { service: "db", route: `tcp:${tcpPort}` };
    const count = () => total(w, "berth_proxy_tcp_connections_total", route);
    await waitFor("every connection counted", async () => await count() === n);
    let armed = true;
    WorkerGather.prototype.answer = function (id, slot, value) {
      answer.call(this, id, slot, value);
      if (armed && (slot as { index?: number }).index === 1) {
        armed = false;
        w.kill(1); // after its answer, before worker 0's
      }
    };
    assert.equal(await count(), n, "the scrape the worker failed in");
    assert.equal(armed, false);
    WorkerGather.prototype.answer = answer;
    await waitFor("worker 1 restarted", () => w.running === 2);
    assert.equal(await count(), n, "the next scrape");
  } finally {
    WorkerGather.prototype.answer = answer;
    await w.close();
    await close();
  }
});

Deno.test("ProxyWorkers.metrics(): a route's series expires in the sum once every worker dropped it, never going back before, and comes back from 0", async () => {
  const { ts, tcpPort, close } = await echoRoute();
  const retentionMs = 300;
  const w = twoWorkers(ts.store, { config: { metricsRetentionMs: retentionMs } });
  try {
    await startListening(w, tcpPort);
    const n = 20;
    for (let i = 0; i < n; i++) await echoOnce(tcpPort, "ping");
    const route = { service: "db", route: `tcp:${tcpPort}` };
    const count = async () => {
      const e = parseExposition(renderProxyMetrics((await w.metrics()).snapshot));
      const s = e.samples.find((s) =>
        s.name === "berth_proxy_tcp_connections_total" && s.labels.route === route.route
      );
      return s?.value;
    };
    await waitFor("every connection counted", async () => await count() === n);
    // Scrapes until the series is gone: the sum stays n until then (no worker's drop shows).
    const seen: (number | undefined)[] = [];
    const started = Date.now();
    while (Date.now() - started < 20_000) {
      seen.push(await count());
      if (seen.slice(-3).every((v) => v === undefined) && seen.length >= 3) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const gone = seen.indexOf(undefined);
    assert.ok(gone > 0, `the series went: ${seen}`);
    assert.deepEqual(seen.slice(0, gone), new Array(gone).fill(n), "n until it goes");
    assert.ok(seen.slice(gone).every((v) => v === undefined), `and stays gone: ${seen}`);
    // A new connection: the series starts from 0 (a counter reset).
    await echoOnce(tcpPort, "ping");
    await waitFor("the new connection is counted", async () => await count() === 1);
  } finally {
    await w.close();
    await close();
  }
});
