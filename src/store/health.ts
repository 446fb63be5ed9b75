/**
 * An instance's health, derived in one place from its three sources (Caddy's
 * `Upstream.Healthy()`: each source keeps its own state, one function decides):
 *
 * | source | field | written by | passes when |
 * |---|---|---|---|
 * | node liveness | the node's `status` | the leader (`node.status`) | the node is not `down` |
 * | Docker verdict | `instance.docker` | the Docker watcher (`docker`) | `running` or `healthy` |
 * | check | `instance.checkResult` | the checker / API registrant (`check`) | the result passes |
 * | | and `instance.checks` | their owner (`check.update`) | every one passes |
 *
 * The node source also takes the node's node-level registered checks (`NodeInfo.checks`), as
 * Consul fails every service of a node whose node check fails; the check source the instance's
 * registered checks (checks.ts lists them one by one). A source an instance does not have (no container, no check) is left out. The instance's status
 * is the worst of its sources (critical > warning > passing), as Consul aggregates a service's
 * checks; its output is the first non-empty output among the sources with that status, in the
 * order node, Docker, check. It is served (DNS, proxy, `?passing`) exactly when it passes.
 *
 * Every view that shows or uses health calls `instanceHealth`: the DNS zone, the proxy's route
 * table, the API's health entries, `?passing`, `/v1/berth/instances` (which the CLI and the
 * dashboard show) and the metrics.
 *
 * @module
 */
import type {
  CheckDefinition,
  CheckStatus,
  Instance,
  NodeInfo,
  NodeStatus,
  RegisteredCheck,
} from "./types.ts";

/** Output shown while an instance's active check has not reported yet. */
export const AWAITING_CHECK_OUTPUT = "awaiting first check";
/** Start of the outputs derived from a container's HEALTHCHECK state. */
const DOCKER_HEALTH_PREFIX = "docker health: ";

/** One source's (or the whole instance's) status and the reason shown for it. */
export interface Verdict {
  status: CheckStatus;
  output: string;
}

/** The derived health of one instance, with each source's part. */
export interface Health extends Verdict {
  /** Whether DNS and the proxy send traffic to the instance: `status === "passing"`. */
  served: boolean;
  node: Verdict;
  /** `null` for an instance without a container. */
  docker: Verdict | null;
  /** `null` for an instance without a check source. */
  check: Verdict | null;
}

/** The fields of an instance that health depends on (besides its node's status). */
export type HealthSources = Pick<
  Instance,
  "node" | "docker" | "check" | "checkResult" | "containerId" | "checks"
>;

/** The node's part: its liveness, or a node with its node-level checks. */
export type NodeHealthSource = NodeStatus | Pick<NodeInfo, "status" | "checks"> | undefined;

const RANK: Record<CheckStatus, number> = { passing: 0, warning: 1, critical: 2 };

/** The worst of some verdicts; its output the first non-empty one with that status. */
function worst(verdicts: readonly Verdict[]): Verdict {
  let status: CheckStatus = "passing";
  for (const v of verdicts) if (RANK[v.status] > RANK[status]) status = v.status;
  const output = verdicts.find((v) => v.status === status && v.output !== "")?.output ?? "";
  return { status, output };
}

function registeredVerdicts(checks: readonly RegisteredCheck[] | undefined): Verdict[] {
  return (checks ?? []).map((c) => ({
    status: c.status,
    output: c.output === "" && c.status !== "passing" ? `check ${c.id} is ${c.status}` : c.output,
  }));
}

function nodeVerdict(name: string, node: NodeHealthSource): Verdict {
  const status = typeof node === "object" ? node.status : node;
  // A node the store does not know (an external registration's) counts as alive.
  if (status === "down") return { status: "critical", output: `node ${name} is down` };
  return worst(typeof node === "object" ? registeredVerdicts(node.checks) : []);
}

function dockerVerdict(i: HealthSources): Verdict | null {
  const d = i.docker;
  if (d === null) return null;
  switch (d.state) {
    case "running":
    case "healthy":
      return { status: "passing", output: "" };
    case "starting":
      return { status: "critical", output: `${DOCKER_HEALTH_PREFIX}starting` };
    case "unhealthy":
      return {
        status: "critical",
        output: `${DOCKER_HEALTH_PREFIX}unhealthy${d.detail === "" ? "" : ` (${d.detail})`}`,
      };
    case "paused":
      return { status: "critical", output: "container paused" };
    case "restarting":
      return { status: "critical", output: "container restarting" };
    case "stopping":
      return { status: "critical", output: "container being stopped" };
  }
}

/**
 * Key-order independent text of a check definition: equal texts run the same check (JSON from
 * the store or the network may order fields differently).
 */
export function checkDefinitionKey(c: CheckDefinition | null): string {
  if (c === null) return "null";
  const key: unknown[] = [c.http ?? null, c.tcp ?? false, c.intervalMs, c.timeoutMs];
  if (c.grpc === true) key.push("grpc"); // appended only when set: older keys stay as they were
  if (c.udp !== undefined) key.push("udp", c.udp, c.udpExpect ?? null);
  if (c.failClosed !== undefined) key.push("failClosed", c.failClosed);
  return JSON.stringify(key);
}

/** Whether an instance has a check source: an active check, or an API registration's reports. */
export function hasCheckSource(i: Pick<Instance, "check" | "containerId">): boolean {
  return i.check !== null || i.containerId === null;
}

/** The verdict of an instance's own check (`check` / `checkResult`); null: it has none. */
export function ownCheckVerdict(i: Pick<Instance, "check" | "checkResult">): Verdict | null {
  if (i.checkResult !== null) return { status: i.checkResult.status, output: i.checkResult.output };
  return i.check === null ? null : { status: "critical", output: AWAITING_CHECK_OUTPUT };
}

/** The check source: the worst of the instance's own check and its registered checks. */
function checkVerdict(i: HealthSources): Verdict | null {
  const own = ownCheckVerdict(i);
  const parts = [...(own === null ? [] : [own]), ...registeredVerdicts(i.checks)];
  return parts.length === 0 ? null : worst(parts);
}

/**
 * Derives an instance's health from its sources and its node (module doc): give the node
 * (`NodeInfo`) so its node-level checks count, or only its liveness status.
 */
export function instanceHealth(i: HealthSources, node: NodeHealthSource): Health {
  const nodeV = nodeVerdict(i.node, node);
  const docker = dockerVerdict(i);
  const check = checkVerdict(i);
  const v = worst([nodeV, docker, check].filter((v): v is Verdict => v !== null));
  return { ...v, served: v.status === "passing", node: nodeV, docker, check };
}
