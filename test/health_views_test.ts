/**
 * Every view that decides or shows whether an instance is served agrees, because each derives it
 * with the store's instanceHealth: the DNS zone, the proxy's route table, and the API's
 * `/v1/health/service` (Checks and `?passing`), `/v1/berth/instances` (what `berth service(s)`
 * and the dashboard show) and `/metrics`. The CLI's rendering is tested in src/cli/main_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createApp } from "../src/api/mod.ts";
import { LocalCluster } from "../src/cluster/testing.ts";
import { Zone } from "../src/dns/zone.ts";
import { buildRouteTable } from "../src/proxy/routes.ts";
import { type Command, Store } from "../src/store/mod.ts";
import { apiInstanceSpec, instanceSpec } from "./fixtures.ts";

interface Views {
  /** Addresses answered for web.service.berth. */
  dns: string[];
  proxy: string[];
  healthPassing: string[];
  /** The worst Status of each entry's Checks, as Consul clients aggregate them. */
  healthAggregated: Record<string, string>;
  berthInstances: Record<string, string>;
  metricsCritical: number;
}

/** An in-memory store, a one-member cluster and the API app over them; `close()` ends all. */
function apiOver() {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  const abort = new AbortController();
  const app = createApp({
    store,
    cluster,
    node: "n1",
    advertise: "10.0.0.1",
    version: "0.0.0-test",
    aclDefault: "allow",
    signal: abort.signal,
  });
  const close = async () => {
    abort.abort();
    await cluster.close();
    store.close();
  };
  return { store, cluster, app, close };
}

async function views(store: Store, app: ReturnType<typeof createApp>): Promise<Views> {
  const instances = store.instances();
  const nodes = store.nodes();
  const zone = new Zone({ instances, nodes, version: store.appliedIndex() }, {
    domain: "berth.",
    edgeDomain: null,
    ttl: 0,
  });
  const route = buildRouteTable(instances, nodes).match("web.test", "/");
  const get = async (path: string) => await (await app.request(`${path}`)).json();
  const order = ["passing", "warning", "critical"];
  const entries = await get("/v1/health/service/web") as {
    Service: { ID: string };
    Checks: { Status: string }[];
  }[];
  const metrics = await (await app.request("/metrics")).text();
  return {
    dns: zone.instances("web").map((i) => i.address),
    proxy: (route?.targets ?? []).map((t) => t.id),
    healthPassing: (await get("/v1/health/service/web?passing")).map(
      (e: { Service: { ID: string } }) => e.Service.ID,
    ),
    healthAggregated: Object.fromEntries(entries.map((e) => [
      e.Service.ID,
      order[Math.max(...e.Checks.map((c) => order.indexOf(c.Status)))] ?? "unknown",
    ])),
    berthInstances: Object.fromEntries(
      (await get("/v1/berth/instances")).map((i: { id: string; status: string }) => [
        i.id,
        i.status,
      ]),
    ),
    metricsCritical: Number(/^berth_instances\{status="critical"\} (\d+)$/m.exec(metrics)?.[1]),
  };
}

Deno.test("every view: the instances of a node marked down are not passing", async () => {
  const { store, cluster, app, close } = apiOver();
  const propose = async (c: Command) => assert.ok((await cluster.propose(c)).result.ok);
  try {
    for (const n of ["n1", "n2"]) {
      await propose({ type: "node.register", name: n, address: `10.0.0.${n.at(-1)}`, meta: {} });
    }
    const hosts = { httpHosts: ["web.test"] };
    await propose({ type: "register", instance: instanceSpec({ id: "near", ...hosts }) });
    await propose({
      type: "register",
      instance: apiInstanceSpec({ id: "far", node: "n2", address: "10.0.0.2", ...hosts }),
    });
    const up = await views(store, app);
    assert.deepEqual(up, {
      dns: ["10.0.0.2", "10.0.0.1"],
      proxy: ["far", "near"],
      healthPassing: ["far", "near"],
      healthAggregated: { far: "passing", near: "passing" },
      berthInstances: { far: "passing", near: "passing" },
      metricsCritical: 0,
    });

    await propose({ type: "node.status", name: "n2", status: "down" });
    const down = await views(store, app);
    assert.deepEqual(down, {
      dns: ["10.0.0.1"],
      proxy: ["near"],
      healthPassing: ["near"],
      healthAggregated: { far: "critical", near: "passing" },
      berthInstances: { far: "critical", near: "passing" },
      metricsCritical: 1,
    });
    const far = (await (await app.request("/v1/berth/instances")).json())
      .find((i: { id: string }) => i.id === "far");
    assert.equal(far.output, "node n2 is down");

    await propose({ type: "node.status", name: "n2", status: "alive" });
    assert.deepEqual(await views(store, app), up);
  } finally {
    await close();
  }
});

Deno.test("the dashboard shows /v1/berth/instances' derived status, not a stored one", async () => {
  const { app, close } = apiOver();
  try {
    const page = await (await app.request("/ui")).text();
    assert.match(page, /get\("\/v1\/berth\/instances"\)/);
    // The page counts and colours instances by the `status` field that endpoint derives.
    assert.match(page, /if \(i\.status === "passing"\) s\.passing\+\+/);
    assert.match(page, /\[i\.status, i\.status\], i\.output/);
  } finally {
    await close();
  }
});
