/**
 * Our store rows in Consul's JSON shapes, field for field as Consul's HTTP API documents them,
 * so consul-template, Prometheus `consul_sd_configs` and Consul client libraries read them.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { CheckView, Instance, KvEntry, NodeInfo, RegisteredCheck } from "../store/mod.ts";
import { instanceChecks, nodeLevelChecks, shownMeta } from "../store/mod.ts";

/** What the shapes need of a node; instances on a node the store does not know get a stand-in. */
export type NodeView = Pick<
  NodeInfo,
  "name" | "address" | "status" | "meta" | "checks" | "createIndex" | "modifyIndex"
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
    ServiceMeta: shownMeta(i.meta),
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
    Meta: shownMeta(i.meta),
    Port: i.port,
    Weights: weights(i),
    EnableTagOverride: false,
    ...(dc === undefined ? {} : { Datacenter: dc }),
    CreateIndex: i.createIndex,
    ModifyIndex: i.modifyIndex,
  };
}

/** One check in Consul's shape (health entries, `/v1/health/checks`, `/v1/agent/checks`). */
export function consulCheck(c: CheckView) {
  const r = c.registered;
  return {
    Node: c.node,
    CheckID: c.id,
    Name: c.name,
    Status: c.status,
    Notes: c.notes,
    Output: c.output,
    ServiceID: c.serviceId,
    ServiceName: c.serviceName,
    ServiceTags: c.serviceTags,
    Type: c.type,
    Interval: r !== null && r.intervalMs > 0 ? goDuration(r.intervalMs) : "",
    Timeout: r !== null && r.timeoutMs > 0 ? goDuration(r.timeoutMs) : "",
    Definition: r === null ? {} : checkDefinition(r),
    CreateIndex: c.createIndex,
    ModifyIndex: c.modifyIndex,
  };
}

/** A duration as Go prints it: `10s`, `1m30s`, `500ms`. */
export function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms % 3_600_000 / 60_000);
  const s = ms % 60_000 / 1000;
  return `${h > 0 ? `${h}h` : ""}${h > 0 || m > 0 ? `${m}m` : ""}${s}s`;
}

function checkDefinition(r: RegisteredCheck) {
  return {
    ...(r.kind === "http" ? { HTTP: r.target } : {}),
    ...(r.kind === "tcp" ? { TCP: r.target } : {}),
    ...(r.kind === "grpc" ? { GRPC: r.target, GRPCUseTLS: false } : {}),
    ...(r.kind === "udp" ? { UDP: r.target } : {}),
    ...(r.intervalMs > 0 ? { Interval: goDuration(r.intervalMs) } : {}),
    ...(r.timeoutMs > 0 ? { Timeout: goDuration(r.timeoutMs) } : {}),
    ...(r.ttlMs > 0 ? { TTL: goDuration(r.ttlMs) } : {}),
    ...(r.deregisterCriticalAfterMs > 0
      ? { DeregisterCriticalServiceAfter: goDuration(r.deregisterCriticalAfterMs) }
      : {}),
  };
}

/**
 * One entry of `/v1/health/service/:name`: the node's checks (liveness, node-level) and the
 * instance's (checks.ts); the worst Status among them is the instance's status.
 */
export function healthEntry(i: Instance, n: NodeView, dc: string) {
  return {
    Node: catalogNode(n, dc),
    Service: agentService(i),
    Checks: [...nodeLevelChecks(n), ...instanceChecks(i, n.status)].map(consulCheck),
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

/** A KV entry; `session` holds its lock (Consul leaves Session out when none does). */
export function kvEntry(e: KvEntry, session: string | null = null) {
  return {
    LockIndex: e.lockIndex,
    Key: e.key,
    Flags: e.flags,
    Value: e.value.byteLength === 0 ? null : base64(e.value),
    ...(session === null ? {} : { Session: session }),
    CreateIndex: e.createIndex,
    ModifyIndex: e.modifyIndex,
  };
}
