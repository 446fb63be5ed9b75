import assert from "node:assert/strict";
import { ANONYMOUS_ACCESSOR } from "../store/mod.ts";
import { FILTERED_HEADER, TOKEN_CHARS_MAX } from "./acl_enforce.ts";
import { addToken, type Fixture, fixture, instanceSpec, put } from "./_testing.ts";
import { sessionFromBody } from "./sessions.ts";

const MGMT = { "X-Consul-Token": "mgmt" };

/** A deny-by-default app with a management token "mgmt" and a token "app" reading app/. */
function denyFixture(): Fixture & { appAccessor: string } {
  const f = fixture({ aclDefault: "deny" });
  addToken(f.store, "mgmt", "management");
  const appAccessor = addToken(f.store, "app", `key_prefix "app/" { policy = "read" }`);
  return { ...f, appAccessor };
}

async function status(f: Fixture, path: string, init: RequestInit = {}): Promise<number> {
  const r = await f.app.request(path, init);
  await r.body?.cancel();
  return r.status;
}

Deno.test("aclMiddleware reads the token from ?token=, X-Consul-Token or Authorization: Bearer", async () => {
  const f = denyFixture();
  await f.app.request("/v1/kv/app/a", put("1", MGMT));
  const ok: { path: string; headers?: Record<string, string> }[] = [
    { path: "/v1/kv/app/a?token=app" },
    { path: "/v1/kv/app/a", headers: { "X-Consul-Token": "app" } },
    { path: "/v1/kv/app/a", headers: { Authorization: "Bearer app" } },
    { path: "/v1/kv/app/a", headers: { Authorization: "bearer   app " } },
    // Consul's order: the query parameter first, then X-Consul-Token, then Authorization.
    { path: "/v1/kv/app/a?token=app", headers: { "X-Consul-Token": "wrong" } },
    { path: "/v1/kv/app/a", headers: { "X-Consul-Token": "app", Authorization: "Bearer x" } },
  ];
  for (const { path, headers } of ok) {
    assert.equal(await status(f, path, { headers }), 200, `${path} ${JSON.stringify(headers)}`);
  }
  // No token, an empty one, or another scheme: the anonymous token, which deny leaves nothing.
  const anonymous: Record<string, string>[] = [
    {},
    { "X-Consul-Token": "" },
    { Authorization: "Basic YXBwOg==" },
  ];
  for (const headers of anonymous) {
    const r = await f.app.request("/v1/kv/app/a", { headers });
    assert.equal(r.status, 403, JSON.stringify(headers));
    assert.equal(
      await r.text(),
      `Permission denied: token with AccessorID '${ANONYMOUS_ACCESSOR}' lacks permission ` +
        `'key:read' on "app/a"\n`,
    );
  }
  f.close();
});

Deno.test("aclMiddleware answers an unknown token 'ACL not found' and a missing right in Consul's words", async () => {
  const f = denyFixture();
  const unknown = await f.app.request("/v1/kv/app/a", { headers: { "X-Consul-Token": "nope" } });
  assert.equal(unknown.status, 403);
  assert.equal(await unknown.text(), "ACL not found\n");
  // HEAD is checked as the GET it is answered by.
  assert.equal(await status(f, "/v1/kv/app/a", { method: "HEAD" }), 403);
  assert.equal(await status(f, "/v1/kv/app/a?token=app", { method: "HEAD" }), 404);
  const long = "x".repeat(TOKEN_CHARS_MAX + 1);
  assert.equal(await status(f, "/v1/kv/app/a", { headers: { "X-Consul-Token": long } }), 403);
  const write = await f.app.request("/v1/kv/app/a", put("2", { "X-Consul-Token": "app" }));
  assert.equal(write.status, 403);
  assert.equal(
    await write.text(),
    `Permission denied: token with AccessorID '${f.appAccessor}' lacks permission ` +
      `'key:write' on "app/a"\n`,
  );
  assert.equal(f.store.kvGet("app/a"), undefined);
  const op = await f.app.request("/v1/berth/raft/peers", { headers: { "X-Consul-Token": "app" } });
  assert.equal(op.status, 403);
  assert.match(await op.text(), /lacks permission 'operator:read'\n$/);
  const agent = await f.app.request("/v1/agent/self?token=app");
  assert.match(await agent.text(), /lacks permission 'agent:read' on "n1"\n$/);
  f.close();
});

Deno.test("aclMiddleware lets open routes and unknown routes through without looking at the token", async () => {
  const f = denyFixture();
  const bad = { headers: { "X-Consul-Token": "nope" } };
  for (const path of ["/v1/status/leader", "/v1/status/peers", "/v1/catalog/datacenters", "/ui"]) {
    assert.equal(await status(f, path, bad), 200, path);
  }
  assert.equal(await status(f, "/", bad), 302);
  assert.equal(await status(f, "/v1/nope", bad), 404);
  assert.equal(await status(f, "/v1/agent/leave", bad), 405);
  f.close();
});

Deno.test("aclMiddleware under --acl-default allow: the anonymous token may do all but acl", async () => {
  const f = fixture({ aclDefault: "allow" });
  assert.equal(await status(f, "/v1/kv/a", put("1")), 200);
  assert.equal(await status(f, "/v1/kv/a"), 200);
  assert.equal(await status(f, "/v1/agent/self"), 200);
  const snap = await f.app.request("/v1/snapshot");
  assert.equal(snap.status, 403);
  assert.match(await snap.text(), /lacks permission 'acl:write'\n$/);
  f.close();
});

Deno.test("GET /v1/kv ?recurse and ?keys answer only readable keys and say they filtered", async () => {
  const f = denyFixture();
  for (const k of ["app/a", "app/b", "secret/x"]) {
    await f.app.request(`/v1/kv/${k}`, put("v", MGMT));
  }
  const rec = await f.app.request("/v1/kv/?recurse", { headers: { "X-Consul-Token": "app" } });
  assert.equal(rec.status, 200);
  assert.equal(rec.headers.get(FILTERED_HEADER), "true");
  assert.deepEqual((await rec.json()).map((e: { Key: string }) => e.Key), ["app/a", "app/b"]);
  const keys = await f.app.request("/v1/kv/?keys&separator=/&token=app");
  assert.deepEqual(await keys.json(), ["app/"]);
  // Nothing filtered: no header. All filtered under a prefix: 404 like an empty prefix.
  const mine = await f.app.request("/v1/kv/app/?recurse&token=app");
  assert.equal(mine.headers.get(FILTERED_HEADER), null);
  assert.equal((await mine.json()).length, 2);
  assert.equal(await status(f, "/v1/kv/secret/?recurse&token=app"), 404);
  // The anonymous token is not told that something was left out (as Consul).
  const anon = await f.app.request("/v1/kv/?recurse");
  assert.equal(anon.headers.get(FILTERED_HEADER), null);
  assert.deepEqual(await anon.json(), []);
  // The management token sees all.
  const all = await f.app.request("/v1/kv/?keys", { headers: MGMT });
  assert.deepEqual(await all.json(), ["app/a", "app/b", "secret/x"]);
  f.close();
});

Deno.test("DELETE /v1/kv ?recurse needs key:write on the prefix and no rule under it granting less", async () => {
  const f = denyFixture();
  const w = addToken(
    f.store,
    "w",
    `key_prefix "" { policy = "write" }\nkey "a/keep" { policy = "read" }\n` +
      `key "b/locked" { policy = "deny" }`,
  );
  addToken(f.store, "exact", `key "c/x" { policy = "write" }`);
  for (const k of ["a/x", "a/keep", "b/x", "c/x"]) {
    await f.app.request(`/v1/kv/${k}`, put("v", MGMT));
  }
  const r = await f.app.request("/v1/kv/a/?recurse&token=w", { method: "DELETE" });
  assert.equal(r.status, 403);
  assert.equal(
    await r.text(),
    `Permission denied: token with AccessorID '${w}' lacks permission 'key:write' on "a/"\n`,
  );
  // A rule under the prefix decides even while no key it names exists: b/locked could be
  // written between the check and the delete.
  assert.equal(await status(f, "/v1/kv/b/?recurse&token=w", { method: "DELETE" }), 403);
  // An exact rule covers its key, not a tree (Consul: the default decides the tree).
  assert.equal(await status(f, "/v1/kv/c/x?recurse&token=exact", { method: "DELETE" }), 403);
  assert.deepEqual(f.store.kvKeys(""), ["a/keep", "a/x", "b/x", "c/x"]);
  assert.equal(await status(f, "/v1/kv/a/x?token=w", { method: "DELETE" }), 200);
  assert.equal(await status(f, "/v1/kv/c/x?token=exact", { method: "DELETE" }), 200);
  f.close();
});

Deno.test("a blocking GET /v1/kv?recurse filters its answer when it wakes", async () => {
  const f = denyFixture();
  await f.app.request("/v1/kv/app/a", put("1", MGMT));
  const first = await f.app.request("/v1/kv/?recurse&token=app");
  const index = Number(first.headers.get("X-Consul-Index"));
  await first.body?.cancel();
  const blocked = f.app.request(`/v1/kv/?recurse&token=app&index=${index}&wait=5s`);
  await f.app.request("/v1/kv/secret/new", put("2", MGMT));
  const r = await blocked;
  assert.ok(Number(r.headers.get("X-Consul-Index")) > index);
  assert.equal(r.headers.get(FILTERED_HEADER), "true");
  assert.deepEqual((await r.json()).map((e: { Key: string }) => e.Key), ["app/a"]);
  f.close();
});

Deno.test("catalog and health lists keep the instances whose service and node the token may read", async () => {
  const f = denyFixture();
  const reg = (id: string, name: string, node: string) =>
    f.app.request(
      "/v1/catalog/register",
      put({
        Node: node,
        Address: "10.0.0.9",
        Service: { ID: id, Service: name, Port: 80 },
      }, MGMT),
    );
  await reg("web-1", "web", "n2");
  await reg("db-1", "db", "n2");
  await reg("web-2", "web", "n3");
  addToken(f.store, "web", `service "web" { policy = "read" }\nnode "n2" { policy = "read" }`);
  const h = { headers: { "X-Consul-Token": "web" } };
  const json = async (path: string) => {
    const r = await f.app.request(path, h);
    assert.equal(r.status, 200, path);
    return await r.json();
  };
  assert.deepEqual(Object.keys(await json("/v1/catalog/services")), ["web"]);
  assert.deepEqual(
    (await json("/v1/catalog/service/web")).map((e: { ServiceID: string }) => e.ServiceID),
    ["web-1"],
  );
  assert.deepEqual(
    (await json("/v1/health/service/web")).map((e: { Service: { ID: string } }) => e.Service.ID),
    ["web-1"],
  );
  assert.deepEqual(await json("/v1/health/service/db"), []);
  assert.deepEqual((await json("/v1/catalog/nodes")).map((n: { Node: string }) => n.Node), ["n2"]);
  assert.equal(await json("/v1/catalog/node/n3"), null);
  assert.deepEqual(Object.keys((await json("/v1/catalog/node/n2")).Services), ["web-1"]);
  assert.deepEqual(
    (await json("/v1/berth/instances")).map((i: { id: string }) => i.id),
    ["web-1"],
  );
  const checks = await json("/v1/health/state/any");
  assert.ok(checks.length > 0);
  assert.ok(
    checks.every((c: { Node: string; ServiceName: string }) =>
      c.Node === "n2" && (c.ServiceName === "" || c.ServiceName === "web")
    ),
  );
  f.close();
});

Deno.test("writes with their target in the body check it: catalog and agent register, session create", async () => {
  const f = denyFixture();
  const t = addToken(
    f.store,
    "w",
    `service "web" { policy = "write" }\nnode "n1" { policy = "read" }\nsession "n1" { policy = "read" }`,
  );
  const h = { "X-Consul-Token": "w" };
  await f.app.request("/v1/catalog/register", put({ Node: "n1", Address: "10.0.0.1" }, MGMT));
  const cat = await f.app.request(
    "/v1/catalog/register",
    put({ Node: "n1", Address: "10.0.0.1", Service: { Service: "web", Port: 80 } }, h),
  );
  assert.equal(cat.status, 403);
  assert.match(await cat.text(), new RegExp(`'${t}' lacks permission 'node:write' on "n1"`));
  const skip = await f.app.request(
    "/v1/catalog/register",
    put({
      Node: "n1",
      Address: "10.0.0.1",
      SkipNodeUpdate: true,
      Service: { Service: "web", Port: 80 },
    }, h),
  );
  assert.equal(skip.status, 200, await skip.text());
  const db = await f.app.request("/v1/agent/service/register", put({ Name: "db", Port: 5 }, h));
  assert.match(await db.text(), /lacks permission 'service:write' on "db"/);
  assert.equal(
    await status(f, "/v1/agent/service/register", put({ Name: "web", Port: 5 }, h)),
    200,
  );
  const s = await f.app.request("/v1/session/create", put({}, h));
  assert.match(await s.text(), /lacks permission 'session:write' on "n1"/);
  assert.deepEqual(f.store.sessions.list(), []);
  assert.deepEqual([...new Set(f.store.instances().map((i) => i.service))], ["web"]);
  f.close();
});

Deno.test("sessions lists and /v1/agent lists answer what the token may read", async () => {
  const f = denyFixture();
  await f.app.request("/v1/catalog/register", put({ Node: "n1", Address: "10.0.0.1" }, MGMT));
  await f.cluster.propose({
    type: "register",
    instance: instanceSpec({ id: "n1:web", service: "web" }),
  });
  const created = await f.app.request("/v1/session/create", put({}, MGMT));
  const { ID } = await created.json();
  addToken(f.store, "r", `session_prefix "n9" { policy = "read" }`);
  for (const path of ["/v1/session/list", "/v1/session/node/n1", `/v1/session/info/${ID}`]) {
    const r = await f.app.request(`${path}?token=r`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), [], path);
    const m = await f.app.request(path, { headers: MGMT });
    assert.equal((await m.json()).length, 1, path);
  }
  const destroy = await f.app.request(`/v1/session/destroy/${ID}?token=r`, { method: "PUT" });
  assert.match(await destroy.text(), /lacks permission 'session:write' on "n1"/);
  assert.equal(f.store.sessions.list().length, 1);
  assert.deepEqual(await (await f.app.request("/v1/agent/services?token=r")).json(), {});
  assert.deepEqual(await (await f.app.request("/v1/agent/members?token=r")).json(), []);
  f.close();
});

Deno.test("PUT /v1/txn needs key:write on what it writes and filters what it reads", async () => {
  const f = denyFixture();
  for (const k of ["app/a", "secret/x"]) await f.app.request(`/v1/kv/${k}`, put("v", MGMT));
  const h = { "X-Consul-Token": "app" };
  const read = await f.app.request(
    "/v1/txn",
    put([{ KV: { Verb: "get-tree", Key: "" } }, { KV: { Verb: "get", Key: "secret/x" } }], h),
  );
  assert.equal(read.status, 200);
  assert.equal(read.headers.get(FILTERED_HEADER), "true");
  const body = await read.json();
  assert.deepEqual(body.Results.map((r: { KV: { Key: string } }) => r.KV.Key), ["app/a"]);
  const write = await f.app.request("/v1/txn", put([{ KV: { Verb: "set", Key: "app/b" } }], h));
  assert.equal(write.status, 403);
  assert.match(await write.text(), /lacks permission 'key:write' on "app\/b"/);
  const check = await f.app.request(
    "/v1/txn",
    put([{ KV: { Verb: "check-not-exists", Key: "secret/y" } }], h),
  );
  assert.match(await check.text(), /lacks permission 'key:read' on "secret\/y"/);
  assert.equal(f.store.kvGet("app/b"), undefined);
  // delete-tree decides from the rules, as DELETE ?recurse: a rule under the prefix that grants
  // less than write refuses it even while no key it names exists.
  addToken(f.store, "tree", `key_prefix "t/" { policy = "write" }\nkey "t/ro" { policy = "read" }`);
  await f.app.request("/v1/kv/t/a", put("v", MGMT));
  const tree = (key: string) =>
    f.app.request(
      "/v1/txn",
      put([{ KV: { Verb: "delete-tree", Key: key } }], { "X-Consul-Token": "tree" }),
    );
  const denied = await tree("t/");
  assert.equal(denied.status, 403);
  assert.match(await denied.text(), /lacks permission 'key:write' on "t\/"/);
  assert.deepEqual(f.store.kvKeys("t/"), ["t/a"]);
  const allowed = await tree("t/a");
  assert.equal(allowed.status, 200, await allowed.text());
  assert.deepEqual(f.store.kvKeys("t/"), []);
  f.close();
});

Deno.test("PUT /v1/agent/join needs agent:write only once the agent belongs to a cluster", async () => {
  const f = denyFixture();
  // No member yet (the agent runs without --bootstrap or --join): no token to check against.
  assert.equal(await status(f, "/v1/agent/join/10.0.0.2", { method: "PUT" }), 501);
  f.store.apply(f.store.appliedIndex() + 1, {
    type: "conf",
    voters: [1],
    learners: [],
    upsert: { id: 1, name: "n1", address: "127.0.0.1:8300" },
  });
  const r = await f.app.request("/v1/agent/join/10.0.0.2", { method: "PUT" });
  assert.equal(r.status, 403);
  assert.match(await r.text(), /lacks permission 'agent:write' on "n1"/);
  assert.equal(await status(f, "/v1/agent/join/10.0.0.2", { method: "PUT", headers: MGMT }), 501);
  f.close();
});

Deno.test("PUT /v1/session/destroy of a session this replica has not applied yet checks it after the read barrier", async () => {
  const f = denyFixture();
  await f.app.request("/v1/catalog/register", put({ Node: "n1", Address: "10.0.0.1" }, MGMT));
  addToken(f.store, "r", `session_prefix "" { policy = "read" }`);
  const spec = sessionFromBody({}, "n1");
  // The session is committed but reaches this replica only with the read barrier.
  const barrier = f.cluster.readBarrier.bind(f.cluster);
  f.cluster.readBarrier = () => {
    if (f.store.sessions.get(spec.id) === undefined) {
      f.store.apply(f.store.appliedIndex() + 1, { type: "session.create", session: spec });
    }
    return barrier();
  };
  for (const verb of ["destroy", "renew"]) {
    const r = await f.app.request(`/v1/session/${verb}/${spec.id}?token=r`, { method: "PUT" });
    assert.equal(r.status, 403, verb);
    assert.match(await r.text(), /lacks permission 'session:write' on "n1"/);
  }
  assert.equal(f.store.sessions.list().length, 1);
  f.close();
});

Deno.test("GET /v1/agent/service/:id refuses a token without service:read before a blocking query waits", async () => {
  // No read may block here: one that reaches the wait answers 429.
  const f = fixture({ aclDefault: "deny", blockedReadsMax: 0 });
  addToken(f.store, "mgmt", "management");
  addToken(f.store, "db", `service "db" { policy = "read" }`);
  const reg = await f.app.request(
    "/v1/agent/service/register",
    put({ Name: "web", ID: "web1", Port: 80 }, MGMT),
  );
  assert.equal(reg.status, 200);
  const first = await f.app.request("/v1/agent/service/web1", { headers: MGMT });
  assert.equal(first.status, 200);
  await first.body?.cancel();
  const index = first.headers.get("X-Consul-Index");
  const blocking = (id: string) => `/v1/agent/service/${id}?index=${index}&wait=10m`;
  const r = await f.app.request(blocking("web1"), { headers: { "X-Consul-Token": "db" } });
  assert.equal(r.status, 403);
  assert.match(await r.text(), /lacks permission 'service:read' on "web"/);
  // The same query with the right does wait (429 here); an unknown ID answers 404 at once.
  assert.equal(await status(f, blocking("web1"), { headers: MGMT }), 429);
  assert.equal(await status(f, blocking("nope"), { headers: MGMT }), 404);
  f.close();
});

Deno.test("GET /v1/berth/routes answers the routes of the services the token may read", async () => {
  const report = {
    listen: "127.0.0.1:8080",
    https: null,
    http: [{ host: "web.example.com", prefix: "/", service: "web", targets: 1, proto: "http1" }],
    tcp: [{ port: 9000, service: "db", state: "listening" as const, error: null }],
    udp: [
      { port: 53, service: "db", state: "listening" as const, error: null, flows: 1, dropped: 0 },
    ],
    conflicts: ["TCP port 9000: claimed by services db and web; db keeps it"],
    ejected: [
      { instance: "db", address: "10.0.0.2", port: 80, untilMs: 1 },
      { instance: "web", address: "10.0.0.1", port: 80, untilMs: 1 },
    ],
  };
  const f = fixture({ aclDefault: "deny", routes: () => report });
  addToken(f.store, "mgmt", "management");
  addToken(f.store, "web", `agent "n1" { policy = "read" }\nservice "web" { policy = "read" }`);
  for (const Name of ["web", "db"]) {
    await f.app.request("/v1/agent/service/register", put({ Name, Port: 80 }, MGMT));
  }
  const all = await f.app.request("/v1/berth/routes", { headers: MGMT });
  assert.deepEqual(await all.json(), report);
  const r = await f.app.request("/v1/berth/routes", { headers: { "X-Consul-Token": "web" } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get(FILTERED_HEADER), "true");
  assert.deepEqual(await r.json(), {
    ...report,
    tcp: [],
    udp: [],
    conflicts: [],
    ejected: report.ejected.filter((e) => e.instance === "web"),
  });
  f.close();
});
