// The request metrics counted without records (request_meter.ts: no access log) match those
// counted from records (an access log on), and the default path makes no wrapper nor record.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import type { ClientRequest } from "./client_conn.ts";
import type { DispatchSink } from "./conn_info.ts";
import { parseExposition, valueOf } from "../lib/_prom_parse.ts";
import { ProxyMetrics } from "./proxy_metrics.ts";
import { renderProxyMetrics } from "./proxy_metrics_text.ts";
import type { ProxyOptions } from "./proxy_options.ts";
import { RequestMeter } from "./request_meter.ts";
import { RecordingSink } from "./request_record.ts";
import { rawClient, request, spec, startBackend, TestStore, withProxy } from "./_testing.ts";
import { h2Connect, h2Request, withH2, withH2Proxy } from "./_h2_testing.ts";
import type { H2FrontendOptions } from "./h2_frontend.ts";
import { unusedPort } from "../../test/ports.ts";
import { waitFor } from "../../test/wait.ts";

const BODY = "0123456789";
const TOO_BIG = "request body over 10 bytes\n";

/**
 * Sends the same mix of requests through a proxy wired with `over` (plain HTTP/1.1 and HTTP/2):
 * forwarded ones (a body in, HEAD, 204, a body streamed in two chunks), the proxy's own answers
 * (404, 503, 413, 502 after a retry), the connection's (417, two Hosts: 400), a client gone
 * before its answer (499), the cuts a frontend makes on the client's sink itself: a request
 * withdrawn from a max-conns queue when its client half-closes (499), an HTTP/2 request body
 * idle after the response began (the stream reset: the status sent).
 * Returns the metrics' text once all 17 are counted.
 */
async function mix(over: (m: ProxyMetrics) => Partial<ProxyOptions>): Promise<string> {
  const arrived = Promise.withResolvers<void>();
  const held: (() => void)[] = [];
  const a = await startBackend("a", (req, res) => {
    if (req.url === "/upload") return void res.writeHead(200).write("partial"); // reads nothing
    req.resume();
    if (req.url === "/hold") return void held.push(() => res.end(BODY));
    if (req.url === "/slow") return arrived.resolve(); // never answers
    if (req.url === "/204") return void res.writeHead(204).end();
    if (req.url === "/stream") { // two chunks apart: the proxy writes the first before the end
      res.write(BODY.slice(0, 4));
      return void setTimeout(() => res.end(BODY.slice(4)), 20);
    }
    req.on("end", () => res.end(BODY));
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  ts.register(spec({ id: "down-a", port: 1, service: "down", httpHosts: ["down.test"] }));
  ts.check("down-a", "critical");
  for (const id of ["flaky-a", "flaky-b"]) {
    ts.register(
      spec({ id, port: await unusedPort(), service: "flaky", httpHosts: ["flaky.test"] }),
    );
  }
  const queue = { "berth.http.max-conns": "1", "berth.http.max-conns.queue": "1" };
  ts.register(spec({ id: "q-a", port: a.port, service: "q", httpHosts: ["q.test"], meta: queue }));
  const m = new ProxyMetrics();
  const opts = { ...over(m), bodyBytesMax: 10, retriesMax: 1, requestTimeoutMs: 300 };
  try {
    await withH2Proxy(ts, opts, async (h2Port, proxy) => {
      const port = proxy.address.port;
      for (let i = 0; i < 2; i++) assert.equal((await request(port, "/")).body, BODY);
      const post = await request(port, "/p", { method: "POST", body: "hello" });
      assert.equal(post.status, 200);
      assert.equal((await request(port, "/", { method: "HEAD" })).status, 200);
      assert.equal((await request(port, "/204")).status, 204);
      assert.equal((await request(port, "/stream")).body, BODY);
      assert.equal((await request(port, "/", { host: "nope.test" })).status, 404);
      assert.equal((await request(port, "/", { host: "down.test" })).status, 503);
      const big = "POST / HTTP/1.1\r\nHost: web.test\r\nContent-Length: 100\r\n\r\n";
      assert.match((await rawClient(port, big)).received, /^HTTP\/1\.1 413 /);
      assert.equal((await request(port, "/", { host: "flaky.test" })).status, 502);
      const expect = "GET /e HTTP/1.1\r\nHost: web.test\r\nExpect: foo\r\n\r\n";
      assert.match((await rawClient(port, expect)).received, /^HTTP\/1\.1 417 /);
      const hosts = "GET /h HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n";
      assert.match((await rawClient(port, hosts)).received, /^HTTP\/1\.1 400 /);
      const c = net.connect(port, "127.0.0.1");
      c.on("error", () => {});
      c.write("GET /slow HTTP/1.1\r\nHost: web.test\r\n\r\n");
      await arrived.promise;
      c.resetAndDestroy();
      const first = request(port, "/hold", { host: "q.test" });
      await waitFor("the first q request held", () => held.length === 1);
      const gaveUp = "GET /queued HTTP/1.1\r\nHost: q.test\r\n\r\n";
      assert.deepEqual(await rawClient(port, gaveUp, { end: true }), {
        received: "",
        closed: true,
      });
      held[0]!();
      assert.equal((await first).body, BODY);
      const client = h2Connect(h2Port);
      try {
        const r = await h2Request(client, { ":path": "/h2", ":authority": "web.test" });
        assert.equal(Buffer.from(r.body).toString(), BODY);
        const up = client.request({
          ":method": "POST",
          ":path": "/upload",
          ":authority": "web.test",
        });
        up.on("error", () => {});
        up.resume();
        const status = new Promise<number>((resolve) =>
          up.on("response", (h) => resolve(Number(h[":status"])))
        );
        up.write("part"); // of a body under 10 bytes, and no more
        assert.equal(await status, 200);
        await new Promise((resolve) => up.once("close", resolve)); // reset by the proxy
      } finally {
        client.close();
      }
      await waitFor(
        "17 requests counted",
        () =>
          valueOf(
            parseExposition(renderProxyMetrics(m.snapshot())),
            "berth_proxy_requests_total",
          ) === 17,
      );
    });
  } finally {
    await a.close();
  }
  return renderProxyMetrics(m.snapshot());
}

/** The samples of a metrics text that do not depend on timing (durations, connections). */
function counts(text: string): string[] {
  return text.split("\n").filter((l) =>
    l !== "" && !l.startsWith("#") &&
    !/^berth_proxy_request_duration_seconds_(bucket|sum)/.test(l) &&
    !l.startsWith("berth_proxy_client_connections")
  );
}

Deno.test("HttpProxy counts requests without records (no access log) as it does from records", async () => {
  const metered = await mix((m) => ({ requestMetrics: m }));
  const recorded = await mix((m) => ({ requestMetrics: m, observers: [{ end: () => {} }] }));
  assert.deepEqual(counts(metered), counts(recorded));
  const e = parseExposition(metered);
  const web = { service: "web", route: "web.test/" };
  // 2xx: 7 and the upload cut after its 200 went out; 4xx: 413, 499.
  assert.equal(valueOf(e, "berth_proxy_requests_total", { ...web, code: "2xx" }), 8);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { ...web, code: "4xx" }), 2);
  assert.equal(valueOf(e, "berth_proxy_request_duration_seconds_count", web), 10);
  assert.equal(valueOf(e, "berth_proxy_received_bytes_total", web), "hello".length + "part".length);
  assert.equal(
    valueOf(e, "berth_proxy_sent_bytes_total", web),
    5 * BODY.length + TOO_BIG.length + "partial".length,
  );
  const q = { service: "q", route: "q.test/" };
  assert.equal(valueOf(e, "berth_proxy_requests_total", { ...q, code: "2xx" }), 1);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { ...q, code: "4xx" }), 1); // gave up
  assert.equal(valueOf(e, "berth_proxy_requests_total", { ...q, code: "5xx" }), 0);
  const none = { service: "<none>", route: "<none>" };
  assert.equal(valueOf(e, "berth_proxy_requests_total", { ...none, code: "4xx" }), 3);
  const flaky = { service: "flaky", route: "flaky.test/" };
  assert.equal(valueOf(e, "berth_proxy_requests_total", { ...flaky, code: "5xx" }), 1);
  assert.equal(valueOf(e, "berth_proxy_retries_total", flaky), 1);
  assert.equal(valueOf(e, "berth_proxy_requests_total", { service: "down", code: "5xx" }), 1);
  assert.equal(valueOf(e, "berth_proxy_active_requests"), 0);
});

/** A sink with a `meter` field that keeps what the proxy writes; `done` resolves at `end()`. */
function meteredSink(): DispatchSink & { status: number; done: Promise<void> } {
  const ended = Promise.withResolvers<void>();
  const s = {
    status: 0,
    done: ended.promise,
    destroyed: false,
    headersSent: false,
    writableEnded: false,
    shouldKeepAlive: true,
    onAbort: null,
    meter: null,
    writeHead(status: number) {
      s.status = status;
      s.headersSent = true;
    },
    write: () => true,
    end() {
      s.writableEnded = true;
      ended.resolve();
    },
    destroy() {
      s.destroyed = true;
      ended.resolve();
    },
    once() {},
  };
  return s;
}

Deno.test("HttpProxy.dispatch() meters a request on its sink with the metrics alone, records it with an access log", async () => {
  const get: ClientRequest = {
    method: "GET",
    url: "/",
    rawHeaders: ["Host", "none.test"],
    remoteAddress: "10.0.0.9",
    body: null,
  };
  const m = new ProxyMetrics();
  await withProxy(new TestStore(), { requestMetrics: m }, async (_port, proxy) => {
    const res = meteredSink();
    proxy.dispatch(get, res, { secure: false });
    // The proxy wrote to the client's sink itself (no wrapper) and left a meter on it.
    assert.ok(res.meter instanceof RequestMeter);
    await res.done;
    assert.equal(res.status, 404);
  });
  const records: number[] = [];
  const observers = [{ end: (r: { status: number }) => records.push(r.status) }];
  await withProxy(new TestStore(), { requestMetrics: m, observers }, async (_port, proxy) => {
    const res = meteredSink();
    proxy.dispatch(get, res, { secure: false });
    // A RecordingSink between them makes the record; the sink tells it how the response ended.
    assert.ok(res.meter instanceof RecordingSink);
    await res.done;
    assert.deepEqual(records, [404]);
  });
});

Deno.test("HttpProxy meters the 408 the HTTP/2 frontend answers for an idle request body, with its body bytes", async () => {
  const a = await startBackend("a", () => {}); // reads nothing, answers nothing
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  const m = new ProxyMetrics();
  try {
    await withH2Proxy(ts, { requestMetrics: m, requestTimeoutMs: 200 }, async (port) => {
      const client = h2Connect(port);
      try {
        const req = client.request({ ":method": "POST", ":path": "/up", ":authority": "web.test" });
        req.on("error", () => {});
        const status = new Promise<number>((resolve) =>
          req.on("response", (h) => resolve(Number(h[":status"])))
        );
        req.write("a part of the body, and no more");
        assert.equal(await status, 408);
        const web = { service: "web", route: "web.test/" };
        const text = () => parseExposition(renderProxyMetrics(m.snapshot()));
        await waitFor("the 408 counted", () => valueOf(text(), "berth_proxy_requests_total") === 1);
        assert.equal(valueOf(text(), "berth_proxy_requests_total", { ...web, code: "4xx" }), 1);
        assert.equal(
          valueOf(text(), "berth_proxy_sent_bytes_total", web),
          "request timeout\n".length,
        );
      } finally {
        client.close();
      }
    });
  } finally {
    await a.close();
  }
});

Deno.test("H2Frontend counts a request whose dispatch threw as 502, metered or recorded", async () => {
  const statuses: string[] = [];
  const dispatches: Record<string, H2FrontendOptions["dispatch"]> = {
    metered: (_req, reply) => {
      reply.meter = { done: (status) => void statuses.push(`metered ${status}`) };
      throw new Error("a bug");
    },
    recorded: (req, reply, conn) => {
      const end = (r: { status: number }) => void statuses.push(`recorded ${r.status}`);
      const start = { observers: [{ end }], member: "m", req, conn, startedMs: 0, requestId: "" };
      new RecordingSink(reply, start);
      throw new Error("a bug");
    },
  };
  for (const dispatch of Object.values(dispatches)) {
    await withH2({ dispatch }, async (port) => {
      const client = h2Connect(port);
      try {
        const req = client.request({ ":path": "/", ":authority": "web.test" });
        req.on("error", () => {});
        req.resume();
        await new Promise((resolve) => req.once("close", resolve));
      } finally {
        client.close();
      }
    });
  }
  assert.deepEqual(statuses, ["metered 502", "recorded 502"]);
});
