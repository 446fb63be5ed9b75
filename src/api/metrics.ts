/**
 * `/metrics` in Prometheus text format: applied index, instances by status, services, KV keys,
 * blocked reads and process uptime. Other parts add their lines through `extraMetrics`.
 *
 * @module
 */
import type { Deps } from "./deps.ts";
import { errorText } from "../lib/error_text.ts";

function metric(name: string, type: "gauge" | "counter", help: string, lines: string[]): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${lines.join("\n")}\n`;
}

export function renderMetrics(d: Deps, nowMs: number): string {
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
      extra = d.extraMetrics();
      if (extra !== "" && !extra.endsWith("\n")) extra += "\n";
    } catch (e) {
      extra = `# extraMetrics failed: ${errorText(e)}\n`;
    }
  }
  return parts.join("") + extra;
}
