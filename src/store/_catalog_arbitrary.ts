/**
 * Test support (not part of the store): a fast-check arbitrary of catalog command sequences,
 * for the property tests that compare a view kept up to date from the change feed with one
 * rebuilt from the store (DNS zone, proxy routes, health, blocking queries, the feed itself).
 *
 * The commands draw from small pools (3 nodes, 4 services, 12 instance ids, a few check ids) so
 * a sequence keeps hitting the same rows: re-registrations that change a field or nothing,
 * instances moving between nodes and services, node status flips and node-level checks,
 * Docker verdicts and check results, deregistrations, batches. Almost every command is valid;
 * the few that are not (a check id taken on the node, a result for an unknown instance, a batch
 * holding one of those) must change nothing.
 *
 * @module
 */
import fc from "fast-check";
import type { Store } from "./store.ts";
import type {
  ApplyResult,
  CheckDefinition,
  CheckStatus,
  Command,
  DockerState,
  InstanceSpec,
  RegisteredCheck,
} from "./types.ts";
import { CHECK_STATUSES, DOCKER_STATES } from "./types.ts";

export const ARB_NODES = ["n1", "n2", "n3"] as const;
export const ARB_SERVICES = ["web", "api", "db", "grpc-svc"] as const;
/** Instance ids: `<service>-<k>` (a registration mostly keeps the id's service). */
export const ARB_INSTANCE_IDS: readonly string[] = ARB_SERVICES.flatMap((s) =>
  [0, 1, 2].map((k) => `${s}-${k}`)
);
/** Node-wide check ids `check.*` commands register (on the node or on an instance). */
export const ARB_CHECK_IDS = ["disk", "mem", "t-a", "t-b"] as const;

const nodeName = fc.constantFrom(...ARB_NODES);
const instanceId = fc.constantFrom(...ARB_INSTANCE_IDS);
const status = fc.constantFrom<CheckStatus>(...CHECK_STATUSES);
const dockerState = fc.constantFrom<DockerState>(...DOCKER_STATES);
const output = fc.constantFrom("", "ok", "HTTP GET /health: 500", "timeout");
const address = fc.constantFrom("10.0.0.1", "10.0.0.2", "10.0.0.3", "127.0.0.1");

function subset<T>(items: readonly T[]): fc.Arbitrary<T[]> {
  return fc.subarray([...items]);
}

const meta: fc.Arbitrary<Record<string, string>> = fc.record({
  version: fc.constantFrom("1", "2"),
  "berth.lb": fc.constantFrom("round_robin", "least_conn", "p2c"),
  "berth.http.proto": fc.constantFrom("http1", "h2c", "grpc"),
  "berth.tls": fc.constant("acme"),
}, { requiredKeys: [] });

const checkDefinition: fc.Arbitrary<CheckDefinition | null> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant({ http: "/health", intervalMs: 1000, timeoutMs: 500 }) },
  { weight: 1, arbitrary: fc.constant({ tcp: true, intervalMs: 2000, timeoutMs: 1000 }) },
  {
    weight: 1,
    arbitrary: fc.constant({
      udp: "\\x00PING",
      udpExpect: "PONG",
      intervalMs: 1000,
      timeoutMs: 500,
    }),
  },
);

/** A registered check `id`: TTL (critical until it reports) or a result reported with it. */
function registeredCheck(id: fc.Arbitrary<string>): fc.Arbitrary<RegisteredCheck> {
  return fc.record({
    id,
    kind: fc.constantFrom("ttl" as const, "reported" as const),
    ttlMs: fc.constantFrom(10_000, 30_000),
    status,
    output,
  }).map(({ id, kind, ttlMs, status, output }) => ({
    id,
    name: `check ${id}`,
    notes: "",
    kind,
    target: "",
    ttlMs: kind === "ttl" ? ttlMs : 0,
    intervalMs: 0,
    timeoutMs: 0,
    deregisterCriticalAfterMs: 0,
    status,
    output,
  }));
}

/** Checks a registration carries: its own (`<id>:ready`, `<id>:live`), now and then a shared one. */
const CARRIED = ["ready", "live", "ready", "live", "ready", "shared"] as const;

/** Check ids `check.*` commands name: the node-wide pool and instances' own. */
const checkId: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...ARB_CHECK_IDS),
  fc.record({ i: instanceId, k: fc.constantFrom("ready", "live") }).map(({ i, k }) => `${i}:${k}`),
);

/** A valid instance spec; `id`'s service most of the time, another now and then. */
export const instanceSpec: fc.Arbitrary<InstanceSpec> = fc.record({
  id: instanceId,
  otherService: fc.option(fc.constantFrom(...ARB_SERVICES), { freq: 8 }),
  node: nodeName,
  address,
  port: fc.constantFrom(0, 80, 8080, 32768),
  tags: subset(["v1", "v2", "primary", "canary"]),
  meta,
  weight: fc.constantFrom(0, 1, 1, 5, 100),
  docker: fc.oneof(
    fc.constant(null),
    fc.record({ state: dockerState, detail: fc.constantFrom("", "exit 1") }),
  ),
  httpHosts: fc.oneof(
    fc.constant<string[]>([]),
    subset(["a.example.com", "b.example.com", "*.wild.example.com"]),
  ),
  httpPath: fc.constantFrom(null, null, "/", "/api", "/api/v2"),
  tcpPort: fc.constantFrom(null, null, null, 9000, 9001),
  check: checkDefinition,
  checkResult: fc.option(fc.record({ status, output }), { freq: 2 }),
  checks: fc.oneof(
    { weight: 3, arbitrary: fc.constant<RegisteredCheck[]>([]) },
    {
      weight: 1,
      arbitrary: fc.uniqueArray(registeredCheck(fc.constantFrom(...CARRIED)), {
        maxLength: 2,
        selector: (c) => c.id,
      }),
    },
  ),
}).map((r) => {
  const docker = r.docker;
  const spec: InstanceSpec = {
    id: r.id,
    service: r.otherService ?? r.id.slice(0, r.id.lastIndexOf("-")),
    node: r.node,
    address: r.address,
    port: r.port,
    tags: r.tags,
    meta: r.meta,
    weight: r.weight,
    containerId: docker === null ? null : `c-${r.id}`,
    httpHosts: r.httpHosts,
    httpPath: r.httpPath,
    tcpPort: r.tcpPort,
    check: r.check,
    docker,
    // A Docker instance without a check has no check result (validate.ts).
    checkResult: docker !== null && r.check === null ? null : r.checkResult,
  };
  if (r.checks.length > 0) {
    spec.checks = r.checks.map((c) => c.id === "shared" ? c : { ...c, id: `${r.id}:${c.id}` });
  }
  return spec;
});

/** One catalog command (no batch). */
export const catalogCommand: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ name: nodeName, address, meta: subset(["a", "b"]) }).map((
      { name, address, meta },
    ): Command => ({
      type: "node.register",
      name,
      address,
      meta: Object.fromEntries(meta.map((z) => [`zone-${z}`, z])),
    })),
  },
  {
    weight: 5,
    arbitrary: fc.record({ name: nodeName, status: fc.constantFrom("alive", "down") }).map((
      { name, status },
    ): Command => ({ type: "node.status", name, status: status as "alive" | "down" })),
  },
  {
    weight: 30,
    arbitrary: instanceSpec.map((instance): Command => ({ type: "register", instance })),
  },
  { weight: 7, arbitrary: instanceId.map((id): Command => ({ type: "deregister", id })) },
  {
    weight: 8,
    arbitrary: fc.record({ id: instanceId, status, output }).map((r): Command => ({
      type: "check",
      ...r,
    })),
  },
  {
    weight: 8,
    arbitrary: fc.record({ id: instanceId, state: dockerState, detail: output }).map((
      r,
    ): Command => ({ type: "docker", ...r })),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      node: nodeName,
      serviceId: fc.option(instanceId, { freq: 2 }),
      check: registeredCheck(checkId),
    }).map((r): Command => ({ type: "check.register", ...r })),
  },
  {
    weight: 5,
    arbitrary: fc.record({ node: nodeName, id: checkId, status, output })
      .map((r): Command => ({ type: "check.update", ...r })),
  },
  {
    weight: 2,
    arbitrary: fc.record({ node: nodeName, id: checkId }).map((
      r,
    ): Command => ({ type: "check.deregister", ...r })),
  },
);

/** A catalog command or a batch of 1-5 of them. */
export const catalogCommandOrBatch: fc.Arbitrary<Command> = fc.oneof(
  { weight: 12, arbitrary: catalogCommand },
  {
    weight: 1,
    arbitrary: fc.array(catalogCommand, { minLength: 1, maxLength: 5 }).map((
      commands,
    ): Command => ({
      type: "batch",
      commands,
    })),
  },
);

/**
 * Sequences of catalog commands (and batches of them), `maxLength` 60 unless given. A `check`,
 * `docker` or instance-bound `check.register` aimed at an instance the sequence has not
 * registered (or of the wrong kind) is aimed at one it has, when there is one, so most commands
 * apply.
 */
export function catalogCommands(
  opts: { minLength?: number; maxLength?: number } = {},
): fc.Arbitrary<Command[]> {
  return fc.array(catalogCommandOrBatch, {
    minLength: opts.minLength ?? 1,
    maxLength: opts.maxLength ?? 60,
  }).map(aimed);
}

/** `cmds` with their targets moved onto instances registered before them (see above). */
function aimed(cmds: Command[]): Command[] {
  const known = new Map<string, InstanceSpec>();
  let n = 0;
  const aim = (c: Command): Command => {
    n++;
    const pick = (ok: (i: InstanceSpec) => boolean, current: string | null) => {
      const cur = current === null ? undefined : known.get(current);
      if (cur !== undefined && ok(cur)) return cur;
      const all = [...known.values()].filter(ok);
      return all.length === 0 ? undefined : all[n % all.length];
    };
    switch (c.type) {
      case "batch":
        return { ...c, commands: c.commands.map(aim) };
      case "register":
        known.set(c.instance.id, c.instance);
        return c;
      case "deregister":
        known.delete(c.id);
        return c;
      case "check":
        return {
          ...c,
          id: pick((i) => i.check !== null || i.containerId === null, c.id)?.id ?? c.id,
        };
      case "docker":
        return { ...c, id: pick((i) => i.containerId !== null, c.id)?.id ?? c.id };
      case "check.register": {
        if (c.serviceId === null) return c;
        const i = pick(() => true, c.serviceId);
        return i === undefined ? c : { ...c, serviceId: i.id, node: i.node };
      }
      default:
        return c;
    }
  };
  return cmds.map(aim);
}

/** Applies `commands` one entry each, at the store's next indexes; their results. */
export function applyAll(store: Store, commands: readonly Command[]): ApplyResult[] {
  return commands.map((c) => store.apply(store.appliedIndex() + 1, c));
}
