import assert from "node:assert/strict";
import { fixture, instanceSpec, put } from "./_testing.ts";
import { Blocker } from "./blocker.ts";
import { Store } from "../store/mod.ts";
import { sleep } from "../../test/wait.ts";

Deno.test("blocking GET /v1/kv/:key?index returns when the key changes", async () => {
  const f = fixture();
  await f.app.request("/v1/kv/k", put("1"));
  const first = await f.app.request("/v1/kv/k");
  const index = first.headers.get("X-Consul-Index");
  let answered = false;
  const pending = Promise.resolve(f.app.request(`/v1/kv/k?index=${index}&wait=10m`)).then((r) => {
    answered = true;
    return r;
  });
  // An unrelated key does not wake the watcher.
  await f.app.request("/v1/kv/other", put("x"));
  await sleep(20);
  assert.equal(answered, false);
  await f.app.request("/v1/kv/k", put("2"));
  const r = await pending;
  assert.equal(r.status, 200);
  assert.equal(Number(r.headers.get("X-Consul-Index")) > Number(index), true);
  const [e] = await r.json();
  assert.equal(e.Value, btoa("2"));
  f.close();
});

Deno.test("blocking GET /v1/health/service/:name?index returns on a status change", async () => {
  const f = fixture();
  const p = await f.cluster.propose({ type: "register", instance: instanceSpec() });
  const pending = f.app.request(`/v1/health/service/web?index=${p.index}&wait=5m`);
  await f.cluster.propose({ type: "docker", id: "n1:web-1:80", state: "paused", detail: "" });
  const r = await pending;
  const [e] = await r.json();
  assert.deepEqual(e.Checks[2], { ...e.Checks[2], Status: "critical", Output: "container paused" });
  assert.equal(r.headers.get("X-Consul-Index"), String(p.index + 1));
  f.close();
});

Deno.test("blocking GET answers with the current data when the wait ends without a change", async () => {
  const f = fixture();
  const p = await f.cluster.propose({ type: "register", instance: instanceSpec() });
  const r = await f.app.request(`/v1/catalog/service/web?index=${p.index}&wait=200ms`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("X-Consul-Index"), String(p.index));
  assert.equal((await r.json()).length, 1);
  f.close();
});

Deno.test("blocking GET with an index already passed answers at once", async () => {
  const f = fixture();
  const p = await f.cluster.propose({ type: "register", instance: instanceSpec() });
  // A 10-minute wait: only an immediate answer lets this test finish.
  const r = await f.app.request(`/v1/catalog/services?index=${p.index - 1}&wait=10m`);
  assert.deepEqual(await r.json(), { web: ["v1"] });
  f.close();
});

Deno.test("blocking GET ends at once when the server shuts down", async () => {
  const f = fixture();
  const pending = f.app.request("/v1/catalog/services?index=1&wait=10m");
  f.abort.abort();
  const r = await pending;
  assert.equal(r.status, 200);
  f.close();
});

Deno.test("Blocker.wait() refuses with 429 beyond its bound", async () => {
  const store = Store.open(":memory:");
  const abort = new AbortController();
  const b = new Blocker(store, { waitersMax: 2, signal: abort.signal });
  const never = () => false;
  const waits = [
    b.wait(() => true, never, { waitMs: 60_000 }),
    b.wait(() => true, never, { waitMs: 60_000 }),
  ];
  assert.equal(b.size, 2);
  assert.throws(() => b.wait(() => true, never, { waitMs: 60_000 }), /too many blocking/);
  abort.abort();
  await Promise.all(waits);
  assert.equal(b.size, 0);
  store.close();
});

Deno.test("blocking GET /v1/health/service/:name?index wakes when an installed snapshot drops the service", async () => {
  const dir = await Deno.makeTempDir();
  const f = fixture();
  try {
    // The leader's state a few entries later: "web" deregistered, "api" registered.
    const leader = Store.open(":memory:");
    leader.apply(1, { type: "register", instance: instanceSpec() });
    leader.apply(2, { type: "deregister", id: "n1:web-1:80" });
    leader.apply(3, {
      type: "register",
      instance: instanceSpec({ id: "n1:api:80", service: "api" }),
    });
    await leader.writeSnapshotFile(`${dir}/snap`, "raft");
    const p = await f.cluster.propose({ type: "register", instance: instanceSpec() });
    const pending = f.app.request(`/v1/health/service/web?index=${p.index}&wait=10m`);
    await sleep(20);
    f.store.installSnapshotFile(`${dir}/snap`);
    // Before the fix the install announced only the services it brought: this slept 10 minutes.
    const r = await Promise.race([pending, sleep(5000).then(() => null)]);
    assert.ok(r !== null, "the blocked read did not wake");
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), []);
    assert.equal(r.headers.get("X-Consul-Index"), "2");
  } finally {
    f.abort.abort();
    f.close();
    await Deno.remove(dir, { recursive: true });
  }
});
