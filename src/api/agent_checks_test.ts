import assert from "node:assert/strict";
import http from "node:http";
import { CheckTimers, HealthChecker, TTL_EXPIRED_OUTPUT } from "../health/mod.ts";
import type { Timers } from "../health/probe.ts";
import { checkOnNode } from "../store/mod.ts";
import { waitFor } from "../../test/wait.ts";
import { fixture, put } from "./_testing.ts";

async function withNode(over: Parameters<typeof fixture>[0] = {}) {
  const f = fixture(over);
  await f.cluster.propose({ type: "node.register", name: "n1", address: "10.0.0.1", meta: {} });
  return f;
}

const PUT = { method: "PUT" };

Deno.test("TTL check round trip: critical at first, pass/warn/fail/update report, TTL restarted", async () => {
  const reports: string[] = [];
  const f = await withNode({ onTtlReport: (id) => (reports.push(id), null) });
  const reg = await f.app.request(
    "/v1/agent/service/register",
    put({ Name: "web", Port: 80, Check: { TTL: "15s", Notes: "heartbeat" } }),
  );
  assert.equal(reg.status, 200, await reg.text());
  const passing = async () =>
    (await (await f.app.request("/v1/health/service/web?passing")).json()).length;
  assert.equal(await passing(), 0);

  assert.equal((await f.app.request("/v1/agent/check/pass/service:web?note=ok", PUT)).status, 200);
  assert.equal(await passing(), 1);
  assert.deepEqual(reports, ["service:web"]);
  const index = f.store.appliedIndex();
  // The same report again restarts the TTL without a log entry.
  assert.equal((await f.app.request("/v1/agent/check/pass/service:web?note=ok", PUT)).status, 200);
  assert.equal(f.store.appliedIndex(), index);
  assert.deepEqual(reports, ["service:web", "service:web"]);

  await f.app.request("/v1/agent/check/warn/service:web?note=slow", PUT);
  assert.equal(checkOnNode(f.store, "n1", "service:web")?.status, "warning");
  await f.app.request("/v1/agent/check/fail/service:web", PUT);
  assert.equal(checkOnNode(f.store, "n1", "service:web")?.status, "critical");
  const upd = await f.app.request(
    "/v1/agent/check/update/service:web",
    put({ Status: "passing", Output: "all good" }),
  );
  assert.equal(upd.status, 200);

  const checks = await (await f.app.request("/v1/agent/checks")).json();
  assert.deepEqual(Object.keys(checks), ["service:web"]);
  const c = checks["service:web"];
  assert.equal(c.Status, "passing");
  assert.equal(c.Output, "all good");
  assert.equal(c.Notes, "heartbeat");
  assert.equal(c.ServiceID, "web");
  assert.equal(c.ServiceName, "web");
  assert.equal(c.Type, "ttl");
  assert.deepEqual(c.Definition, { TTL: "15s" });
  f.close();
});

Deno.test("a TTL report while the check's expiry is being proposed follows it: the check ends passing", async () => {
  let timers: CheckTimers | null = null;
  const f = await withNode({ onTtlReport: (id) => timers!.renew(id) });
  // Test-driven timers, and a gate that holds the expiry's proposal in flight.
  const due: (() => void)[] = [];
  const fake: Timers = {
    setTimeout: (fn) => due.push(fn),
    clearTimeout: (h) => void (due[(h as number) - 1] = () => {}),
  };
  const expiries: Promise<unknown>[] = [];
  let open!: () => void;
  const gate = new Promise<void>((r) => open = r);
  timers = new CheckTimers({
    store: f.store,
    propose: (cmd) => {
      const p = gate.then(() => f.cluster.propose(cmd));
      expiries.push(p);
      return p;
    },
    node: "n1",
    timers: fake,
    log: () => {},
  });
  try {
    const reg = await f.app.request(
      "/v1/agent/service/register",
      put({ Name: "web", Port: 80, Check: { TTL: "15s" } }),
    );
    assert.equal(reg.status, 200, await reg.text());
    timers.start();
    assert.equal((await f.app.request("/v1/agent/check/pass/service:web", PUT)).status, 200);
    assert.equal(checkOnNode(f.store, "n1", "service:web")?.status, "passing");
    for (const fire of due.splice(0)) fire(); // the TTL runs out: expiry proposed, held at the gate
    // The replica still shows "passing", as the report says: it must be proposed all the same.
    const report = f.app.request("/v1/agent/check/pass/service:web", PUT);
    await new Promise((r) => setTimeout(r, 10));
    open();
    assert.equal((await report).status, 200);
    assert.equal(expiries.length, 1);
    await Promise.all(expiries);
    const c = checkOnNode(f.store, "n1", "service:web")!;
    assert.deepEqual([c.status, c.output], ["passing", ""]);
    // A report that repeats the expiry's own words is written too (it is a report, not the expiry).
    await f.cluster.propose({
      type: "check.update",
      node: "n1",
      id: "service:web",
      status: "critical",
      output: TTL_EXPIRED_OUTPUT,
    });
    const index = f.store.appliedIndex();
    const again = await f.app.request(
      "/v1/agent/check/update/service:web",
      put({ Status: "critical", Output: TTL_EXPIRED_OUTPUT }),
    );
    assert.equal(again.status, 200);
    assert.ok(f.store.appliedIndex() > index);
  } finally {
    timers.close();
    f.close();
  }
});

Deno.test("PUT /v1/agent/check/register: node-level and service-bound checks; deregister", async () => {
  const f = await withNode();
  await f.app.request("/v1/agent/service/register", put({ Name: "db", Port: 5432 }));
  const node = await f.app.request(
    "/v1/agent/check/register",
    put({ Name: "disk", TTL: "30s", Status: "passing" }),
  );
  assert.equal(node.status, 200, await node.text());
  const svc = await f.app.request(
    "/v1/agent/check/register",
    put({ ID: "db-admin", Name: "admin port", ServiceID: "db", HTTP: "/ready", Interval: "5s" }),
  );
  assert.equal(svc.status, 200, await svc.text());
  const admin = checkOnNode(f.store, "n1", "db-admin")!;
  assert.equal(admin.serviceId, "db");
  assert.equal(admin.registered?.target, "http://10.0.0.1:5432/ready");
  assert.equal(checkOnNode(f.store, "n1", "disk")?.serviceId, "");

  // Failing the node's check fails every service of the node.
  await f.app.request("/v1/agent/check/fail/disk?note=full", PUT);
  const [entry] = await (await f.app.request("/v1/health/service/db")).json();
  assert.deepEqual(
    entry.Checks.map((c: { CheckID: string; Status: string }) => [c.CheckID, c.Status]),
    [["serfHealth", "passing"], ["disk", "critical"], ["db-admin", "critical"]],
  );

  assert.equal((await f.app.request("/v1/agent/check/deregister/disk", PUT)).status, 200);
  assert.equal(checkOnNode(f.store, "n1", "disk"), undefined);
  f.close();
});

Deno.test("PUT /v1/agent/check/register: a GRPC check is stored as given and listed in Consul's shape", async () => {
  const f = await withNode();
  await f.app.request("/v1/agent/service/register", put({ Name: "rpc", Port: 9090 }));
  const r = await f.app.request(
    "/v1/agent/check/register",
    put({ ID: "rpc-health", Name: "rpc", ServiceID: "rpc", GRPC: "10.0.0.1:9090/pkg.Rpc" }),
  );
  assert.equal(r.status, 200, await r.text());
  const c = checkOnNode(f.store, "n1", "rpc-health")!;
  assert.equal(c.registered?.kind, "grpc");
  assert.equal(c.registered?.target, "10.0.0.1:9090/pkg.Rpc");
  assert.equal(c.registered?.intervalMs, 10_000);
  const listed = await (await f.app.request("/v1/agent/checks")).json();
  assert.equal(listed["rpc-health"].Definition.GRPC, "10.0.0.1:9090/pkg.Rpc");
  assert.equal(listed["rpc-health"].Definition.GRPCUseTLS, false);
  f.close();
});

Deno.test("PUT /v1/agent/check/register: a UDP check (Consul's) is stored as given and listed in Consul's shape", async () => {
  const f = await withNode();
  await f.app.request(
    "/v1/agent/service/register",
    put({ Name: "dns", Port: 53, Tags: ["udp"], Check: { UDP: "10.0.0.1:53", Interval: "5s" } }),
  );
  const r = await f.app.request(
    "/v1/agent/check/register",
    put({ ID: "dns-v6", Name: "dns v6", ServiceID: "dns", UDP: "[fd00::1]:53", Timeout: "1s" }),
  );
  assert.equal(r.status, 200, await r.text());
  const own = checkOnNode(f.store, "n1", "service:dns")!;
  assert.deepEqual(
    [own.registered?.kind, own.registered?.target, own.registered?.intervalMs, own.type],
    ["udp", "10.0.0.1:53", 5000, "udp"],
  );
  const v6 = checkOnNode(f.store, "n1", "dns-v6")!;
  assert.deepEqual(
    [v6.registered?.kind, v6.registered?.target, v6.registered?.timeoutMs],
    ["udp", "[fd00::1]:53", 1000],
  );
  const listed = await (await f.app.request("/v1/agent/checks")).json();
  assert.equal(listed["service:dns"].Definition.UDP, "10.0.0.1:53");
  assert.equal(listed["dns-v6"].Definition.UDP, "[fd00::1]:53");
  f.close();
});

Deno.test("Checks: several checks per service; the worst decides, each is listed", async () => {
  const f = await withNode();
  await f.app.request(
    "/v1/agent/service/register",
    put({ Name: "api", Port: 8080, Checks: [{ TTL: "10s" }, { TTL: "10s", Name: "deps" }] }),
  );
  await f.app.request("/v1/agent/check/pass/service:api:1", PUT);
  assert.equal((await (await f.app.request("/v1/health/service/api?passing")).json()).length, 0);
  await f.app.request("/v1/agent/check/pass/service:api:2", PUT);
  const [entry] = await (await f.app.request("/v1/health/service/api?passing")).json();
  assert.deepEqual(
    entry.Checks.map((c: { CheckID: string; Name: string; Type: string }) => [
      c.CheckID,
      c.Name,
      c.Type,
    ]),
    [
      ["serfHealth", "Serf Health Status", ""],
      ["service:api:1", "Service 'api' check", "ttl"],
      ["service:api:2", "deps", "ttl"],
    ],
  );
  f.close();
});

Deno.test("agent check routes answer bad input with one line and change nothing", async () => {
  const f = await withNode();
  await f.app.request("/v1/agent/service/register", put({ Name: "web", Check: { TTL: "10s" } }));
  await f.app.request(
    "/v1/agent/check/register",
    put({ ID: "tcp", TCP: "127.0.0.1:1", Interval: "10s" }),
  );
  const state = () => JSON.stringify([f.store.nodes(), f.store.instances()]);
  const before = state();
  const cases: [string, RequestInit, number, RegExp][] = [
    ["/v1/agent/check/pass/nope", PUT, 404, /^Unknown check ID "nope"$/],
    ["/v1/agent/check/pass/tcp", PUT, 400, /CheckID "tcp" does not have associated TTL/],
    ["/v1/agent/check/pass/serfHealth", PUT, 400, /derived by berth/],
    ["/v1/agent/check/deregister/nope", PUT, 404, /Unknown check ID/],
    ["/v1/agent/check/update/service:web", put({}), 400, /missing Status/],
    ["/v1/agent/check/update/service:web", put({ Status: "ok" }), 400, /Status: expected/],
    ["/v1/agent/check/update/service:web", put("[1]"), 400, /body must be a JSON object/],
    [
      "/v1/agent/check/update/service:web",
      put({ Status: "passing", Output: "x".repeat(5000) }),
      400,
      /Output: expected at most 4096 characters/,
    ],
    ["/v1/agent/check/register", put({ TTL: "10s" }), 400, /missing Name/],
    [
      "/v1/agent/check/register",
      put({ Name: "x", ServiceID: "no", TTL: "1s" }),
      400,
      /does not exist/,
    ],
    ["/v1/agent/check/register", put({ Name: "x", HTTP: "/p" }), 400, /needs a full URL/],
    ["/v1/agent/check/register", put({ Name: "serfHealth", TTL: "1s" }), 400, /reserved/],
    [
      "/v1/agent/check/register",
      put({ Name: "x", GRPC: "a:1", GRPCUseTLS: true }),
      400,
      /GRPCUseTLS checks are not supported; gRPC checks use h2c/,
    ],
    [
      "/v1/agent/check/register",
      put({ Name: "x", GRPC: "a:1/no spaces please" }),
      400,
      /GRPC: expected host:port or host:port\/service/,
    ],
    ["/v1/agent/check/register", put({ Name: "x", GRPC: "a" }), 400, /GRPC: expected host:port/],
    ["/v1/agent/check/register", put({ Name: "x", UDP: "a" }), 400, /UDP: expected host:port/],
    ["/v1/agent/check/register", put({ Name: "x", UDP: "a:0" }), 400, /UDP: expected host:port/],
    ["/v1/agent/check/register", put({ Name: "x", UDP: 53 }), 400, /UDP must be a string/],
    [
      "/v1/agent/check/register",
      put({ Name: "x", UDP: "a:1", TCP: "a:1" }),
      400,
      /give one of TTL, HTTP, TCP, UDP or GRPC, not several/,
    ],
    ["/v1/agent/check/register", put({ Name: 5 }), 400, /Name must be a string/],
    ["/v1/agent/service/nope", {}, 404, /unknown service ID: nope/],
  ];
  for (const [path, init, status, message] of cases) {
    const r = await f.app.request(path, init);
    const text = await r.text();
    assert.equal(r.status, status, `${path}: ${text}`);
    assert.match(text.trim(), message, path);
    assert.ok(r.headers.has("X-Consul-Index"), path);
  }
  assert.equal(state(), before);
  f.close();
});

Deno.test("GET /v1/agent/service/:id answers this agent's service in Consul's shape", async () => {
  const f = await withNode();
  await f.app.request("/v1/agent/service/register", put({ Name: "web", ID: "web-1", Port: 80 }));
  const r = await f.app.request("/v1/agent/service/web-1");
  assert.equal(r.status, 200);
  const s = await r.json();
  assert.equal(s.ID, "web-1");
  assert.equal(s.Service, "web");
  assert.equal(s.Port, 80);
  assert.equal(s.Datacenter, "dc1");
  assert.equal(typeof s.ContentHash, "string");
  f.close();
});

Deno.test("an HTTP check registered through the API on an admin port passes (real listener)", async () => {
  const admin = http.createServer((_req, res) => res.writeHead(200).end("ok"));
  await new Promise<void>((r) => admin.listen(0, "127.0.0.1", r));
  const port = (admin.address() as { port: number }).port;
  const f = await withNode();
  const checker = new HealthChecker({
    store: f.store,
    propose: (c) => f.cluster.propose(c),
    node: "n1",
  });
  try {
    const r = await f.app.request(
      "/v1/agent/service/register",
      put({
        Name: "app",
        Address: "127.0.0.1",
        Port: 1, // the service's own port: nothing listens there
        Check: { HTTP: `http://127.0.0.1:${port}/health`, Interval: "100ms", Timeout: "2s" },
      }),
    );
    assert.equal(r.status, 200, await r.text());
    checker.start();
    await waitFor(
      "check passing",
      () => checkOnNode(f.store, "n1", "service:app")?.status === "passing",
    );
    const [entry] = await (await f.app.request("/v1/health/service/app?passing")).json();
    assert.equal(entry.Checks[1].Output, `HTTP GET http://127.0.0.1:${port}/health: 200 OK`);
  } finally {
    await checker.close();
    f.close();
    admin.closeAllConnections();
    await new Promise((r) => admin.close(r));
  }
});

Deno.test("PUT /v1/catalog/register keeps node-level checks; deregister by CheckID removes one", async () => {
  const f = fixture();
  const reg = await f.app.request(
    "/v1/catalog/register",
    put({
      Node: "ext",
      Address: "192.0.2.1",
      Checks: [{ CheckID: "ping", Name: "ping", Status: "warning", Output: "slow" }],
    }),
  );
  assert.equal(reg.status, 200, await reg.text());
  const c = checkOnNode(f.store, "ext", "ping")!;
  assert.deepEqual([c.status, c.output, c.serviceId, c.type], ["warning", "slow", "", ""]);
  const d = await f.app.request("/v1/catalog/deregister", put({ Node: "ext", CheckID: "ping" }));
  assert.equal(d.status, 200);
  assert.equal(checkOnNode(f.store, "ext", "ping"), undefined);
  assert.notEqual(f.store.node("ext"), undefined);
  f.close();
});
