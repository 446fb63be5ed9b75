/**
 * `/metrics` in Prometheus text format (README "Metrics"): applied index, instances by status,
 * each instance's health (at most INSTANCE_SERIES_MAX instances by name, the rest summed under
 * `service="<other>"`), services, KV keys, blocked reads and process uptime. The proxy and DNS
 * add theirs through `extraMetrics`.
 *
 * @module
 */
import type { Deps } from "./deps.ts";
import { errorText } from "../lib/error_text.ts";
import { family as metric, sample } from "../lib/prom_text.ts";
import { type CheckStatus, instanceHealth } from "../store/mod.ts";

/** Instances listed by name in `berth_instance_health`; the others are summed per status. */
export const INSTANCE_SERIES_MAX = 2000;
/** The service and instance label of the instances over INSTANCE_SERIES_MAX. */
const OTHER = "<other>"; // no service name or instance id has `<`

/** One line per instance (id order) with its status; over the cap, the rest per status. */
function instanceHealthLines(d: Deps): string[] {
  const rows = d.store.instancesPage("", INSTANCE_SERIES_MAX);
  const nodes = new Map(d.store.nodes().map((n) => [n.name, n]));
  const listed: Record<CheckStatus, number> = { passing: 0, warning: 0, critical: 0 };
  const lines: string[] = [];
  for (const i of rows) {
    const status = instanceHealth(i, nodes.get(i.node)).status;
    listed[status]++;
    lines.push(
      sample("berth_instance_health", [["service", i.service], ["instance", i.id], [
        "status",
        status,
      ]], 1),
    );
  }
  if (rows.length < INSTANCE_SERIES_MAX) return lines;
  for (const [status, n] of Object.entries(d.catalog.instancesByStatus())) {
    const rest = n - listed[status as CheckStatus];
    if (rest > 0) {
      lines.push(
        sample("berth_instance_health", [["service", OTHER], ["instance", OTHER], [
          "status",
          status,
        ]], rest),
      );
    }
  }
  return lines;
}

export async function renderMetrics(d: Deps, nowMs: number): Promise<string> {
  const { store, cluster } = d;
  const s = cluster.status();
  const byStatus = Object.entries(d.catalog.instancesByStatus());
  const parts = [
    metric("berth_applied_index", "gauge", "Highest Raft log index applied to the store.", [
      `berth_applied_index ${store.appliedIndex()}`,
    ]),
    metric("berth_commit_index", "gauge", "Highest Raft log index known committed.", [
      `berth_commit_index ${s.commitIndex}`,
    ]),
    metric("berth_raft_term", "gauge", "Current Raft term.", [`berth_raft_term ${s.term}`]),
    metric("berth_known_leader", "gauge", "1 when this node knows a leader.", [
      `berth_known_leader ${s.leader === null ? 0 : 1}`,
    ]),
    metric(
      "berth_instances",
      "gauge",
      "Registered instances by health status.",
      byStatus.map(([k, n]) => `berth_instances{status="${k}"} ${n}`),
    ),
    metric(
      "berth_instance_health",
      "gauge",
      `Each instance's health status (1); over ${INSTANCE_SERIES_MAX} instances, the rest ` +
        `counted per status under service="${OTHER}".`,
      instanceHealthLines(d),
    ),
    metric("berth_services", "gauge", "Services with at least one instance.", [
      `berth_services ${d.catalog.serviceCount()}`,
    ]),
    metric("berth_kv_keys", "gauge", "Keys in the KV store.", [
      `berth_kv_keys ${store.kvKeys("").length}`,
    ]),
    metric("berth_members", "gauge", "Cluster members.", [
      `berth_members ${cluster.members().length}`,
    ]),
    metric("berth_api_blocked_reads", "gauge", "Blocking queries waiting for a change.", [
      `berth_api_blocked_reads ${d.blocker.size}`,
    ]),
    metric("berth_uptime_seconds", "gauge", "Seconds since the process started.", [
      `berth_uptime_seconds ${((nowMs - d.startedAtMs) / 1000).toFixed(3)}`,
    ]),
    metric("process_start_time_seconds", "gauge", "Start time of the process, Unix seconds.", [
      `process_start_time_seconds ${(d.startedAtMs / 1000).toFixed(3)}`,
    ]),
  ];
  let extra = "";
  if (d.extraMetrics !== undefined) {
    try {
      extra = await d.extraMetrics();
      if (extra !== "" && !extra.endsWith("\n")) extra += "\n";
    } catch (e) {
      extra = `# extraMetrics failed: ${errorText(e)}\n`;
    }
  }
  return parts.join("") + extra;
}
