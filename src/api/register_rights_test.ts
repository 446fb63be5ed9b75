import assert from "node:assert/strict";
import { checkOnNode } from "../store/mod.ts";
import { addToken, type Fixture, fixture, put } from "./_testing.ts";

const MGMT = { "X-Consul-Token": "mgmt" };

/**
 * A deny-by-default app where node n1 has service db (instance db1, with TTL check db-ttl) and a
 * node-level TTL check node-ttl; node n2 exists with nothing on it.
 */
async function seeded(): Promise<Fixture> {
  const f = fixture({ aclDefault: "deny" });
  addToken(f.store, "mgmt", "management");
  const ok = async (path: string, body: unknown) => {
    const r = await f.app.request(path, put(body, MGMT));
    assert.equal(r.status, 200, `seed ${path}: ${await r.text()}`);
  };
  await ok("/v1/catalog/register", { Node: "n1", Address: "10.0.0.1" });
  await ok("/v1/catalog/register", { Node: "n2", Address: "10.0.0.2" });
  await ok("/v1/agent/service/register", { Name: "db", ID: "db1", Port: 5432 });
  await ok("/v1/agent/check/register", {
    ID: "db-ttl",
    Name: "db ttl",
    ServiceID: "db1",
    TTL: "30s",
  });
  await ok("/v1/agent/check/register", { ID: "node-ttl", Name: "node ttl", TTL: "30s" });
  return f;
}

/** Sends `body` with token `secret`; answers the status and the body's text. */
async function send(f: Fixture, path: string, body: unknown, secret: string) {
  const r = await f.app.request(path, put(body, { "X-Consul-Token": secret }));
  return { status: r.status, text: await r.text() };
}

const lacks = (right: string, on: string) =>
  new RegExp(
    `^Permission denied: token with AccessorID '[0-9a-f-]+' lacks permission '${right}' on "${on}"\\n$`,
  );

const rule = (kind: string, name: string) => `${kind} "${name}" { policy = "write" }`;

Deno.test("PUT /v1/agent/service/register reusing another service's ID needs service:write on that service", async () => {
  const f = await seeded();
  addToken(f.store, "web", rule("service", "web"));
  addToken(f.store, "web+db", `${rule("service", "web")}\n${rule("service", "db")}`);
  const steal = { Name: "web", ID: "db1", Port: 80 };
  const r = await send(f, "/v1/agent/service/register", steal, "web");
  assert.equal(r.status, 403, r.text);
  assert.match(r.text, lacks("service:write", "db"));
  assert.equal(f.store.instance("db1")?.service, "db");
  const both = await send(f, "/v1/agent/service/register", steal, "web+db");
  assert.equal(both.status, 200, both.text);
  assert.equal(f.store.instance("db1")?.service, "web");
  f.close();
});

Deno.test("PUT /v1/catalog/register reusing an instance ID needs service:write on its service and node:write on its node when it moves", async () => {
  const f = await seeded();
  addToken(f.store, "web", `${rule("service", "web")}\n${rule("node", "n2")}`);
  addToken(
    f.store,
    "web+db",
    `${rule("service", "web")}\n${rule("service", "db")}\n${rule("node", "n2")}`,
  );
  addToken(
    f.store,
    "all",
    `${rule("service", "web")}\n${rule("service", "db")}\n${rule("node", "n2")}\n${
      rule("node", "n1")
    }`,
  );
  const move = {
    Node: "n2",
    Address: "10.0.0.2",
    Service: { Service: "web", ID: "db1", Port: 80 },
  };
  const web = await send(f, "/v1/catalog/register", move, "web");
  assert.match(web.text, lacks("service:write", "db"));
  const webDb = await send(f, "/v1/catalog/register", move, "web+db");
  assert.match(webDb.text, lacks("node:write", "n1"));
  assert.deepEqual(
    [f.store.instance("db1")?.service, f.store.instance("db1")?.node],
    ["db", "n1"],
  );
  const all = await send(f, "/v1/catalog/register", move, "all");
  assert.equal(all.status, 200, all.text);
  assert.deepEqual(
    [f.store.instance("db1")?.service, f.store.instance("db1")?.node],
    ["web", "n2"],
  );
  f.close();
});

Deno.test("PUT /v1/catalog/register with SkipNodeUpdate needs node:write when the node does not exist", async () => {
  const f = await seeded();
  addToken(f.store, "web", rule("service", "web"));
  const on = (node: string) => ({
    Node: node,
    Address: "10.0.0.9",
    SkipNodeUpdate: true,
    Service: { Service: "web", ID: `web-${node}`, Port: 80 },
  });
  const fresh = await send(f, "/v1/catalog/register", on("n9"), "web");
  assert.equal(fresh.status, 403, fresh.text);
  assert.match(fresh.text, lacks("node:write", "n9"));
  assert.equal(f.store.node("n9"), undefined);
  assert.equal(f.store.instance("web-n9"), undefined);
  const known = await send(f, "/v1/catalog/register", on("n2"), "web");
  assert.equal(known.status, 200, known.text);
  f.close();
});

Deno.test("PUT /v1/agent/check/register reusing a CheckID needs the right on the check's service or node", async () => {
  const f = await seeded();
  addToken(f.store, "node", rule("node", "n1"));
  addToken(f.store, "db", rule("service", "db"));
  // A node-level check over db's check: service:write on db.
  const overService = { ID: "db-ttl", Name: "mine", TTL: "30s" };
  const r1 = await send(f, "/v1/agent/check/register", overService, "node");
  assert.equal(r1.status, 403, r1.text);
  assert.match(r1.text, lacks("service:write", "db"));
  // db's check over the node-level one: node:write on the node.
  const overNode = { ID: "node-ttl", Name: "mine", ServiceID: "db1", TTL: "30s" };
  const r2 = await send(f, "/v1/agent/check/register", overNode, "db");
  assert.equal(r2.status, 403, r2.text);
  assert.match(r2.text, lacks("node:write", "n1"));
  const owner = (id: string) => checkOnNode(f.store, "n1", id)?.serviceId;
  assert.deepEqual([owner("db-ttl"), owner("node-ttl")], ["db1", ""]);
  // A new CheckID needs only the right on what it is bound to.
  const fresh = await send(
    f,
    "/v1/agent/check/register",
    { ID: "n2-ttl", Name: "x", TTL: "30s" },
    "node",
  );
  assert.equal(fresh.status, 200, fresh.text);
  f.close();
});

Deno.test("registrations carrying checks need the right on the checks whose IDs they reuse", async () => {
  const f = await seeded();
  addToken(f.store, "web", `${rule("service", "web")}\n${rule("node", "n1")}`);
  const agent = await send(f, "/v1/agent/service/register", {
    Name: "web",
    ID: "web1",
    Port: 80,
    Checks: [{ CheckID: "db-ttl", TTL: "30s" }],
  }, "web");
  assert.equal(agent.status, 403, agent.text);
  assert.match(agent.text, lacks("service:write", "db"));
  const catalog = await send(f, "/v1/catalog/register", {
    Node: "n1",
    Address: "10.0.0.1",
    Checks: [{ CheckID: "db-ttl", Name: "mine", Status: "passing" }],
  }, "web");
  assert.equal(catalog.status, 403, catalog.text);
  assert.match(catalog.text, lacks("service:write", "db"));
  assert.equal(f.store.instance("web1"), undefined);
  assert.equal(checkOnNode(f.store, "n1", "db-ttl")?.serviceId, "db1");
  f.close();
});
