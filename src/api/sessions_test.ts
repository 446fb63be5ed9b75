import assert from "node:assert/strict";
import { fixture, put } from "./_testing.ts";
import { lockDelayMs, sessionFromBody } from "./sessions.ts";

type F = ReturnType<typeof fixture>;

async function registerNode(f: F): Promise<void> {
  await f.cluster.propose({ type: "node.register", name: "n1", address: "10.0.0.1", meta: {} });
}

async function createSession(f: F, body: unknown = {}): Promise<string> {
  const r = await f.app.request("/v1/session/create", put(body));
  assert.equal(r.status, 200, await r.clone().text());
  const { ID } = await r.json();
  return ID;
}

Deno.test("PUT /v1/session/create answers a UUID; info shows Consul's fields and defaults", async () => {
  const f = fixture();
  await registerNode(f);
  const id = await createSession(f, { Name: "db-leader", TTL: "15.0s" });
  assert.match(id, /^[0-9a-f-]{36}$/);
  const r = await f.app.request(`/v1/session/info/${id}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("X-Consul-Index"), String(f.store.tableIndex("sessions")));
  const [s] = await r.json();
  assert.deepEqual(s, {
    ID: id,
    Name: "db-leader",
    Node: "n1",
    LockDelay: 15_000_000_000,
    Behavior: "release",
    TTL: "15.0s",
    Checks: ["serfHealth"],
    NodeChecks: ["serfHealth"],
    ServiceChecks: null,
    CreateIndex: 2,
    ModifyIndex: 2,
  });
  assert.equal((await (await f.app.request("/v1/session/list")).json()).length, 1);
  assert.equal((await (await f.app.request("/v1/session/node/n1")).json()).length, 1);
  assert.deepEqual(await (await f.app.request("/v1/session/node/n2")).json(), []);
  f.close();
});

Deno.test("PUT /v1/session/renew/:id answers [session], 404 once destroyed", async () => {
  const f = fixture();
  await registerNode(f);
  const id = await createSession(f, { TTL: "10s" });
  const r = await f.app.request(`/v1/session/renew/${id}`, { method: "PUT" });
  assert.equal(r.status, 200);
  assert.equal((await r.json())[0].ID, id);
  const d = await f.app.request(`/v1/session/destroy/${id}`, { method: "PUT" });
  assert.equal(await d.json(), true);
  const gone = await f.app.request(`/v1/session/renew/${id}`, { method: "PUT" });
  assert.equal(gone.status, 404);
  assert.match(await gone.text(), /not found/);
  assert.deepEqual(await (await f.app.request(`/v1/session/info/${id}`)).json(), []);
  f.close();
});

Deno.test("PUT /v1/session/create refuses bad TTL, Behavior, LockDelay, node and checks with 400", async (t) => {
  const f = fixture();
  await registerNode(f);
  const cases: [unknown, RegExp][] = [
    [{ TTL: "5s" }, /Invalid Session TTL '5s'/],
    [{ TTL: "25h" }, /Invalid Session TTL/],
    [{ TTL: "soon" }, /Session TTL 'soon' invalid/],
    [{ Behavior: "keep" }, /Invalid Behavior setting 'keep'/],
    [{ LockDelay: "2m" }, /LockDelay .* over the 60s maximum/],
    [{ Node: "ghost" }, /node "ghost" is not known/],
    [{ Checks: ["service:nope"] }, /Missing check 'service:nope'/],
    [{ NodeChecks: "serfHealth" }, /NodeChecks must be a list/],
    ["[1,2]", /body must be a JSON object/],
    ["{", /Request decode failed/],
  ];
  for (const [body, want] of cases) {
    await t.step(JSON.stringify(body), async () => {
      const r = await f.app.request("/v1/session/create", put(body));
      assert.equal(r.status, 400);
      assert.match(await r.text(), want);
    });
  }
  f.close();
});

Deno.test("session routes answer 400 for a malformed session id", async () => {
  const f = fixture();
  for (const path of ["/v1/session/info/xyz", "/v1/session/renew/xyz", "/v1/session/destroy/xyz"]) {
    const r = await f.app.request(path, { method: path.includes("info") ? "GET" : "PUT" });
    assert.equal(r.status, 400, path);
    assert.match(await r.text(), /expected a UUID/);
  }
  f.close();
});

Deno.test("sessionFromBody() follows Consul's defaults: serfHealth unless checks are given", () => {
  assert.deepEqual(sessionFromBody({}, "n1").nodeChecks, ["serfHealth"]);
  assert.deepEqual(sessionFromBody({ Checks: [] }, "n1").nodeChecks, []);
  assert.deepEqual(
    sessionFromBody({ Checks: null, NodeChecks: null, ServiceChecks: null }, "n1").nodeChecks,
    ["serfHealth"],
    "null lists are absent: the default serfHealth stays",
  );
  const s = sessionFromBody(
    { checks: ["serfHealth", "service:web"], ServiceChecks: [{ ID: "service:api" }] },
    "n1",
  );
  assert.deepEqual(s.nodeChecks, ["serfHealth", "service:web"]);
  assert.deepEqual(s.serviceChecks, ["service:api"]);
});

Deno.test("lockDelayMs() reads durations, nanoseconds and small numbers as seconds", () => {
  assert.equal(lockDelayMs(undefined), 15_000);
  assert.equal(lockDelayMs("15s"), 15_000);
  assert.equal(lockDelayMs("0s"), 0);
  assert.equal(lockDelayMs(5), 5_000);
  assert.equal(lockDelayMs(2_000_000_000), 2_000);
});

Deno.test("PUT /v1/kv/:key?acquire/release locks a key for one session at a time", async () => {
  let now = 0;
  const f = fixture({ now: () => now });
  await registerNode(f);
  const a = await createSession(f, { LockDelay: "10s" });
  const b = await createSession(f);
  const acquire = (s: string, body = "v") => f.app.request(`/v1/kv/lock?acquire=${s}`, put(body));
  assert.equal(await (await acquire(a, "held by a")).json(), true);
  assert.equal(await (await acquire(b)).json(), false);
  const [e] = await (await f.app.request("/v1/kv/lock")).json();
  assert.equal(e.Session, a);
  assert.equal(e.LockIndex, 1);
  assert.equal(atob(e.Value), "held by a");
  const rel = await f.app.request(`/v1/kv/lock?release=${b}`, put(""));
  assert.equal(await rel.json(), false);
  // The holder's session ends: released, lock-delay from now.
  now = 1_000;
  await f.app.request(`/v1/session/destroy/${a}`, { method: "PUT" });
  const [freed] = await (await f.app.request("/v1/kv/lock")).json();
  assert.equal(freed.Session, undefined);
  now = 10_999;
  assert.equal(await (await acquire(b)).json(), false);
  now = 11_000;
  assert.equal(await (await acquire(b)).json(), true);
  assert.equal((await (await f.app.request("/v1/kv/lock")).json())[0].LockIndex, 2);
  f.close();
});

Deno.test("PUT /v1/kv/:key?acquire with a bad or unknown session answers 400", async () => {
  const f = fixture();
  const bad = await f.app.request("/v1/kv/k?acquire=nope", put(""));
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /expected a session id/);
  const unknown = await f.app.request(
    "/v1/kv/k?acquire=aaaaaaaa-0000-4000-8000-000000000001",
    put(""),
  );
  assert.equal(unknown.status, 400);
  assert.match(await unknown.text(), /invalid session/);
  const both = await f.app.request(
    "/v1/kv/k?acquire=aaaaaaaa-0000-4000-8000-000000000001&release=aaaaaaaa-0000-4000-8000-000000000001",
    put(""),
  );
  assert.equal(both.status, 400);
  f.close();
});

Deno.test("PUT /v1/kv/:key?acquire&cas takes the lock only at that ModifyIndex", async () => {
  const f = fixture();
  await registerNode(f);
  const a = await createSession(f);
  await f.app.request("/v1/kv/k", put("x"));
  const idx = f.store.kvGet("k")!.modifyIndex;
  const stale = await f.app.request(`/v1/kv/k?acquire=${a}&cas=${idx + 5}`, put("y"));
  assert.equal(await stale.json(), false);
  const ok = await f.app.request(`/v1/kv/k?acquire=${a}&cas=${idx}`, put("y"));
  assert.equal(await ok.json(), true);
  f.close();
});

Deno.test("GET /v1/session/list?index=N blocks until a session is created", async () => {
  const f = fixture();
  await registerNode(f);
  const first = await f.app.request("/v1/session/list");
  const index = Number(first.headers.get("X-Consul-Index"));
  let answered = false;
  const blocked = Promise.resolve(
    f.app.request(`/v1/session/list?index=${index}&wait=30s`),
  ).then((r) => {
    answered = true;
    return r;
  });
  await f.app.request("/v1/kv/unrelated", put("x"));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(answered, false, "a KV write does not end a session watch");
  const id = await createSession(f);
  const r = await blocked;
  assert.ok(Number(r.headers.get("X-Consul-Index")) > index);
  assert.deepEqual((await r.json()).map((s: { ID: string }) => s.ID), [id]);
  f.close();
});
