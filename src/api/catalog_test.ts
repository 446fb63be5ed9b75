import assert from "node:assert/strict";
import { fixture, instanceSpec, put } from "./_testing.ts";

Deno.test("GET /v1/catalog/service/:name answers Consul's entry shape with index headers", async () => {
  const f = fixture();
  await f.cluster.propose({
    type: "node.register",
    name: "n1",
    address: "10.0.0.9",
    meta: { a: "b" },
  });
  const p = await f.cluster.propose({ type: "register", instance: instanceSpec() });
  const r = await f.app.request("/v1/catalog/service/web");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("X-Consul-Index"), String(p.index));
  assert.equal(r.headers.get("X-Consul-KnownLeader"), "true");
  assert.equal(r.headers.get("X-Consul-LastContact"), "0");
  const [e, ...rest] = await r.json();
  assert.equal(rest.length, 0);
  assert.match(e.ID, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(e.Node, "n1");
  assert.equal(e.Address, "10.0.0.9");
  assert.equal(e.Datacenter, "dc1");
  assert.deepEqual(e.TaggedAddresses.lan, "10.0.0.9");
  assert.deepEqual(e.NodeMeta, { a: "b" });
  assert.equal(e.ServiceID, "n1:web-1:80");
  assert.equal(e.ServiceName, "web");
  assert.deepEqual(e.ServiceTags, ["v1"]);
  assert.equal(e.ServiceAddress, "10.0.0.1");
  assert.equal(e.ServicePort, 32768);
  assert.deepEqual(e.ServiceMeta, { version: "1" });
  assert.deepEqual(e.ServiceWeights, { Passing: 1, Warning: 1 });
  assert.equal(e.ServiceEnableTagOverride, false);
  assert.equal(e.CreateIndex, p.index);
  assert.equal(e.ModifyIndex, p.index);
  f.close();
});

Deno.test("GET /v1/catalog/service/:name of an unknown service is [] with index 1", async () => {
  const f = fixture();
  const r = await f.app.request("/v1/catalog/service/nope");
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), []);
  assert.equal(r.headers.get("X-Consul-Index"), "1");
  f.close();
});

Deno.test("GET /v1/catalog/service/:name?tag= keeps instances having every tag", async () => {
  const f = fixture();
  await f.cluster.propose({
    type: "register",
    instance: instanceSpec({ id: "a", tags: ["x", "y"] }),
  });
  await f.cluster.propose({ type: "register", instance: instanceSpec({ id: "b", tags: ["x"] }) });
  const ids = async (q: string) =>
    (await (await f.app.request(`/v1/catalog/service/web${q}`)).json()).map(
      (e: { ServiceID: string }) => e.ServiceID,
    );
  assert.deepEqual(await ids("?tag=x"), ["a", "b"]);
  assert.deepEqual(await ids("?tag=x&tag=y"), ["a"]);
  assert.deepEqual(await ids("?tag=z"), []);
  f.close();
});

Deno.test("GET /v1/health/service/:name has Node, Service and Checks; ?passing filters", async () => {
  const f = fixture();
  await f.cluster.propose({ type: "node.register", name: "n1", address: "10.0.0.9", meta: {} });
  await f.cluster.propose({ type: "node.register", name: "n2", address: "10.0.0.8", meta: {} });
  await f.cluster.propose({ type: "register", instance: instanceSpec({ id: "ok" }) });
  await f.cluster.propose({
    type: "register",
    instance: instanceSpec({
      id: "sick",
      check: { http: "/", intervalMs: 1000, timeoutMs: 100 },
      checkResult: { status: "critical", output: "HTTP 500" },
    }),
  });
  await f.cluster.propose({ type: "register", instance: instanceSpec({ id: "far", node: "n2" }) });
  await f.cluster.propose({ type: "node.status", name: "n2", status: "down" });

  const all = await (await f.app.request("/v1/health/service/web")).json();
  assert.equal(all.length, 3);
  const sick = all.find((e: { Service: { ID: string } }) => e.Service.ID === "sick");
  assert.equal(sick.Node.Node, "n1");
  assert.equal(sick.Node.Address, "10.0.0.9");
  assert.equal(sick.Node.Datacenter, "dc1");
  assert.deepEqual(sick.Service.Tags, ["v1"]);
  assert.equal(sick.Service.Port, 32768);
  assert.deepEqual(sick.Service.Weights, { Passing: 1, Warning: 1 });
  assert.deepEqual(
    sick.Checks.map((c: { CheckID: string; Status: string }) => [c.CheckID, c.Status]),
    [["serfHealth", "passing"], ["service:sick", "critical"], ["service:sick:docker", "passing"]],
  );
  assert.equal(sick.Checks[1].Output, "HTTP 500");
  assert.equal(sick.Checks[1].Type, "http");
  assert.equal(sick.Checks[1].ServiceName, "web");
  assert.equal(sick.Checks[2].Type, "docker");
  const far = all.find((e: { Service: { ID: string } }) => e.Service.ID === "far");
  assert.deepEqual(
    far.Checks.map((c: { CheckID: string; Status: string }) => [c.CheckID, c.Status]),
    [["serfHealth", "critical"], ["service:far", "passing"], ["service:far:docker", "passing"]],
  );

  const passing = await (await f.app.request("/v1/health/service/web?passing")).json();
  assert.deepEqual(passing.map((e: { Service: { ID: string } }) => e.Service.ID), ["ok"]);
  const off = await (await f.app.request("/v1/health/service/web?passing=false")).json();
  assert.equal(off.length, 3);
  f.close();
});

Deno.test("GET /v1/catalog/services lists names with tags under the instances index", async () => {
  const f = fixture();
  await f.cluster.propose({
    type: "register",
    instance: instanceSpec({ id: "a", tags: ["b", "a"] }),
  });
  const p = await f.cluster.propose({
    type: "register",
    instance: instanceSpec({ id: "d", service: "db", tags: [] }),
  });
  const r = await f.app.request("/v1/catalog/services");
  assert.deepEqual(await r.json(), { web: ["a", "b"], db: [] });
  assert.equal(r.headers.get("X-Consul-Index"), String(p.index));
  f.close();
});

Deno.test("GET /v1/catalog/nodes and /v1/catalog/node/:node answer Consul's shapes", async () => {
  const f = fixture();
  const n = await f.cluster.propose({
    type: "node.register",
    name: "n1",
    address: "10.0.0.9",
    meta: { proxy: "true" },
  });
  await f.cluster.propose({ type: "register", instance: instanceSpec() });
  const r = await f.app.request("/v1/catalog/nodes");
  assert.equal(r.headers.get("X-Consul-Index"), String(n.index));
  const [node] = await r.json();
  assert.equal(node.Node, "n1");
  assert.equal(node.Address, "10.0.0.9");
  assert.deepEqual(node.Meta, { proxy: "true" });
  assert.equal(node.CreateIndex, n.index);

  const one = await (await f.app.request("/v1/catalog/node/n1")).json();
  assert.equal(one.Node.Node, "n1");
  assert.deepEqual(Object.keys(one.Services), ["n1:web-1:80"]);
  assert.equal(one.Services["n1:web-1:80"].Service, "web");
  assert.equal(one.Services["n1:web-1:80"].Port, 32768);
  const none = await f.app.request("/v1/catalog/node/ghost");
  assert.equal(none.status, 200);
  assert.equal(await none.json(), null);
  f.close();
});

Deno.test("PUT /v1/catalog/register registers a node and its service; deregister removes it", async () => {
  const f = fixture();
  const r = await f.app.request(
    "/v1/catalog/register",
    put({
      Datacenter: "dc1",
      Node: "ext",
      Address: "192.0.2.10",
      NodeMeta: { external: "true" },
      Service: { ID: "redis1", Service: "redis", Tags: ["primary"], Port: 6379 },
      Check: { CheckID: "service:redis1", ServiceID: "redis1", Status: "passing" },
    }),
  );
  assert.equal(r.status, 200);
  assert.equal(await r.json(), true);
  const i = f.store.instance("redis1");
  assert.equal(i?.node, "ext");
  assert.equal(i?.address, "192.0.2.10");
  assert.equal(i?.port, 6379);
  assert.equal(i?.checkResult, null);
  assert.deepEqual(
    i?.checks?.map((c) => [c.id, c.kind, c.status]),
    [["service:redis1", "reported", "passing"]],
  );
  assert.equal(i?.containerId, null);
  assert.deepEqual(f.store.node("ext")?.meta, { external: "true" });

  const d = await f.app.request(
    "/v1/catalog/deregister",
    put({ Node: "ext", ServiceID: "redis1" }),
  );
  assert.equal(await d.json(), true);
  assert.equal(f.store.instance("redis1"), undefined);
  f.close();
});

Deno.test("PUT /v1/catalog/deregister with only Node removes every instance of the node", async () => {
  const f = fixture();
  await f.cluster.propose({ type: "register", instance: instanceSpec({ id: "a", node: "ext" }) });
  await f.cluster.propose({ type: "register", instance: instanceSpec({ id: "b", node: "ext" }) });
  await f.cluster.propose({ type: "register", instance: instanceSpec({ id: "c", node: "n1" }) });
  const d = await f.app.request("/v1/catalog/deregister", put({ Node: "ext" }));
  assert.equal(await d.json(), true);
  assert.deepEqual(f.store.instances().map((i) => i.id), ["c"]);
  f.close();
});
