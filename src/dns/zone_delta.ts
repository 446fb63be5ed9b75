/**
 * What the zone is told, as plain data: instance and node rows cut down to what answers need,
 * with their health part already derived (the store's instanceHealth) and the `--dns-acl` filter
 * already applied. Rows and deltas hold only strings, numbers, booleans, arrays and plain
 * objects, so a delta can be posted to another thread as it is (a DNS worker's zone replica);
 * the Zone (zone.ts) never reads the store.
 *
 * An instance is served exactly when its own sources pass (`ZoneInstanceRow.passing`: Docker
 * verdict, checks) and its node's source passes (`ZoneNodeRow.passing`: liveness, node-level
 * checks; a node the store does not know counts as passing): instanceHealth's status is the worst
 * of its sources, so it passes exactly when each does.
 *
 * @module
 */
import { instanceHealth } from "../store/mod.ts";
import type { Change, HealthSources, Instance, NodeInfo, NodeStatus } from "../store/mod.ts";

/**
 * Which services and nodes a zone may name. A node it may not read is absent (its name, address,
 * meta, NS and PTR records); an instance is served only when its service and its node are both
 * readable (Consul's DNS rule with ACLs).
 */
export interface ZoneFilter {
  service(name: string): boolean;
  node(name: string): boolean;
  /**
   * A fingerprint of what the filter decides from: filters with equal keys answer alike, so an
   * ACL change that leaves it equal needs no rebuild. Absent: any ACL change may change it.
   */
  readonly key?: string;
}

/** One instance the filter lets the zone name, any health. */
export interface ZoneInstanceRow {
  id: string;
  service: string;
  node: string;
  address: string;
  port: number;
  weight: number;
  tags: readonly string[];
  /** Whether the instance's own health sources pass (its node's part aside). */
  passing: boolean;
}

/** One node, any status; `visible` false keeps it out of every name but the edge's. */
export interface ZoneNodeRow {
  name: string;
  address: string;
  status: NodeStatus;
  meta: Readonly<Record<string, string>>;
  /** Whether the node's health source passes (liveness and node-level checks). */
  passing: boolean;
  /** Whether the filter lets the zone name the node. */
  visible: boolean;
}

/**
 * Rows to set, in order ("set to after": applying a delta twice leaves the zone as applying it
 * once). A null row removes the instance (absent, or not visible) or the node.
 */
export interface ZoneDelta {
  /** Store index after the change: the zone's version. */
  version: number;
  instances: readonly { id: string; row: ZoneInstanceRow | null }[];
  nodes: readonly { name: string; row: ZoneNodeRow | null }[];
}

/** The zone's row of an instance, or null when the filter hides it. */
export function instanceRow(i: Instance, visible?: ZoneFilter): ZoneInstanceRow | null {
  if (visible !== undefined && !(visible.service(i.service) && visible.node(i.node))) return null;
  return {
    id: i.id,
    service: i.service,
    node: i.node,
    address: i.address,
    port: i.port,
    weight: i.weight,
    tags: i.tags,
    // No node given: instanceHealth counts an unknown node as passing, so this is the rest.
    passing: instanceHealth(i, undefined).served,
  };
}

/** An instance with no health source of its own: its health is its node's. */
const NO_SOURCES: HealthSources = {
  node: "",
  docker: null,
  check: null,
  checkResult: null,
  containerId: null,
};

/** The zone's row of a node. */
export function nodeRow(n: NodeInfo, visible?: ZoneFilter): ZoneNodeRow {
  return {
    name: n.name,
    address: n.address,
    status: n.status,
    meta: n.meta,
    passing: instanceHealth({ ...NO_SOURCES, node: n.name }, n).served,
    visible: visible === undefined || visible.node(n.name),
  };
}

/** The delta of one change of the store's feed (not a reset: that one rebuilds). */
export function zoneDelta(c: Change, visible?: ZoneFilter): ZoneDelta {
  return {
    version: c.index,
    instances: c.instances.map((d) => ({
      id: d.id,
      row: d.after === null ? null : instanceRow(d.after, visible),
    })),
    nodes: c.nodes.map((d) => ({
      name: d.name,
      row: d.after === null ? null : nodeRow(d.after, visible),
    })),
  };
}

/** A delta that sets every given row: how a zone is filled from whole tables. */
export function fillDelta(
  data: { instances: readonly Instance[]; nodes: readonly NodeInfo[]; version: number },
  visible?: ZoneFilter,
): ZoneDelta {
  const instances: { id: string; row: ZoneInstanceRow }[] = [];
  for (const i of data.instances) {
    const row = instanceRow(i, visible);
    if (row !== null) instances.push({ id: i.id, row });
  }
  return {
    version: data.version,
    instances,
    nodes: data.nodes.map((n) => ({ name: n.name, row: nodeRow(n, visible) })),
  };
}
