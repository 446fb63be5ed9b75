import assert from "node:assert/strict";
import { RejectedError } from "../cluster/mod.ts";
import { instanceHealth } from "../store/mod.ts";
import { fixture, instanceSpec, put } from "./_testing.ts";

Deno.test("PUT /v1/agent/service/register registers on this node with Consul's fields", async () => {
  const f = fixture();
  const r = await f.app.request(
    "/v1/agent/service/register",
    put({
      Name: "api",
      ID: "api-1",
      Tags: ["v2"],
      Port: 9000,
      Meta: { team: "x" },
      Weights: { Passing: 5, Warning: 1 },
      Check: { HTTP: "http://localhost:9000/health", Interval: "5s", Timeout: "1s" },
    }),
  );
  assert.equal(r.status, 200, await r.text());
  const i = f.store.instance("api-1")!;
  assert.equal(i.service, "api");
  assert.equal(i.node, "n1");
  assert.equal(i.address, "10.0.0.1");
  assert.equal(i.port, 9000);
  assert.deepEqual(i.tags, ["v2"]);
  assert.deepEqual(i.meta, { team: "x" });
  assert.equal(i.weight, 5);
  assert.equal(i.containerId, null);
  // The check is a registered one, its URL kept as given (its own host and port).
  assert.equal(i.check, null);
  assert.deepEqual(
    i.checks?.map((c) => [c.id, c.kind, c.target, c.intervalMs, c.timeoutMs, c.status]),
    [["service:api-1", "http", "http://localhost:9000/health", 5000, 1000, "critical"]],
  );
  assert.equal(instanceHealth(i, "alive").output, "check service:api-1 is critical");

  // Re-registering with the same check keeps the result the checker has seen.
  await f.cluster.propose({
    type: "check.update",
    node: "n1",
    id: "service:api-1",
    status: "passing",
    output: "ok",
  });
  await f.app.request(
    "/v1/agent/service/register",
    put({
      name: "api",
      id: "api-1",
      tags: ["v2"],
      port: 9000,
      meta: { team: "x" },
      weights: { passing: 5 },
      check: { http: "http://localhost:9000/health", interval: "5s", timeout: "1s" },
    }),
  );
  assert.deepEqual(
    f.store.instance("api-1")!.checks?.map((c) => [c.status, c.output]),
    [["passing", "ok"]],
  );

  const services = await (await f.app.request("/v1/agent/services")).json();
  assert.deepEqual(Object.keys(services), ["api-1"]);
  assert.equal(services["api-1"].Service, "api");
  f.close();
});

Deno.test("PUT /v1/agent/service/register with only a Name uses it as the ID, TCP check", async () => {
  const f = fixture();
  const r = await f.app.request(
    "/v1/agent/service/register",
    put({ Name: "cache", Address: "10.9.9.9", Port: 11211, Check: { TCP: "10.9.9.9:11211" } }),
  );
  assert.equal(r.status, 200);
  const i = f.store.instance("cache")!;
  assert.equal(i.address, "10.9.9.9");
  assert.deepEqual(
    i.checks?.map((c) => [c.kind, c.target, c.intervalMs, c.timeoutMs]),
    [["tcp", "10.9.9.9:11211", 10_000, 10_000]],
  );
  f.close();
});

Deno.test("PUT /v1/agent/service/deregister/:id removes this node's instance; 404 when unknown", async () => {
  const f = fixture();
  await f.cluster.propose({ type: "register", instance: instanceSpec({ id: "mine" }) });
  await f.cluster.propose({
    type: "register",
    instance: instanceSpec({ id: "theirs", node: "n2" }),
  });
  const ok = await f.app.request("/v1/agent/service/deregister/mine", { method: "PUT" });
  assert.equal(ok.status, 200);
  assert.equal(f.store.instance("mine"), undefined);
  const other = await f.app.request("/v1/agent/service/deregister/theirs", { method: "PUT" });
  assert.equal(other.status, 400);
  assert.match(await other.text(), /belongs to node n2/);
  assert.notEqual(f.store.instance("theirs"), undefined);
  const none = await f.app.request("/v1/agent/service/deregister/ghost", { method: "PUT" });
  assert.equal(none.status, 404);
  f.close();
});

Deno.test("PUT /v1/agent/service/register takes proxy routes from berth.* Meta", async () => {
  const f = fixture();
  const r = await f.app.request(
    "/v1/agent/service/register",
    put({
      Name: "web",
      Port: 8080,
      Meta: {
        "berth.http.host": "Web.Example, www.example",
        "berth.http.path": "/app",
        "berth.tcp.port": "7000",
        "berth.lb": "Least-Conn",
      },
    }),
  );
  assert.equal(r.status, 200, await r.text());
  const i = f.store.instance("web")!;
  assert.equal(i.meta["berth.lb"], "least_conn");
  assert.deepEqual(i.httpHosts, ["web.example", "www.example"]);
  assert.equal(i.httpPath, "/app");
  assert.equal(i.tcpPort, 7000);
  f.close();
});

Deno.test("PUT /v1/agent/join/:addr refuses an address that is not IP[:PORT] before trying to join", async () => {
  const joined: string[] = [];
  const f = fixture({
    admin: {
      join: (a) => {
        joined.push(a);
        return Promise.reject(new RejectedError("already a member of cluster c1 (id 1)"));
      },
    },
  });
  try {
    const bad: [string, RegExp][] = [
      [
        "notanaddr",
        /^cannot join notanaddr: "notanaddr" is not an IP address \(expected IP\[:PORT\], like 10\.0\.0\.5:8300\)\n$/,
      ],
      ["10.0.0.5:99999", /^cannot join 10\.0\.0\.5:99999: port "99999" is not in 1\.\.65535/],
      ["%20", /^cannot join {2}: " " is not an IP address/],
    ];
    for (const [addr, re] of bad) {
      const r = await f.app.request(`/v1/agent/join/${addr}`, { method: "PUT" });
      assert.equal(r.status, 400, addr);
      assert.match(await r.text(), re);
    }
    assert.deepEqual(joined, [], "a bad address never reaches the cluster");
    // A good one goes on (port 8300 when left out), and the cluster's answer comes back.
    for (const addr of ["10.0.0.5", "[::1]:9000"]) {
      const r = await f.app.request(`/v1/agent/join/${addr}`, { method: "PUT" });
      assert.equal(r.status, 400);
      assert.match(await r.text(), /^already a member of cluster c1/);
    }
    assert.deepEqual(joined, ["10.0.0.5:8300", "[::1]:9000"]);
  } finally {
    f.close();
  }
});
