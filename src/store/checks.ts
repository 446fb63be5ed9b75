/**
 * Checks as Consul shows them, in one place: every check of a node with its status (the node's
 * liveness as `serfHealth`, its node-level checks, and per instance the instance's own health
 * sources and its registered checks), looked up by CheckID; and what the `check.*` commands
 * change (pure planning; the store writes the rows).
 *
 * | CheckID | what it is | status from |
 * |---|---|---|
 * | `serfHealth` | node liveness | the node's `status` (the leader's `node.status`) |
 * | any id on the node | a node-level registered check | its last result |
 * | `service:<instance id>` | the instance's own check (Docker labels, older API registrations) | `checkResult` |
 * | `service:<instance id>:docker` | a Docker instance's container state | the Docker verdict |
 * | any id on an instance | a registered check bound to the service | its last result |
 *
 * Sessions (`Checks`, `NodeChecks`, `ServiceChecks`) and the API's Checks arrays read checks
 * through `checksOfNode` / `checkOnNode`, so both see the same statuses as health.ts derives.
 *
 * @module
 */
import { instanceHealth, ownCheckVerdict } from "./health.ts";
import type {
  CheckStatus,
  Command,
  Instance,
  NodeInfo,
  NodeStatus,
  RegisteredCheck,
} from "./types.ts";

/** The CheckID of node liveness (Consul's Serf check). */
export const SERF_CHECK_ID = "serfHealth";

/** What check lookups read: the store satisfies it. */
export interface CheckReader {
  node(name: string): NodeInfo | undefined;
  instancesOfNode(name: string): Instance[];
  instance(id: string): Instance | undefined;
  /** The instance on `node` whose registered checks include `id` (check_holders.ts). */
  checkHolder(node: string, id: string): Instance | undefined;
}

/** One check of a node, whatever its source. */
export interface CheckView {
  node: string;
  id: string;
  name: string;
  status: CheckStatus;
  output: string;
  notes: string;
  /** The instance it is bound to; "" for node-level checks. */
  serviceId: string;
  serviceName: string;
  serviceTags: string[];
  /** Consul's Type: `ttl`, `http`, `tcp`, `docker` or "" (liveness, reported results). */
  type: string;
  /** The registered check behind it; null for the derived ones (liveness, an instance's own). */
  registered: RegisteredCheck | null;
  createIndex: number;
  modifyIndex: number;
}

/** What the view of a node needs: known nodes give all of it, others a stand-in. */
export type NodeCheckSource = Pick<NodeInfo, "name" | "status" | "createIndex" | "modifyIndex"> & {
  checks?: RegisteredCheck[];
};

function typeOf(c: RegisteredCheck): string {
  return c.kind === "reported" ? "" : c.kind;
}

function registeredView(
  c: RegisteredCheck,
  node: string,
  on: { service?: Instance; index: Pick<Instance, "createIndex" | "modifyIndex"> },
): CheckView {
  return {
    node,
    id: c.id,
    name: c.name,
    status: c.status,
    output: c.output,
    notes: c.notes,
    serviceId: on.service?.id ?? "",
    serviceName: on.service?.service ?? "",
    serviceTags: on.service?.tags ?? [],
    type: typeOf(c),
    registered: c,
    createIndex: on.index.createIndex,
    modifyIndex: on.index.modifyIndex,
  };
}

/** The node's liveness as Consul's `serfHealth` check. */
export function serfCheck(n: NodeCheckSource): CheckView {
  const alive = n.status !== "down";
  return {
    node: n.name,
    id: SERF_CHECK_ID,
    name: "Serf Health Status",
    status: alive ? "passing" : "critical",
    output: alive ? "Agent alive and reachable" : "Agent not live or unreachable",
    notes: "",
    serviceId: "",
    serviceName: "",
    serviceTags: [],
    type: "",
    registered: null,
    createIndex: n.createIndex,
    modifyIndex: n.modifyIndex,
  };
}

/** The node-level checks of a node (liveness first). */
export function nodeLevelChecks(n: NodeCheckSource): CheckView[] {
  return [
    serfCheck(n),
    ...(n.checks ?? []).map((c) => registeredView(c, n.name, { index: n })),
  ];
}

/**
 * An instance's checks: its own check source as `service:<id>` (passing without output when it
 * has no source and no registered check, as before registered checks existed), its container
 * state as `service:<id>:docker`, then its registered checks.
 */
export function instanceChecks(i: Instance, nodeStatus: NodeStatus | undefined): CheckView[] {
  const h = instanceHealth(i, nodeStatus);
  const out: CheckView[] = [];
  const own = (
    id: string,
    name: string,
    v: { status: CheckStatus; output: string },
    type: string,
  ) =>
    out.push({
      node: i.node,
      id,
      name,
      status: v.status,
      output: v.output,
      notes: "",
      serviceId: i.id,
      serviceName: i.service,
      serviceTags: i.tags,
      type,
      registered: null,
      createIndex: i.createIndex,
      modifyIndex: i.modifyIndex,
    });
  const registered = i.checks ?? [];
  // The instance's own check source, shown as before registered checks existed: passing
  // without output when the instance has no check at all.
  if (i.check !== null || i.checkResult !== null || registered.length === 0) {
    const type = i.check?.http !== undefined
      ? "http"
      : i.check?.grpc
      ? "grpc"
      : i.check?.tcp
      ? "tcp"
      : i.check?.udp !== undefined
      ? "udp"
      : "";
    const v = ownCheckVerdict(i) ?? { status: "passing" as const, output: "" };
    own(`service:${i.id}`, `Service '${i.service}' check`, v, type);
  }
  if (h.docker !== null) {
    own(`service:${i.id}:docker`, `Service '${i.service}' container`, h.docker, "docker");
  }
  for (const c of registered) out.push(registeredView(c, i.node, { service: i, index: i }));
  return out;
}

/** Every check of `node` (liveness, node-level, then per instance in id order). */
export function checksOfNode(r: CheckReader, node: string): CheckView[] {
  const instances = r.instancesOfNode(node);
  const known = r.node(node);
  const n: NodeCheckSource = known ??
    { name: node, status: "alive", createIndex: 0, modifyIndex: 0 };
  return [
    ...nodeLevelChecks(n),
    ...instances.flatMap((i) => instanceChecks(i, known?.status)),
  ];
}

/**
 * Check `id` of `node`, or undefined when the node has no such check (sessions: a session bound
 * to a check that does not exist is refused; one whose check turns critical is invalidated).
 * The check `checksOfNode` lists first with that id, found without listing them: only the
 * instances its id can belong to are read.
 */
export function checkOnNode(r: CheckReader, node: string, id: string): CheckView | undefined {
  const known = r.node(node);
  if (id === SERF_CHECK_ID) return known === undefined ? undefined : serfCheck(known);
  const nodeCheck = known?.checks?.find((c) => c.id === id);
  if (nodeCheck !== undefined) return registeredView(nodeCheck, node, { index: known! });
  for (const i of candidateInstances(r, node, id)) {
    const c = instanceChecks(i, known?.status).find((c) => c.id === id);
    if (c !== undefined) return c;
  }
  return undefined;
}

/**
 * The instances of `node` that can have a check `id`, in id order (the order `checksOfNode`
 * lists them in): `service:<id>` (its own), `service:<id>:docker` (its container) and the one
 * holding a registered check of that id.
 */
function candidateInstances(r: CheckReader, node: string, id: string): Instance[] {
  const ids = new Set<string>();
  if (id.startsWith(OWN_PREFIX)) {
    ids.add(id.slice(OWN_PREFIX.length));
    if (id.endsWith(DOCKER_SUFFIX)) ids.add(id.slice(OWN_PREFIX.length, -DOCKER_SUFFIX.length));
  }
  const out: Instance[] = [];
  for (const x of ids) {
    const i = r.instance(x);
    if (i !== undefined && i.node === node) out.push(i);
  }
  const holder = r.checkHolder(node, id);
  if (holder !== undefined && !ids.has(holder.id)) out.push(holder);
  return out.sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

const OWN_PREFIX = "service:";
const DOCKER_SUFFIX = ":docker";

/** The status of check `id` on `node`; undefined when there is none. */
export function checkStatus(r: CheckReader, node: string, id: string): CheckStatus | undefined {
  return checkOnNode(r, node, id)?.status;
}

// ---- the check.* commands ----

/** What a check.* command changes: the node's new check list and/or instances' new ones. */
export interface CheckPlan {
  /** The node's new node-level checks (unchanged: undefined). */
  nodeChecks?: RegisteredCheck[];
  /** Instances whose registered checks change, with their new lists. */
  instances: { instance: Instance; checks: RegisteredCheck[] }[];
}

type CheckCommand = Extract<Command, { type: `check.${string}` }>;

/** Whether two checks run the same way (results aside). */
export function sameCheckDefinition(a: RegisteredCheck, b: RegisteredCheck): boolean {
  return a.kind === b.kind && a.target === b.target && a.ttlMs === b.ttlMs &&
    a.intervalMs === b.intervalMs && a.timeoutMs === b.timeoutMs;
}

/**
 * Plans a check.* command against the node and its instances; a string is the reason it is
 * refused (state unchanged). Pure: the same inputs give the same plan on every replica.
 */
export function planCheckCommand(
  cmd: CheckCommand,
  node: NodeInfo | undefined,
  r: CheckReader,
): CheckPlan | string {
  const without = (list: RegisteredCheck[] | undefined, id: string) =>
    (list ?? []).filter((c) => c.id !== id);
  const id = cmd.type === "check.register" ? cmd.check.id : cmd.id;
  const holder = r.checkHolder(cmd.node, id);
  const onNode = (node?.checks ?? []).some((c) => c.id === id);
  switch (cmd.type) {
    case "check.register": {
      const c = cmd.check;
      if (derivedCheckOwners(r, cmd.node, c.id).length > 0) {
        return `check id "${c.id}" is reserved (liveness and instances' own checks use it)`;
      }
      const plan: CheckPlan = { instances: [] };
      const old = holder?.checks?.find((x) => x.id === c.id) ??
        node?.checks?.find((x) => x.id === c.id);
      // Re-registering a check that runs the same way keeps its last result (a restarted
      // registrant must not flap its service); a reported check takes the result given.
      const kept = old !== undefined && c.kind !== "reported" && sameCheckDefinition(old, c)
        ? { ...c, status: old.status, output: old.output }
        : c;
      if (cmd.serviceId === null) {
        if (node === undefined) return `no node ${cmd.node}`;
        const list = node.checks ?? [];
        const at = list.findIndex((x) => x.id === c.id);
        plan.nodeChecks = at < 0 ? [...list, kept] : list.map((x, n) => n === at ? kept : x);
        if (holder !== undefined) {
          plan.instances.push({ instance: holder, checks: without(holder.checks, c.id) });
        }
      } else {
        const found = r.instance(cmd.serviceId);
        const target = found?.node === cmd.node ? found : undefined;
        if (target === undefined) return `no service instance ${cmd.serviceId} on node ${cmd.node}`;
        const list = target.checks ?? [];
        const at = list.findIndex((x) => x.id === c.id);
        plan.instances.push({
          instance: target,
          checks: at < 0 ? [...list, kept] : list.map((x, n) => n === at ? kept : x),
        });
        if (holder !== undefined && holder.id !== target.id) {
          plan.instances.push({ instance: holder, checks: without(holder.checks, c.id) });
        }
        if (onNode) plan.nodeChecks = without(node?.checks, c.id);
      }
      return plan;
    }
    case "check.update": {
      const set = (list: RegisteredCheck[] | undefined) =>
        (list ?? []).map((c) =>
          c.id === cmd.id ? { ...c, status: cmd.status, output: cmd.output } : c
        );
      if (onNode) return { nodeChecks: set(node?.checks), instances: [] };
      if (holder !== undefined) {
        return { instances: [{ instance: holder, checks: set(holder.checks) }] };
      }
      return `no check ${cmd.id} on node ${cmd.node}`;
    }
    case "check.deregister": {
      const plan: CheckPlan = { instances: [] };
      if (onNode) plan.nodeChecks = without(node?.checks, cmd.id);
      if (holder !== undefined) {
        plan.instances.push({ instance: holder, checks: without(holder.checks, cmd.id) });
      }
      return plan;
    }
  }
}

/**
 * The registered checks a `register` stores: a check that runs as the stored one of that id did
 * keeps its last result, so re-registering a service (an agent restart, a deploy script) never
 * resets what its checks found; a reported check takes the result given.
 */
export function keptCheckResults(
  checks: RegisteredCheck[] | undefined,
  old: Pick<Instance, "checks"> | undefined,
): RegisteredCheck[] | undefined {
  if (checks === undefined || old?.checks === undefined) return checks;
  return checks.map((c) => {
    const o = old.checks!.find((x) => x.id === c.id);
    return o !== undefined && c.kind !== "reported" && sameCheckDefinition(o, c)
      ? { ...c, status: o.status, output: o.output }
      : c;
  });
}

/**
 * The instances of `node` whose derived check (their own check, their container) has CheckID
 * `id`, with "" for liveness; none when `id` is none of berth's derived ids on the node.
 */
function derivedCheckOwners(r: CheckReader, node: string, id: string): string[] {
  if (id === SERF_CHECK_ID) return [""];
  if (!id.startsWith(OWN_PREFIX)) return [];
  const out: string[] = [];
  const own = r.instance(id.slice(OWN_PREFIX.length));
  if (own?.node === node && (own.check !== null || own.checkResult !== null)) out.push(own.id);
  if (id.endsWith(DOCKER_SUFFIX)) {
    const c = r.instance(id.slice(OWN_PREFIX.length, -DOCKER_SUFFIX.length));
    if (c?.node === node && c.docker !== null) out.push(c.id);
  }
  return out;
}

/**
 * Why a registration's checks cannot go on its node (a CheckID is unique on a node, and
 * liveness's and instances' own ids are taken), or null when they can.
 */
export function checkIdClash(
  spec: Pick<Instance, "id" | "node" | "checks">,
  node: Pick<NodeInfo, "checks"> | undefined,
  r: CheckReader,
): string | null {
  for (const c of spec.checks ?? []) {
    const by = takenBy(spec, node, r, c.id);
    if (by !== null) return `check id "${c.id}" is taken on node ${spec.node} (by ${by})`;
  }
  return null;
}

/** Who other than `spec` has CheckID `id` on its node: another instance, the node, berth. */
function takenBy(
  spec: Pick<Instance, "id" | "node">,
  node: Pick<NodeInfo, "checks"> | undefined,
  r: CheckReader,
  id: string,
): string | null {
  const holder = r.checkHolder(spec.node, id);
  if (holder !== undefined && holder.id !== spec.id) return `service ${holder.id}`;
  if ((node?.checks ?? []).some((c) => c.id === id)) return `node ${spec.node}`;
  if (derivedCheckOwners(r, spec.node, id).some((o) => o !== spec.id)) return "berth's own checks";
  return null;
}
