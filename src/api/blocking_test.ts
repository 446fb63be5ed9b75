import assert from "node:assert/strict";
import { fixture, instanceSpec, put } from "./_testing.ts";
import { Blocker } from "./blocker.ts";
import { Store } from "../store/mod.ts";
import { sleep, waitFor } from "../../test/wait.ts";
import { LocalCluster } from "../cluster/testing.ts";
import { ApiServer } from "./mod.ts";

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
    b.wait({ all: true }, never, { waitMs: 60_000 }),
    b.wait({ all: true }, never, { waitMs: 60_000 }),
  ];
  assert.equal(b.size, 2);
  assert.throws(() => b.wait({ all: true }, never, { waitMs: 60_000 }), /too many blocking/);
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

Deno.test("blocking reads over HTTP: changes to other services and keys answer none; a watched one answers its own", async () => {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  const api = new ApiServer({
    store,
    cluster,
    node: "n1",
    advertise: "127.0.0.1",
    version: "test",
    aclDefault: "allow",
    listen: { host: "127.0.0.1", port: 0 },
  });
  await api.start();
  const base = `http://127.0.0.1:${api.address.port}`;
  try {
    for (let s = 0; s < 10; s++) {
      await cluster.propose({
        type: "register",
        instance: instanceSpec({ id: `n1:svc-${s}:80`, service: `svc-${s}` }),
      });
      await cluster.propose({
        type: "kv.put",
        key: `cfg/${s}`,
        value: new Uint8Array([s]),
        flags: 0,
      });
    }
    const at = store.appliedIndex();
    const blocked = async () =>
      Number(
        /^berth_api_blocked_reads (\d+)$/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1],
      );
    // 100 service watches (10 per service) and 100 KV watches (10 per key and prefix).
    const answered = new Set<string>();
    const reads = new Map<string, Promise<Response>>();
    for (let i = 0; i < 100; i++) {
      const paths = [
        `/v1/health/service/svc-${i % 10}?index=${at}&wait=10m&n=${i}`,
        Math.floor(i / 10) % 2 === 0
          ? `/v1/kv/cfg/${i % 10}?index=${at}&wait=10m&n=${i}`
          : `/v1/kv/cfg/${i % 10}?recurse&index=${at}&wait=10m&n=${i}`,
      ];
      for (const path of paths) {
        reads.set(path, fetch(`${base}${path}`).then((r) => (answered.add(path), r)));
      }
    }
    await waitFor("200 blocked reads", async () => (await blocked()) === 200);
    // Other services, other keys, other tables: nothing answers.
    await cluster.propose({
      type: "register",
      instance: instanceSpec({ id: "n1:other:80", service: "other" }),
    });
    await cluster.propose({
      type: "kv.put",
      key: "elsewhere/x",
      value: new Uint8Array(),
      flags: 0,
    });
    await cluster.propose({ type: "kv.put", key: "cfg", value: new Uint8Array(), flags: 0 });
    assert.equal(await blocked(), 200);
    assert.equal(answered.size, 0);
    // svc-3 changes: its 10 watches answer with its new index, nothing else.
    const p = await cluster.propose({ type: "deregister", id: "n1:svc-3:80" });
    await cluster.propose({ type: "kv.put", key: "cfg/7/sub", value: new Uint8Array(), flags: 0 });
    assert.equal(await blocked(), 200 - 10 - 5);
    const expected = [...reads.keys()].filter((k) =>
      k.startsWith("/v1/health/service/svc-3?") || k.startsWith("/v1/kv/cfg/7?recurse")
    );
    for (const path of expected) {
      const r = await reads.get(path)!;
      assert.equal(r.status, 200);
      if (path.startsWith("/v1/health")) {
        assert.equal(r.headers.get("X-Consul-Index"), String(p.index));
        assert.deepEqual(await r.json(), []);
      } else {
        assert.equal((await r.json()).length, 2);
      }
    }
    assert.deepEqual([...answered].sort(), expected.sort());
  } finally {
    await api.close();

    store.close();
  }
});

Deno.test("blocking GET /v1/catalog/services?index waits through health and address changes, answers a new tag", async () => {
  const f = fixture();
  try {
    const p = await f.cluster.propose({ type: "register", instance: instanceSpec() });
    let answered = false;
    const pending = Promise.resolve(
      f.app.request(`/v1/catalog/services?index=${p.index}&wait=10m`),
    ).then((r) => (answered = true, r));
    // The list stays { web: ["v1"] }: the read keeps waiting.
    await f.cluster.propose({ type: "docker", id: "n1:web-1:80", state: "paused", detail: "" });
    await f.cluster.propose({ type: "register", instance: instanceSpec({ port: 1 }) });
    await f.cluster.propose({ type: "register", instance: instanceSpec({ id: "n1:web-2:80" }) });
    await sleep(20);
    assert.equal(answered, false);
    const tagged = await f.cluster.propose({
      type: "register",
      instance: instanceSpec({ id: "n1:web-2:80", tags: ["v1", "v2"] }),
    });
    const r = await pending;
    assert.deepEqual(await r.json(), { web: ["v1", "v2"] });
    assert.equal(r.headers.get("X-Consul-Index"), String(tagged.index));
  } finally {
    f.close();
  }
});

Deno.test("blocking GET /v1/kv/:key and /v1/agent/service/:id wake on a restore that takes their index back", async () => {
  const dir = await Deno.makeTempDir();
  const f = fixture();
  try {
    await f.app.request("/v1/kv/cfg/a", put("one"));
    await f.cluster.propose({ type: "register", instance: instanceSpec({ port: 1 }) });
    await f.store.writeSnapshotFile(`${dir}/snap`, "raft");
    for (let n = 2; n <= 5; n++) {
      await f.app.request("/v1/kv/cfg/a", put(String(n)));
      await f.cluster.propose({ type: "register", instance: instanceSpec({ port: n }) });
    }
    const index = f.store.appliedIndex();
    let answered = 0;
    const kv = Promise.resolve(f.app.request(`/v1/kv/cfg/a?index=${index}&wait=10m`));
    const svc = Promise.resolve(
      f.app.request(`/v1/agent/service/n1:web-1:80?index=${index}&wait=10m`),
    );
    for (const p of [kv, svc]) void p.then(() => answered++);
    await sleep(20);
    assert.equal(answered, 0);
    // The backup: the key and the instance as they were, with their older modify indexes.
    f.store.installSnapshotFile(`${dir}/snap`);
    // Before the fix both slept their 10 minutes (their index had gone down, not up).
    const r = await Promise.race([Promise.all([kv, svc]), sleep(5000).then(() => null)]);
    assert.ok(r !== null, "a blocked read did not wake");
    const [kr, sr] = r;
    assert.equal(kr.status, 200);
    assert.equal((await kr.json())[0].Value, btoa("one"));
    assert.ok(Number(kr.headers.get("X-Consul-Index")) < index);
    assert.equal(sr.status, 200);
    assert.equal((await sr.json()).Port, 1);
  } finally {
    f.abort.abort();
    f.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a blocked read over HTTP ends when its client goes away, and no longer counts", async () => {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  const api = new ApiServer({
    store,
    cluster,
    node: "n1",
    advertise: "127.0.0.1",
    version: "test",
    aclDefault: "allow",
    listen: { host: "127.0.0.1", port: 0 },
  });
  await api.start();
  const base = `http://127.0.0.1:${api.address.port}`;
  const blocked = async () =>
    Number(
      /^berth_api_blocked_reads (\d+)$/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1],
    );
  const conns: Deno.Conn[] = [];
  try {
    await cluster.propose({ type: "kv.put", key: "k", value: new Uint8Array([1]), flags: 0 });
    const at = store.appliedIndex();
    for (const path of [`/v1/kv/k?index=${at}&wait=10m`, `/v1/catalog/services?index=${at}`]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: api.address.port });
      conns.push(conn);
      await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
    }
    await waitFor("two reads blocked", async () => await blocked() === 2);
    conns.shift()!.close();
    await waitFor("the closed one released", async () => await blocked() === 1);
    conns.shift()!.close();
    await waitFor("both released", async () => await blocked() === 0);
  } finally {
    for (const c of conns) c.close();
    await api.close();
    store.close();
  }
});

Deno.test("blocking GET /v1/agent/services and /v1/catalog/node/:node wait through other nodes' changes", async () => {
  const f = fixture();
  try {
    const p = await f.cluster.propose({ type: "register", instance: instanceSpec() });
    const answered = new Set<string>();
    const read = (path: string) =>
      Promise.resolve(f.app.request(`${path}?index=${p.index}&wait=10m`)).then((r) => {
        answered.add(path);
        return r;
      });
    const agent = read("/v1/agent/services");
    const node = read("/v1/catalog/node/n1");
    const checks = read("/v1/agent/checks");
    await waitFor(
      "3 blocked reads",
      async () =>
        /^berth_api_blocked_reads 3$/m.test(await (await f.app.request("/metrics")).text()),
    );
    // Another node and its instances change: nothing of n1 does.
    await f.cluster.propose({ type: "node.register", name: "n2", address: "10.0.0.2", meta: {} });
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({ id: "n2:web-1:80", node: "n2" }),
    });
    await sleep(20);
    assert.deepEqual([...answered], []);
    const own = await f.cluster.propose({
      type: "register",
      instance: instanceSpec({ id: "n1:api:80", service: "api" }),
    });
    for (const r of [await agent, await node, await checks]) {
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("X-Consul-Index"), String(own.index));
    }
    assert.deepEqual(Object.keys(await (await agent).json()).sort(), ["n1:api:80", "n1:web-1:80"]);
  } finally {
    f.close();
  }
});
