import assert from "node:assert/strict";
import { apiInstanceSpec, registeredCheck } from "../../test/fixtures.ts";
import type { RegisteredCheck } from "../store/mod.ts";
import { fixture } from "./_testing.ts";
const ttl = (id: string, status: RegisteredCheck["status"]) => registeredCheck(id, { status });

/** n1 (env=prod) with web-1 (v1, passing) and n2 (env=dev) with web-2 (v2, critical), db-1. */
async function catalog() {
  const f = fixture();
  const p = (c: Parameters<typeof f.cluster.propose>[0]) => f.cluster.propose(c);
  await p({ type: "node.register", name: "n1", address: "10.0.0.1", meta: { env: "prod" } });
  await p({ type: "node.register", name: "n2", address: "10.0.0.2", meta: { env: "dev" } });
  await p({
    type: "register",
    instance: apiInstanceSpec({
      id: "web-2",
      node: "n2",
      tags: ["v2"],
      checks: [ttl("w2", "critical")],
    }),
  });
  await p({
    type: "register",
    instance: apiInstanceSpec({ id: "web-1", tags: ["v1"], checks: [ttl("w1", "passing")] }),
  });
  await p({
    type: "register",
    instance: apiInstanceSpec({ id: "db-1", service: "db", node: "n2" }),
  });
  return f;
}

async function json(f: Awaited<ReturnType<typeof catalog>>, path: string) {
  const r = await f.app.request(path);
  const text = await r.text();
  assert.equal(r.status, 200, `${path}: ${text}`);
  return JSON.parse(text);
}

Deno.test("GET /v1/health/checks/:service lists every check of the service's instances", async () => {
  const f = await catalog();
  const checks = await json(f, "/v1/health/checks/web");
  assert.deepEqual(
    checks.map((c: { CheckID: string; Status: string; ServiceID: string; Node: string }) => [
      c.CheckID,
      c.Status,
      c.ServiceID,
      c.Node,
    ]),
    [["w1", "passing", "web-1", "n1"], ["w2", "critical", "web-2", "n2"]],
  );
  assert.deepEqual(
    (await json(f, "/v1/health/checks/web?filter=Status%20%3D%3D%20critical")).map(
      (c: { CheckID: string }) => c.CheckID,
    ),
    ["w2"],
  );
  assert.deepEqual(await json(f, "/v1/health/checks/nope"), []);
  f.close();
});

Deno.test("GET /v1/health/state/:state lists checks in that state, node checks included", async () => {
  const f = await catalog();
  const ids = async (path: string) =>
    (await json(f, path)).map((c: { Node: string; CheckID: string }) => `${c.Node}/${c.CheckID}`);
  assert.deepEqual(await ids("/v1/health/state/critical"), ["n2/w2"]);
  assert.deepEqual(await ids("/v1/health/state/passing"), [
    "n1/serfHealth",
    "n1/w1",
    "n2/serfHealth",
    "n2/service:db-1",
  ]);
  assert.equal((await ids("/v1/health/state/any")).length, 5);
  assert.deepEqual(
    await ids("/v1/health/state/any?node-meta=env:dev&filter=CheckID%20!%3D%20serfHealth"),
    [
      "n2/service:db-1",
      "n2/w2",
    ],
  );
  const bad = await f.app.request("/v1/health/state/sick");
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /^Invalid state "sick"/);
  assert.ok(bad.headers.has("X-Consul-Index"));
  f.close();
});

Deno.test("GET /v1/health/node/:node lists the node's checks; an unknown node none", async () => {
  const f = await catalog();
  assert.deepEqual(
    (await json(f, "/v1/health/node/n2")).map((c: { CheckID: string }) => c.CheckID),
    ["serfHealth", "service:db-1", "w2"],
  );
  assert.deepEqual(await json(f, "/v1/health/node/n9"), []);
  f.close();
});

Deno.test("GET /v1/health/service/:name with ?filter, ?node-meta and ?near=_agent", async () => {
  const f = await catalog();
  const ids = async (q: string) =>
    (await json(f, `/v1/health/service/web${q}`)).map((e: { Service: { ID: string } }) =>
      e.Service.ID
    );
  assert.deepEqual(await ids(""), ["web-1", "web-2"]);
  assert.deepEqual(await ids("?filter=" + encodeURIComponent('"v2" in Service.Tags')), ["web-2"]);
  assert.deepEqual(await ids("?filter=" + encodeURIComponent("Checks.Status == critical")), [
    "web-2",
  ]);
  assert.deepEqual(
    await ids("?filter=" + encodeURIComponent("Node.Meta.env == prod or Service.ID == web-2")),
    ["web-1", "web-2"],
  );
  assert.deepEqual(await ids("?node-meta=env:dev"), ["web-2"]);
  assert.deepEqual(await ids("?node-meta=env:dev&node-meta=x:y"), []);
  assert.deepEqual(await ids("?near=n2"), ["web-2", "web-1"]);
  assert.deepEqual(await ids("?near=_agent"), ["web-1", "web-2"]); // the agent is n1
  assert.deepEqual(await ids("?passing"), ["web-1"]);
  f.close();
});

Deno.test("catalog lists take ?filter, ?node-meta, ?near; /v1/catalog/datacenters", async () => {
  const f = await catalog();
  const nodes = await json(f, "/v1/catalog/nodes?node-meta=env:prod");
  assert.deepEqual(nodes.map((n: { Node: string }) => n.Node), ["n1"]);
  const near = await json(f, "/v1/catalog/nodes?near=n2");
  assert.deepEqual(near.map((n: { Node: string }) => n.Node), ["n2", "n1"]);
  const svc = await json(
    f,
    "/v1/catalog/service/web?filter=" + encodeURIComponent("ServiceTags contains v1"),
  );
  assert.deepEqual(svc.map((s: { ServiceID: string }) => s.ServiceID), ["web-1"]);
  assert.deepEqual(await json(f, "/v1/catalog/datacenters"), ["dc1"]);
  f.close();
});

Deno.test("agent lists take ?filter", async () => {
  const f = await catalog();
  const services = await json(
    f,
    "/v1/agent/services?filter=" + encodeURIComponent("Tags is empty"),
  );
  assert.deepEqual(Object.keys(services), []);
  const all = await json(f, "/v1/agent/services?filter=" + encodeURIComponent('Service == "web"'));
  assert.deepEqual(Object.keys(all), ["web-1"]);
  const checks = await json(
    f,
    "/v1/agent/checks?filter=" + encodeURIComponent("Status == passing"),
  );
  assert.deepEqual(Object.keys(checks), ["w1"]);
  f.close();
});

Deno.test("list endpoints answer a bad ?filter or ?node-meta with 400 and one line", async () => {
  const f = await catalog();
  const cases: [string, RegExp][] = [
    [
      "/v1/health/service/web?filter=Service.Nope%20%3D%3D%20x",
      /selector "Service.Nope" is not valid/,
    ],
    ["/v1/health/checks/web?filter=Status%20%3D%3D", /expected a value at the end/],
    ["/v1/health/state/any?filter=(", /expected a match expression/],
    ["/v1/catalog/nodes?filter=Node%20~%20x", /unexpected "~"/],
    ["/v1/catalog/service/web?filter=ServiceID%20matches%20%22(%22", /bad regular expression/],
    ["/v1/catalog/service/web?filter=ServiceID%20matches%20%22(%3F%3Dx)%22", /bad regular/],
    ["/v1/agent/checks?filter=x", /expected ==, !=/],
    ["/v1/agent/services?filter=Nope%20is%20empty", /selector "Nope" is not valid/],
    ["/v1/health/node/n1?filter=Status%20%3D%3D%20%22x", /unterminated string/],
    ["/v1/health/service/web?node-meta=novalue", /bad \?node-meta=novalue: expected key:value/],
  ];
  for (const [path, want] of cases) {
    const r = await f.app.request(path);
    const text = await r.text();
    assert.equal(r.status, 400, `${path}: ${text}`);
    assert.match(text, want, path);
    assert.equal(text.trim().split("\n").length, 1, path);
  }
  f.close();
});

Deno.test("GET /v1/catalog/services and /v1/catalog/node/:node take ?filter and ?node-meta", async () => {
  const f = await catalog();
  assert.deepEqual(await json(f, "/v1/catalog/services?node-meta=env:dev"), {
    db: ["v1"],
    web: ["v2"],
  });
  assert.deepEqual(
    await json(f, "/v1/catalog/services?filter=" + encodeURIComponent("ServiceTags contains v1")),
    { db: ["v1"], web: ["v1"] },
  );
  const node = await json(f, "/v1/catalog/node/n2?filter=" + encodeURIComponent("Service == db"));
  assert.deepEqual(Object.keys(node.Services), ["db-1"]);
  f.close();
});
