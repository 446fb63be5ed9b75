/**
 * `/v1/catalog/*`: Consul's read shapes over the store, with blocking queries, `?filter`,
 * `?node-meta` and `?near` (list_params.ts), and the catalog write routes (external
 * registrations).
 *
 * @module
 */
import type { Context, Hono } from "hono";
import type { Authorizer } from "../acl/authorizer.ts";
import type { Command, Instance, InstanceSpec, RegisteredCheck, Store } from "../store/mod.ts";
import { CommandError, validateInstance } from "../store/mod.ts";
import { checkFromConsul } from "./check_definition.ts";
import { keepAllowed, requireRight } from "./acl_enforce.ts";
import { requireCheckTakeover, requireInstanceTakeover } from "./register_rights.ts";
import { checkOnNode } from "../store/mod.ts";
import { agentService, catalogNode, catalogServiceEntry, nodeLookup } from "./consul_shapes.ts";
import { type Deps, prepareRead, proposeChecked, setReadHeaders } from "./deps.ts";
import { applyListParams, listParams, SAMPLES } from "./list_params.ts";
import { badRequest, readJsonObject } from "./http_error.ts";
import { field, optionalField, serviceFromConsul } from "./service_definition.ts";

/** Consul's rule for an instance in a list: service:read on its service and node:read on its node. */
export function instanceReadable(a: Authorizer, i: { service: string; node: string }): boolean {
  return a.allows("service", i.service, "read") && a.allows("node", i.node, "read");
}

/**
 * The rights a catalog registration of `node` needs (Consul's vetRegisterWithACL): node:write on
 * the node it writes (also with SkipNodeUpdate when that creates the node), service:write on the
 * service it registers, and the rights on whatever it overwrites (register_rights.ts).
 */
function requireRegisterRights(
  c: Context,
  store: Store,
  reg: { node: string; commands: Command[] },
): void {
  const writesNode = reg.commands.some((cmd) => cmd.type === "node.register") ||
    store.node(reg.node) === undefined;
  if (writesNode) requireRight(c, "node", reg.node, "write");
  for (const cmd of reg.commands) {
    if (cmd.type === "register") {
      requireRight(c, "service", cmd.instance.service, "write");
      requireInstanceTakeover(c, store, cmd.instance);
    } else if (cmd.type === "check.register") {
      requireRight(c, "node", cmd.node, "write");
      requireCheckTakeover(c, store, cmd.node, cmd.check.id);
    }
  }
}

function withTags(instances: Instance[], tags: string[]): Instance[] {
  return tags.length === 0
    ? instances
    : instances.filter((i) => tags.every((t) => i.tags.includes(t)));
}

export function catalogRoutes(app: Hono, d: Deps): void {
  const { store } = d;

  app.get("/v1/catalog/services", async (c) => {
    const p = listParams(c, SAMPLES.catalogService, d.node);
    // Node meta (and filters on Node fields) also move with the nodes table.
    const withNodes = p.filter !== null || p.nodeMeta.length > 0;
    await prepareRead(c, d, {
      // The list alone moves only with service names and tags (CatalogIndex.servicesIndex).
      index: withNodes
        ? () => Math.max(store.tableIndex("instances"), store.tableIndex("nodes"))
        : () => d.catalog.servicesIndex(),
      watch: withNodes ? [{ table: "instances" }, { table: "nodes" }] : { topic: "services" },
    });
    const readable = (a: Authorizer, [name]: [string, unknown]) =>
      a.allows("service", name, "read");
    if (p.filter === null && p.nodeMeta.length === 0) {
      return c.json(Object.fromEntries(keepAllowed(c, [...d.catalog.services()], readable)));
    }
    // Services with at least one instance that passes, and the union of those instances' tags.
    const node = nodeLookup(store.nodes());
    const kept = applyListParams(
      store.instances().map((i) => {
        const n = node(i.node, i.address);
        return { row: catalogServiceEntry(i, n, d.datacenter), node: n };
      }),
      p,
    );
    const out = new Map<string, Set<string>>();
    for (const e of kept) {
      const tags = out.get(e.ServiceName) ?? new Set<string>();
      for (const t of e.ServiceTags) tags.add(t);
      out.set(e.ServiceName, tags);
    }
    const services = [...out].map(([k, v]) => [k, [...v].sort()] as [string, string[]]);
    return c.json(Object.fromEntries(keepAllowed(c, services, readable)));
  });

  app.get("/v1/catalog/service/:name", async (c) => {
    const name = c.req.param("name");
    const p = listParams(c, SAMPLES.catalogService, d.node);
    await prepareRead(c, d, {
      index: () => store.serviceIndex(name),
      watch: { service: name },
    });
    const node = nodeLookup(store.nodes());
    const list = keepAllowed(
      c,
      withTags(store.instances(name), c.req.queries("tag") ?? []),
      instanceReadable,
    );
    return c.json(applyListParams(
      list.map((i) => {
        const n = node(i.node, i.address);
        return { row: catalogServiceEntry(i, n, d.datacenter), node: n };
      }),
      p,
    ));
  });

  app.get("/v1/catalog/datacenters", (c) => {
    setReadHeaders(c, d, Math.max(1, store.appliedIndex()));
    return c.json([d.datacenter]);
  });

  app.get("/v1/catalog/nodes", async (c) => {
    const p = listParams(c, SAMPLES.node, d.node);
    await prepareRead(c, d, {
      index: () => store.tableIndex("nodes"),
      watch: { table: "nodes" },
    });
    return c.json(
      applyListParams(
        keepAllowed(c, store.nodes(), (a, n) => a.allows("node", n.name, "read"))
          .map((n) => ({ row: catalogNode(n, d.datacenter), node: n })),
        p,
      ),
    );
  });

  app.get("/v1/catalog/node/:node", async (c) => {
    const name = c.req.param("node");
    const { filter } = listParams(c, SAMPLES.agentService, d.node);
    await prepareRead(c, d, {
      index: () => Math.max(store.tableIndex("nodes"), store.tableIndex("instances")),
      watch: { node: name },
    });
    if (keepAllowed(c, [name], (a, n) => a.allows("node", n, "read")).length === 0) {
      return c.json(null);
    }
    const instances = store.instancesOfNode(name);
    const known = store.node(name);
    if (known === undefined && instances.length === 0) return c.json(null);
    const n = nodeLookup(known ? [known] : [])(name, instances[0]?.address ?? "");
    const services = keepAllowed(c, instances, instanceReadable).map((i) => agentService(i))
      .filter((s) => filter === null || filter.test(s));
    return c.json({
      Node: catalogNode(n, d.datacenter),
      Services: Object.fromEntries(services.map((s) => [s.ID, s])),
    });
  });

  app.put("/v1/catalog/register", async (c) => {
    const body = await readJsonObject(c.req.raw, "catalog register");
    const commands = catalogRegister(body);
    requireRegisterRights(c, store, {
      node: field(body, "Node", "string", "catalog register"),
      commands,
    });
    await proposeChecked(d, commands.length === 1 ? commands[0]! : { type: "batch", commands });
    return c.json(true);
  });

  app.put("/v1/catalog/deregister", async (c) => {
    const body = await readJsonObject(c.req.raw, "catalog deregister");
    const node = field(body, "Node", "string", "catalog deregister");
    const serviceId = optionalField(body, "ServiceID", "string", "catalog deregister");
    const checkId = optionalField(body, "CheckID", "string", "catalog deregister");
    let ids: string[];
    if (serviceId !== undefined) {
      const i = store.instance(serviceId);
      ids = i !== undefined && i.node === node ? [serviceId] : [];
      if (i !== undefined) requireRight(c, "service", i.service, "write");
      else requireRight(c, "node", node, "write");
    } else if (checkId !== undefined) {
      const check = checkOnNode(store, node, checkId);
      if (check !== undefined && check.serviceId !== "") {
        requireRight(c, "service", check.serviceName, "write");
      } else requireRight(c, "node", node, "write");
      await proposeChecked(d, { type: "check.deregister", node, id: checkId });
      return c.json(true);
    } else {
      requireRight(c, "node", node, "write");
      ids = store.instancesOfNode(node).map((i) => i.id);
    }
    if (ids.length > 0) {
      const commands: Command[] = ids.map((id) => ({ type: "deregister", id }));
      await proposeChecked(d, commands.length === 1 ? commands[0]! : { type: "batch", commands });
    }
    return c.json(true);
  });
}

/** Consul's catalog registration body → node.register (+ register) commands. */
function catalogRegister(body: Record<string, unknown>): Command[] {
  const what = "catalog register";
  const node = field(body, "Node", "string", what);
  const address = field(body, "Address", "string", what);
  const nodeMeta = optionalField(body, "NodeMeta", "stringMap", what) ?? {};
  const skipNode = optionalField(body, "SkipNodeUpdate", "boolean", what) ?? false;
  const commands: Command[] = [];
  if (!skipNode) {
    commands.push({
      type: "node.register",
      name: node,
      address,
      meta: nodeMeta,
    });
  }
  const service = optionalField(body, "Service", "object", what);
  const check = optionalField(body, "Check", "object", what);
  const checks = [
    ...(check === undefined ? [] : [check]),
    ...(optionalField(body, "Checks", "array", what) ?? []),
  ];
  const spec: InstanceSpec | null = service === undefined ? null : serviceFromConsul(service, {
    what: `${what}: Service`,
    node,
    defaultAddress: address,
    serviceKey: "Service",
  });
  // The checks a catalog registration carries are results the registrant reports: each one is
  // kept as given, bound to the service (ServiceID) or to the node.
  const serviceChecks: RegisteredCheck[] = [];
  for (const [n, raw] of checks.entries()) {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw badRequest(`${what}: Checks[${n}] must be an object`);
    }
    const c = raw as Record<string, unknown>;
    const sid = optionalField(c, "ServiceID", "string", `${what}: Check`) ?? "";
    if (sid !== "" && sid !== spec?.id) {
      throw badRequest(
        `${what}: Check.ServiceID "${sid}" is not ${
          spec === null ? "given a Service" : `Service.ID "${spec.id}"`
        }`,
      );
    }
    const registered = checkFromConsul(c, {
      what: `${what}: Check`,
      defaultId: sid === ""
        ? ""
        : checks.length === 1
        ? `service:${sid}`
        : `service:${sid}:${n + 1}`,
      defaultName: sid === "" ? "" : `Service '${spec!.service}' check`,
      service: null,
      mode: "report",
    });
    if (sid === "") {
      commands.push({ type: "check.register", node, serviceId: null, check: registered });
    } else serviceChecks.push(registered);
  }
  if (spec !== null) {
    if (serviceChecks.length > 0) spec.checks = serviceChecks;
    try {
      commands.splice(skipNode ? 0 : 1, 0, {
        type: "register",
        instance: validateInstance(spec, "Service"),
      });
    } catch (e) {
      if (e instanceof CommandError) throw badRequest(`${what}: ${e.message}`);
      throw e;
    }
  }
  return commands;
}
