import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import dgram from "node:dgram";
import net from "node:net";
import { parseExposition, valueOf } from "../lib/_prom_parse.ts";
import { echoOnce, request, spec, startBackend, TestStore, withProxy } from "./_testing.ts";
import { ProxyMetrics } from "./proxy_metrics.ts";
import { renderProxyMetrics } from "./proxy_metrics_text.ts";
import { unusedPort } from "../../test/ports.ts";
import { waitFor } from "../../test/wait.ts";

const text = (m: ProxyMetrics) => parseExposition(renderProxyMetrics(m.snapshot()));

Deno.test("HttpProxy reports TCP route connections and their bytes to its tcpObserver", async () => {
  const echo = net.createServer((s) => s.on("data", (d) => s.write(d)).on("error", () => {}));
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  const port = (echo.address() as net.AddressInfo).port;
  const tcpPort = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({ id: "db-a", service: "db", port, tcpPort, httpHosts: [] }));
  const metrics = new ProxyMetrics();
  try {
    await withProxy(ts, { tcpObserver: metrics }, async () => {
      for (let i = 0; i < 3; i++) await echoOnce(tcpPort, "hello");
      const route = { service: "db", route: `tcp:${tcpPort}` };
      await waitFor(
        "the relays closed",
        () => valueOf(text(metrics), "berth_proxy_tcp_active_connections", route) === 0,
      );
      const e = text(metrics);
      assert.equal(valueOf(e, "berth_proxy_tcp_connections_total", route), 3);
      assert.equal(valueOf(e, "berth_proxy_received_bytes_total", route), 15);
      assert.equal(valueOf(e, "berth_proxy_sent_bytes_total", route), 15);
    });
  } finally {
    await new Promise<void>((r) => echo.close(() => r()));
  }
});

Deno.test("HttpProxy reports refused connects and ejections to its pool events, by service", async () => {
  const ts = new TestStore();
  const dead = await unusedPort();
  ts.register(spec({ id: "web-a", service: "web", port: dead }));
  const metrics = new ProxyMetrics();
  await withProxy(ts, { events: metrics, failuresMax: 2, retriesMax: 0 }, async (port) => {
    for (let i = 0; i < 2; i++) {
      const r = await request(port, "/");
      assert.equal(r.status, 502);
    }
    const e = text(metrics);
    assert.equal(valueOf(e, "berth_proxy_connect_errors_total", { service: "web" }), 2);
    assert.equal(valueOf(e, "berth_proxy_ejections_total", { service: "web" }), 1);
  });
  // A backend that answers: no connect error.
  const ok = await startBackend("ok");
  const ts2 = new TestStore();
  ts2.register(spec({ id: "api-a", service: "api", port: ok.port, httpHosts: ["api.test"] }));
  const m2 = new ProxyMetrics();
  try {
    await withProxy(ts2, { events: m2 }, async (port) => {
      assert.equal((await request(port, "/", { host: "api.test" })).status, 200);
      assert.equal(valueOf(text(m2), "berth_proxy_connect_errors_total"), 0);
    });
  } finally {
    await ok.close();
  }
});

Deno.test("HttpProxy hands every request to the metrics: by route and status class, unrouted, retried", async () => {
  const ok = await startBackend("ok");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", service: "web", port: ok.port }));
  ts.register(
    spec({ id: "api-a", service: "api", port: await unusedPort(), httpHosts: ["api.test"] }),
  );
  ts.register(
    spec({ id: "api-b", service: "api", port: await unusedPort(), httpHosts: ["api.test"] }),
  );
  const metrics = new ProxyMetrics();
  try {
    await withProxy(ts, { observers: [metrics], events: metrics, retriesMax: 1 }, async (port) => {
      for (let i = 0; i < 3; i++) assert.equal((await request(port, `/x${i}`)).status, 200);
      assert.equal((await request(port, "/", { host: "nobody.test" })).status, 404);
      assert.equal((await request(port, "/", { host: "api.test" })).status, 502);
      const e = text(metrics);
      const web = { service: "web", route: "web.test/" };
      assert.equal(valueOf(e, "berth_proxy_requests_total", { ...web, code: "2xx" }), 3);
      assert.equal(valueOf(e, "berth_proxy_request_duration_seconds_count", web), 3);
      assert.equal(valueOf(e, "berth_proxy_sent_bytes_total", web), "ok /x0".length * 3);
      assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "<none>", code: "4xx" }), 1);
      const api = { service: "api", route: "api.test/" };
      assert.equal(valueOf(e, "berth_proxy_requests_total", { ...api, code: "5xx" }), 1);
      assert.equal(valueOf(e, "berth_proxy_retries_total", api), 1);
      assert.equal(valueOf(e, "berth_proxy_connect_errors_total", { service: "api" }), 2);
      assert.equal(valueOf(e, "berth_proxy_active_requests"), 0);
    });
  } finally {
    await ok.close();
  }
});

/** One datagram to `port` from a socket of its own; resolves with the answer. */
async function askUdp(socket: dgram.Socket, port: number, text: string): Promise<string> {
  const answer = new Promise<string>((resolve) => socket.once("message", (m) => resolve(`${m}`)));
  socket.send(Buffer.from(text), port, "127.0.0.1");
  return await answer;
}

Deno.test("HttpProxy reports UDP route flows and their bytes to its udpObserver", async () => {
  const echo = dgram.createSocket("udp4");
  echo.on("message", (m, r) => echo.send(Buffer.from(`re:${m}`), r.port, r.address));
  await new Promise<void>((r) => echo.bind(0, "127.0.0.1", r));
  const udpPort = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({
    id: "dns-a:udp",
    service: "dns",
    port: echo.address().port,
    httpHosts: [],
    tags: ["udp"],
    meta: { "berth.udp.port": String(udpPort) },
  }));
  const metrics = new ProxyMetrics();
  const clients = [dgram.createSocket("udp4"), dgram.createSocket("udp4")];
  const route = { service: "dns", route: `udp:${udpPort}` };
  try {
    for (const c of clients) await new Promise<void>((r) => c.bind(0, "127.0.0.1", r));
    await withProxy(ts, { udpObserver: metrics }, async () => {
      for (const c of clients) assert.equal(await askUdp(c, udpPort, "hello"), "re:hello");
      const e = text(metrics);
      assert.equal(valueOf(e, "berth_proxy_udp_flows_total", route), 2);
      assert.equal(valueOf(e, "berth_proxy_udp_active_flows", route), 2);
    });
    // Closing the proxy ended both flows: their bytes are counted.
    const e = text(metrics);
    assert.equal(valueOf(e, "berth_proxy_udp_active_flows", route), 0);
    assert.equal(valueOf(e, "berth_proxy_received_bytes_total", route), 2 * "hello".length);
    assert.equal(valueOf(e, "berth_proxy_sent_bytes_total", route), 2 * "re:hello".length);
    assert.equal(valueOf(e, "berth_proxy_tcp_connections_total"), 0);
  } finally {
    for (const c of clients) c.close();
    echo.close();
  }
});
