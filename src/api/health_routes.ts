/**
 * `/v1/health/*`: instances with their checks, and checks by service, node and state, in
 * Consul's shapes (checks from src/store/checks.ts, the same statuses instanceHealth derives).
 * Every list takes `?filter`, and `?node-meta` / `?near` where Consul has them (list_params.ts).
 *
 * @module
 */
import type { Hono } from "hono";
import type { CheckStatus, CheckView, Instance, NodeInfo } from "../store/mod.ts";
import {
  CHECK_STATUSES,
  checksOfNode,
  instanceChecks,
  instanceHealth,
  nodeLevelChecks,
} from "../store/mod.ts";
import type { Authorizer } from "../acl/authorizer.ts";
import { keepAllowed } from "./acl_enforce.ts";
import { instanceReadable } from "./catalog.ts";
import { consulCheck, healthEntry, nodeLookup } from "./consul_shapes.ts";
import { decodePath, type Deps, prepareRead } from "./deps.ts";
import { badRequest } from "./http_error.ts";
import { applyListParams, listParams, SAMPLES } from "./list_params.ts";
import { flag } from "./query.ts";
import { compareCodePoints } from "../lib/code_point_order.ts";

/** `?tag` (repeatable): instances with every tag. */
function tagged<T extends { tags: string[] }>(list: T[], tags: string[]): T[] {
  return tags.length === 0 ? list : list.filter((i) => tags.every((t) => i.tags.includes(t)));
}

/** Consul's rule for a check in a list: node:read on its node, service:read on its service. */
export function checkReadable(a: Authorizer, v: CheckView): boolean {
  return a.allows("node", v.node, "read") &&
    (v.serviceId === "" || a.allows("service", v.serviceName, "read"));
}

export function healthRoutes(app: Hono, d: Deps): void {
  const { store } = d;
  const nodesAndInstances = {
    index: () => Math.max(store.tableIndex("instances"), store.tableIndex("nodes")),
    watch: [{ table: "instances" }, { table: "nodes" }] as const,
  };

  app.get("/v1/health/service/:name", async (c) => {
    const name = decodePath(c.req.param("name"), "service name");
    const p = listParams(c, SAMPLES.healthEntry, d.node);
    await prepareRead(c, d, {
      index: () => store.serviceIndex(name),
      watch: { service: name },
    });
    const nodes = store.nodes();
    const node = nodeLookup(nodes);
    let list = keepAllowed(
      c,
      tagged(store.instances(name), c.req.queries("tag") ?? []),
      instanceReadable,
    );
    if (flag((n) => c.req.query(n), "passing")) {
      const byName = new Map(nodes.map((n) => [n.name, n]));
      list = list.filter((i) => instanceHealth(i, byName.get(i.node)).served);
    }
    return c.json(applyListParams(
      list.map((i) => {
        const n = node(i.node, i.address);
        return { row: healthEntry(i, n, d.datacenter), node: n };
      }),
      p,
    ));
  });

  app.get("/v1/health/checks/:service", async (c) => {
    const name = decodePath(c.req.param("service"), "service name");
    const p = listParams(c, SAMPLES.check, d.node);
    await prepareRead(c, d, {
      index: () => store.serviceIndex(name),
      watch: { service: name },
    });
    const node = nodeLookup(store.nodes());
    return c.json(applyListParams(
      keepAllowed(c, store.instances(name), instanceReadable).flatMap((i) => {
        const n = node(i.node, i.address);
        return instanceChecks(i, n.status).map((v) => ({ row: consulCheck(v), node: n }));
      }),
      p,
    ));
  });

  app.get("/v1/health/state/:state", async (c) => {
    const state = c.req.param("state");
    if (state !== "any" && !CHECK_STATUSES.includes(state as CheckStatus)) {
      throw badRequest(
        `Invalid state "${state.slice(0, 40)}": use any, passing, warning or critical`,
      );
    }
    const p = listParams(c, SAMPLES.check, d.node);
    await prepareRead(c, d, nodesAndInstances);
    const rows: { row: ReturnType<typeof consulCheck>; node: NodeInfo }[] = [];
    const add = (views: CheckView[], n: NodeInfo) => {
      for (const v of keepAllowed(c, views, checkReadable)) {
        if (state === "any" || v.status === state) rows.push({ row: consulCheck(v), node: n });
      }
    };
    // Warning or critical: only the instances the catalog index lists have such a check.
    const instances = state === "warning" || state === "critical"
      ? [...d.catalog.withCheckStatus(state)].map((id) => store.instance(id))
        .filter((i) => i !== undefined).sort((a, b) => compareCodePoints(a.id, b.id))
      : store.instances();
    const byNode = new Map<string, Instance[]>();
    for (const i of instances) {
      const list = byNode.get(i.node);
      if (list === undefined) byNode.set(i.node, [i]);
      else list.push(i);
    }
    // Each known node's checks (liveness, node-level, then its instances' in id order).
    for (const n of store.nodes()) {
      add(nodeLevelChecks(n), n);
      for (const i of byNode.get(n.name) ?? []) add(instanceChecks(i, n.status), n);
      byNode.delete(n.name);
    }
    // Instances on nodes the store does not know (external registrations without a node).
    const node = nodeLookup([]);
    for (const i of instances) {
      if (!byNode.has(i.node)) continue;
      add(instanceChecks(i, undefined), { ...node(i.node, i.address) });
    }
    return c.json(applyListParams(rows, p));
  });

  app.get("/v1/health/node/:node", async (c) => {
    const name = decodePath(c.req.param("node"), "node name");
    const p = listParams(c, SAMPLES.check, d.node);
    await prepareRead(c, d, { ...nodesAndInstances, watch: { node: name } });
    const known = store.node(name);
    const instances = store.instancesOfNode(name);
    if (known === undefined && instances.length === 0) return c.json([]);
    const views = known === undefined
      ? [
        ...nodeLevelChecks({ name, status: "alive", createIndex: 0, modifyIndex: 0 }),
        ...instances.flatMap((i) => instanceChecks(i, undefined)),
      ]
      : checksOfNode(store, name);
    const n = known ?? { name, meta: {} };
    return c.json(applyListParams(
      keepAllowed(c, views, checkReadable).map((v) => ({ row: consulCheck(v), node: n })),
      p,
    ));
  });
}
