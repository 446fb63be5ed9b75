/**
 * Reading state written by older berth versions.
 *
 * Schema 1 kept one `status` and `output` per instance, written by both the Docker watcher and
 * the health checker; schema 2 keeps each health source apart (`docker`, `checkResult`, see
 * health.ts). `legacyInstance` maps a schema-1 instance to schema 2 by the outputs schema-1
 * writers used: the watcher's (`container paused`, `docker health: …`, …) become the Docker
 * verdict, "awaiting first check" becomes "no result yet", anything else is the check's result.
 * It runs on schema-1 store files when opened, on schema-1 snapshots when restored, and on
 * `register` commands of the old shape still in a Raft log.
 *
 * @module
 */
import type { CheckResult, CheckStatus, DockerVerdict } from "./types.ts";

/** The outputs schema-1 writers used; frozen here, they are that format's, not today's. */
const V1_AWAITING = "awaiting first check";
const V1_DOCKER_STATES: Record<string, DockerVerdict["state"]> = {
  "container being stopped": "stopping",
  "container paused": "paused",
  "container restarting": "restarting",
  "docker health: starting": "starting",
};
const V1_UNHEALTHY = /^docker health: unhealthy(?: \((.*)\))?$/s;

/** Whether `o` is an instance in schema 1's shape (status/output, no health sources). */
export function isLegacyInstance(o: Record<string, unknown>): boolean {
  return ("status" in o || "output" in o) && !("docker" in o) && !("checkResult" in o);
}

/**
 * A schema-1 instance object with `status`/`output` replaced by `docker`/`checkResult`. Values
 * are not checked here (validateInstance does that next).
 */
export function legacyInstance(o: Record<string, unknown>): Record<string, unknown> {
  const { status: rawStatus, output: rawOutput, ...rest } = o;
  const status = (rawStatus ?? "passing") as CheckStatus;
  const output = typeof rawOutput === "string" ? rawOutput : "";
  const hasCheck = o.check !== undefined && o.check !== null;
  const fromContainer = o.containerId !== undefined && o.containerId !== null;
  let docker: DockerVerdict | null = null;
  let checkResult: CheckResult | null = { status, output };
  if (fromContainer) {
    docker = { state: "running", detail: "" };
    const state = V1_DOCKER_STATES[output];
    const unhealthy = V1_UNHEALTHY.exec(output);
    if (state !== undefined) docker = { state, detail: "" };
    else if (unhealthy !== null) docker = { state: "unhealthy", detail: unhealthy[1] ?? "" };
    else if (!hasCheck && status !== "passing") docker = { state: "unhealthy", detail: output };
    // The watcher's verdict held the checker's result back; only a checker's output is one.
    if (state !== undefined || unhealthy !== null || !hasCheck) checkResult = null;
  }
  if (output === V1_AWAITING) checkResult = null;
  if (!hasCheck && !fromContainer && status === "passing" && output === "") checkResult = null;
  return { ...rest, docker, checkResult };
}

/** Rewrites the `data` JSON of schema-1 instance rows (store file or snapshot) in place. */
export function migrateInstanceRows(rows: unknown): void {
  if (!Array.isArray(rows)) return;
  for (const row of rows) {
    if (typeof row !== "object" || row === null || typeof row.data !== "string") continue;
    let data: unknown;
    try {
      data = JSON.parse(row.data);
    } catch {
      continue; // the snapshot check reports it
    }
    if (typeof data !== "object" || data === null || Array.isArray(data)) continue;
    const o = data as Record<string, unknown>;
    if (isLegacyInstance(o)) row.data = JSON.stringify(legacyInstance(o));
  }
}
