/**
 * `berth.lb` end to end in one process: a container label becomes instance meta through the
 * Docker watcher's desired state, is applied by the store, and picks the proxy's balancer.
 */
import assert from "node:assert/strict";
import { containerInstances } from "../src/docker/mod.ts";
import type { ContainerInfo } from "../src/docker/mod.ts";
import { buildRouteTable } from "../src/proxy/routes.ts";
import { Store } from "../src/store/mod.ts";

function container(name: string, hostPort: string, labels: Record<string, string>): ContainerInfo {
  return {
    Id: `id-${name}`,
    Name: `/${name}`,
    Config: { Image: "berth-test", Labels: { "berth.service": "web", ...labels }, Env: [] },
    State: { Status: "running", Running: true },
    HostConfig: { NetworkMode: "bridge" },
    NetworkSettings: { Ports: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: hostPort }] } },
  };
}

function policyOf(labels: Record<string, string>): { policy: string; problems: string[] } {
  const store = Store.open(":memory:");
  try {
    const opts = { node: "h1", advertise: "10.0.0.5", internal: false, edgeDomain: "edge.test" };
    const problems: string[] = [];
    let index = 0;
    for (const [name, port] of [["web-1", "4001"], ["web-2", "4002"]]) {
      const r = containerInstances(container(name!, port!, labels), opts);
      problems.push(...r.problems.map((p) => p.message));
      for (const instance of r.instances) {
        assert.deepEqual(store.apply(++index, { type: "register", instance }), { ok: true });
      }
    }
    const table = buildRouteTable(store.instances(), store.nodes(), { edgeDomain: "edge.test" });
    const route = table.services.get("web");
    assert.ok(route !== undefined);
    assert.equal(route.targets.length, 2);
    return { policy: route.balancer.policy, problems };
  } finally {
    store.close();
  }
}

Deno.test("berth.lb label: container → desired instance meta → store → proxy balancer policy", () => {
  assert.deepEqual(policyOf({ "berth.lb": "least_conn" }), { policy: "least_conn", problems: [] });
  assert.deepEqual(policyOf({ "berth.lb": "P2C" }), { policy: "p2c", problems: [] });
  assert.deepEqual(policyOf({}), { policy: "round_robin", problems: [] });
});

Deno.test("berth.lb label with an unknown policy: logged per container, round robin", () => {
  const r = policyOf({ "berth.lb": "fastest" });
  assert.equal(r.policy, "round_robin");
  assert.deepEqual(r.problems, [
    'berth.lb="fastest": expected round_robin|least_conn|p2c|hash|sticky_cookie; using round_robin',
    'berth.lb="fastest": expected round_robin|least_conn|p2c|hash|sticky_cookie; using round_robin',
  ]);
});
