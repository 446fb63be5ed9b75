import assert from "node:assert/strict";
import { instance, node } from "./_testing.ts";
import { Zone } from "./zone.ts";
import { fillDelta, instanceRow, nodeRow, type ZoneDelta } from "./zone_delta.ts";

const OPTIONS = { domain: "berth.", edgeDomain: null, ttl: 0 };

function empty(): Zone {
  return new Zone({ instances: [], nodes: [], version: 0 }, OPTIONS);
}

Deno.test("Zone.apply() of a delta it already reflects changes nothing and names no key", () => {
  const zone = empty();
  const delta = fillDelta({
    instances: [instance({ id: "w1", service: "web", address: "10.0.0.1" })],
    nodes: [node({ name: "n1", address: "192.168.1.1" })],
    version: 5,
  });
  assert.deepEqual([...zone.apply(delta)].sort(), [
    "addr 10.0.0.1",
    "addr 192.168.1.1",
    "node n1",
    "service web",
    "zone",
  ]);
  const before = { web: zone.instances("web"), ns: zone.nameServers };
  assert.deepEqual([...zone.apply({ ...structuredClone(delta), version: 6 })], []);
  assert.deepEqual({ web: zone.instances("web"), ns: zone.nameServers }, before);
  assert.equal(zone.version, 6);
});

Deno.test("Zone keeps a PTR name while another instance of the service is at the address", () => {
  const zone = empty();
  const at = (id: string, port: number) =>
    instanceRow(instance({ id, service: "db", address: "10.0.0.7", port }))!;
  zone.apply({ version: 1, instances: [{ id: "d1", row: at("d1", 1) }], nodes: [] });
  zone.apply({ version: 2, instances: [{ id: "d2", row: at("d2", 2) }], nodes: [] });
  const removed = zone.apply({ version: 3, instances: [{ id: "d1", row: null }], nodes: [] });
  assert.deepEqual([...removed], ["service db"]);
  assert.deepEqual(zone.reverseNames("10.0.0.7"), { nodes: [], services: ["db"] });
  const last = zone.apply({ version: 4, instances: [{ id: "d2", row: null }], nodes: [] });
  assert.deepEqual([...last].sort(), ["addr 10.0.0.7", "service db"]);
  assert.equal(zone.reverseNames("10.0.0.7"), undefined);
});

Deno.test("Zone names a node spelled two ways by the last in name order, and the other when it goes", () => {
  const zone = empty();
  const set = (name: string, address: string | null): ZoneDelta => ({
    version: 1,
    instances: [],
    nodes: [{ name, row: address === null ? null : nodeRow(node({ name, address })) }],
  });
  zone.apply(set("n1", "192.168.1.1"));
  zone.apply(set("N1", "192.168.1.2"));
  // "n1" sorts after "N1": it is the one `n1.node` answers with, as a rebuild would pick.
  assert.equal(zone.nodes.get("n1")?.address, "192.168.1.1");
  zone.apply(set("n1", null));
  assert.equal(zone.nodes.get("n1")?.address, "192.168.1.2");
  assert.deepEqual(zone.nameServers, ["n1"]);
  zone.apply(set("N1", null));
  assert.equal(zone.nodes.get("n1"), undefined);
  assert.deepEqual(zone.nameServers, []);
});

Deno.test("Zone serves an instance again when its node's node-level check passes again", () => {
  const zone = empty();
  const check = (status: "passing" | "critical") => ({
    id: "disk",
    name: "disk",
    notes: "",
    kind: "ttl" as const,
    target: "",
    ttlMs: 1000,
    intervalMs: 0,
    timeoutMs: 0,
    deregisterCriticalAfterMs: 0,
    status,
    output: "",
  });
  const n1 = (status: "passing" | "critical") =>
    nodeRow(node({ name: "n1", address: "192.168.1.1", checks: [check(status)] }));
  zone.fill(fillDelta({
    instances: [instance({ id: "w1", service: "web", node: "n1", address: "10.0.0.1" })],
    nodes: [],
    version: 1,
  }));
  assert.equal(zone.instances("web").length, 1); // its node unknown: counted alive
  const down = zone.apply({
    version: 2,
    instances: [],
    nodes: [{ name: "n1", row: n1("critical") }],
  });
  assert.equal(zone.instances("web").length, 0);
  assert.ok(down.has("service web"));
  zone.apply({ version: 3, instances: [], nodes: [{ name: "n1", row: n1("passing") }] });
  assert.equal(zone.instances("web").length, 1);
});
