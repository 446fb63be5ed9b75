/**
 * Our store rows in Consul's JSON shapes, field for field as Consul's HTTP API documents them,
 * so consul-template, Prometheus `consul_sd_configs` and Consul client libraries read them.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Health, Instance, KvEntry, NodeInfo } from "../store/mod.ts";
import { instanceHealth } from "../store/mod.ts";

/** What the shapes need of a node; instances on a node the store does not know get a stand-in. */
export type NodeView = Pick<
  NodeInfo,
  "name" | "address" | "status" | "meta" | "createIndex" | "modifyIndex"
>;

/** A stable UUID-shaped node ID derived from the node name (Consul nodes carry a UUID). */
export function nodeId(name: string): string {
  const h = createHash("sha256").update(`berth-node:${name}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${
    h.slice(20, 32)
  }`;
}

/** Looks nodes up by name, standing in for unknown ones with the instance's address. */
export function nodeLookup(
  nodes: readonly NodeInfo[],
): (name: string, address: string) => NodeView {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  return (name, address) =>
    byName.get(name) ??
      { name, address, status: "alive", meta: {}, createIndex: 0, modifyIndex: 0 };
}

export function catalogNode(n: NodeView, dc: string) {
  return {
    ID: nodeId(n.name),
    Node: n.name,
    Address: n.address,
    Datacenter: dc,
    TaggedAddresses: { lan: n.address, lan_ipv4: n.address, wan: n.address, wan_ipv4: n.address },
    Meta: n.meta,
    CreateIndex: n.createIndex,
    ModifyIndex: n.modifyIndex,
  };
}

function weights(i: Instance) {
  return { Passing: i.weight, Warning: 1 };
}

/** One entry of `/v1/catalog/service/:name`. */
export function catalogServiceEntry(i: Instance, n: NodeView, dc: string) {
  return {
    ID: nodeId(n.name),
    Node: n.name,
    Address: n.address,
    Datacenter: dc,
    TaggedAddresses: { lan: n.address, lan_ipv4: n.address, wan: n.address, wan_ipv4: n.address },
    NodeMeta: n.meta,
    ServiceKind: "",
    ServiceID: i.id,
    ServiceName: i.service,
    ServiceTags: i.tags,
    ServiceAddress: i.address,
    ServiceTaggedAddresses: {
      lan_ipv4: { Address: i.address, Port: i.port },
      wan_ipv4: { Address: i.address, Port: i.port },
    },
    ServiceWeights: weights(i),
    ServiceMeta: i.meta,
    ServicePort: i.port,
    ServiceEnableTagOverride: false,
    ServiceProxy: { MeshGateway: {}, Expose: {} },
    ServiceConnect: {},
    CreateIndex: i.createIndex,
    ModifyIndex: i.modifyIndex,
  };
}

/** A service as `/v1/health/service` and `/v1/catalog/node` nest it. */
export function agentService(i: Instance, dc?: string) {
  return {
    ID: i.id,
    Service: i.service,
    Tags: i.tags,
    Address: i.address,
    TaggedAddresses: {
      lan_ipv4: { Address: i.address, Port: i.port },
      wan_ipv4: { Address: i.address, Port: i.port },
    },
    Meta: i.meta,
    Port: i.port,
    Weights: weights(i),
    EnableTagOverride: false,
    ...(dc === undefined ? {} : { Datacenter: dc }),
    CreateIndex: i.createIndex,
    ModifyIndex: i.modifyIndex,
  };
}

/** Node liveness (the node's part of `h`) as Consul's `serfHealth` check. */
function nodeCheck(n: NodeView, h: Pick<Health, "node">) {
  const alive = h.node.status === "passing";
  return {
    Node: n.name,
    CheckID: "serfHealth",
    Name: "Serf Health Status",
    Status: h.node.status,
    Notes: "",
    Output: alive ? "Agent alive and reachable" : "Agent not live or unreachable",
    ServiceID: "",
    ServiceName: "",
    ServiceTags: [] as string[],
    Type: "",
    Definition: {},
    CreateIndex: n.createIndex,
    ModifyIndex: n.modifyIndex,
  };
}

function sourceCheck(i: Instance, v: { status: string; output: string }, o: {
  id: string;
  name: string;
  type: string;
}) {
  return {
    Node: i.node,
    CheckID: o.id,
    Name: o.name,
    Status: v.status,
    Notes: "",
    Output: v.output,
    ServiceID: i.id,
    ServiceName: i.service,
    ServiceTags: i.tags,
    Type: o.type,
    Definition: {},
    CreateIndex: i.createIndex,
    ModifyIndex: i.modifyIndex,
  };
}

/**
 * The instance's checks after `serfHealth`, one per health source: `service:<id>` for its check
 * (passing with no output when it has none), and `service:<id>:docker` for a Docker instance's
 * container state. The worst Status among them and serfHealth is the instance's status.
 */
function serviceChecks(i: Instance, h: Health) {
  const type = i.check?.http !== undefined ? "http" : i.check?.tcp ? "tcp" : "";
  const checks = [
    sourceCheck(i, h.check ?? { status: "passing", output: "" }, {
      id: `service:${i.id}`,
      name: `Service '${i.service}' check`,
      type,
    }),
  ];
  if (h.docker !== null) {
    checks.push(sourceCheck(i, h.docker, {
      id: `service:${i.id}:docker`,
      name: `Service '${i.service}' container`,
      type: "docker",
    }));
  }
  return checks;
}

/** One entry of `/v1/health/service/:name`. */
export function healthEntry(i: Instance, n: NodeView, dc: string) {
  const h = instanceHealth(i, n.status);
  return {
    Node: catalogNode(n, dc),
    Service: agentService(i),
    Checks: [nodeCheck(n, h), ...serviceChecks(i, h)],
  };
}

/** Base64 of bytes (Consul's KV `Value`). */
export function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

export function kvEntry(e: KvEntry) {
  return {
    LockIndex: e.lockIndex,
    Key: e.key,
    Flags: e.flags,
    Value: e.value.byteLength === 0 ? null : base64(e.value),
    CreateIndex: e.createIndex,
    ModifyIndex: e.modifyIndex,
  };
}
