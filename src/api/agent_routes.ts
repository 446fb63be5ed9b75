/**
 * `/v1/agent/*` and `/v1/status/*`: this agent, its members, and service registration through
 * the agent (instances owned by this node, `containerId` null).
 *
 * @module
 */
import type { Context, Hono } from "hono";
import type { MemberStatus } from "../cluster/mod.ts";
import { CLUSTER_PORT, formatHostPort, parseHostPort } from "../lib/host_port.ts";
import { errorText } from "../lib/error_text.ts";
import { CommandError, validateInstance } from "../store/mod.ts";
import { agentService, nodeId } from "./consul_shapes.ts";
import { type Deps, prepareRead, proposeChecked, setReadHeaders } from "./deps.ts";
import { badRequest, HttpError, readJsonObject } from "./http_error.ts";
import { serviceFromConsul } from "./service_definition.ts";
import { keepAllowed, requireRight } from "./acl_enforce.ts";
import { requireInstanceTakeover } from "./register_rights.ts";
import { listParams, SAMPLES } from "./list_params.ts";

/** Serf's member status codes, which Consul's /v1/agent/members reports. */
const SERF_ALIVE = 1;
const SERF_FAILED = 4;

function splitAddress(address: string): { host: string; port: number } {
  try {
    return parseHostPort(address, CLUSTER_PORT);
  } catch {
    return { host: address, port: CLUSTER_PORT };
  }
}

function agentMember(m: MemberStatus, dc: string) {
  const { host, port } = splitAddress(m.address);
  return {
    Name: m.name,
    Addr: host,
    Port: port,
    Tags: {
      dc,
      role: "node",
      raft_role: m.role,
      raft_state: m.state,
      id: String(m.id),
    },
    Status: m.status === "alive" ? SERF_ALIVE : SERF_FAILED,
    ProtocolMin: 1,
    ProtocolMax: 5,
    ProtocolCur: 2,
    DelegateMin: 2,
    DelegateMax: 5,
    DelegateCur: 4,
  };
}

/** Config keys whose values are hidden: tokens, secrets, keys (also key file paths). */
const SECRET_KEY = /token|secret|password|passphrase|key$/i;

/**
 * The config as `/v1/agent/self` shows it: the value of every key named like a secret, at any
 * depth, and any string holding a PEM private key, replaced by `<redacted>`.
 */
export function redact(value: unknown, key = ""): unknown {
  if (SECRET_KEY.test(key) && value !== null && value !== "" && value !== undefined) {
    return "<redacted>";
  }
  if (typeof value === "string") return /PRIVATE KEY/.test(value) ? "<redacted>" : value;
  if (Array.isArray(value)) return value.map((v) => redact(v));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  }
  return value;
}

/** Answers 501 naming the command when the cluster offers no such operation. */
export function notSupported(what: string): HttpError {
  return new HttpError(501, `${what} is not supported by this cluster`);
}

export function agentRoutes(app: Hono, d: Deps): void {
  const { store, cluster } = d;
  const plain = (c: Context) => setReadHeaders(c, d, Math.max(1, store.appliedIndex()));

  app.get("/v1/status/leader", (c) => {
    plain(c);
    return c.json(cluster.status().leaderAddress ?? "");
  });

  app.get("/v1/status/peers", (c) => {
    plain(c);
    return c.json(cluster.members().filter((m) => m.role === "voter").map((m) => m.address));
  });

  app.get("/v1/agent/self", (c) => {
    plain(c);
    const self = cluster.members().find((m) => m.name === d.node);
    const s = cluster.status();
    return c.json({
      Config: {
        Datacenter: d.datacenter,
        PrimaryDatacenter: d.datacenter,
        NodeName: d.node,
        NodeID: nodeId(d.node),
        Revision: "",
        Server: true,
        Version: d.version,
        AdvertiseAddr: d.advertise,
      },
      DebugConfig: redact(d.config),
      Coord: null,
      Member: self ? agentMember(self, d.datacenter) : agentMember({
        id: 0,
        name: d.node,
        address: d.advertise,
        role: "learner",
        state: s.role,
        lastContactMs: s.lastContactMs,
        status: "alive",
        contactFrom: "local",
      }, d.datacenter),
      Meta: store.node(d.node)?.meta ?? {},
      Stats: {
        raft: {
          state: s.role,
          term: String(s.term),
          commit_index: String(s.commitIndex),
          applied_index: String(s.appliedIndex),
          leader: s.leader ?? "",
        },
      },
    });
  });

  app.get("/v1/agent/members", (c) => {
    plain(c);
    return c.json(
      keepAllowed(c, cluster.members(), (a, m) => a.allows("node", m.name, "read"))
        .map((m) => agentMember(m, d.datacenter)),
    );
  });

  app.get("/v1/agent/services", async (c) => {
    const { filter } = listParams(c, SAMPLES.agentService, d.node);
    await prepareRead(c, d, {
      index: () => store.tableIndex("instances"),
      // Answered when this node's instances change, not other nodes' (Consul: a hash of them).
      watch: { node: d.node },
    });
    const mine = keepAllowed(
      c,
      store.instancesOfNode(d.node),
      (a, i) => a.allows("service", i.service, "read"),
    ).map((i) => agentService(i, d.datacenter))
      .filter((s) => filter === null || filter.test(s));
    return c.json(Object.fromEntries(mine.map((s) => [s.ID, s])));
  });

  app.put("/v1/agent/service/register", async (c) => {
    const what = "agent service register";
    const body = await readJsonObject(c.req.raw, what);
    const spec = serviceFromConsul(body, {
      what,
      node: d.node,
      defaultAddress: d.advertise,
      serviceKey: "Name",
      checks: true,
    });
    requireRight(c, "service", spec.service, "write");
    const old = store.instance(spec.id);
    if (old !== undefined && old.node !== d.node) {
      throw badRequest(
        `${what}: ID "${spec.id}" is registered by node ${old.node}; pick another ID`,
      );
    }
    // Reusing an ID rewrites that instance (and its checks): their rights too.
    requireInstanceTakeover(c, store, spec);
    // Re-registering with the same check keeps the check result already observed: the store
    // does that (a register keeps it while the check is unchanged).
    let instance;
    try {
      instance = validateInstance(spec, "service");
    } catch (e) {
      if (e instanceof CommandError) throw badRequest(`${what}: ${e.message}`);
      throw e;
    }
    await proposeChecked(d, { type: "register", instance });
    return c.body(null, 200);
  });

  app.put("/v1/agent/service/deregister/:id", async (c) => {
    const id = c.req.param("id");
    const old = store.instance(id);
    if (old === undefined) throw new HttpError(404, `Unknown service ID "${id}"`);
    requireRight(c, "service", old.service, "write");
    if (old.node !== d.node) {
      throw badRequest(
        `service "${id}" belongs to node ${old.node}; deregister it there or with ` +
          "PUT /v1/catalog/deregister",
      );
    }
    await proposeChecked(d, { type: "deregister", id });
    return c.body(null, 200);
  });

  app.put("/v1/agent/join/:addr", async (c) => {
    const addr = c.req.param("addr");
    if (d.admin.join === undefined) throw notSupported("join");
    // The address is checked before anything else: a bad one says so, member or not.
    let target: string;
    try {
      target = formatHostPort(parseHostPort(addr, CLUSTER_PORT));
    } catch (e) {
      throw badRequest(
        `cannot join ${addr}: ${errorText(e)} (expected IP[:PORT], like 10.0.0.5:${CLUSTER_PORT})`,
      );
    }
    await d.admin.join(target);
    return c.body(null, 200);
  });

  app.put("/v1/agent/leave", async (c) => {
    if (d.admin.leave === undefined) throw notSupported("leave");
    await d.admin.leave();
    return c.body(null, 200);
  });
}
