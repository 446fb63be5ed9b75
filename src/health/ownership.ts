/**
 * Who may change a Docker instance's status. A Docker-sourced row has two writers: the Docker
 * watcher, whose verdict wins while the container is not fine (paused, restarting, HEALTHCHECK
 * starting or unhealthy, being stopped), and this checker. The checker therefore changes such a
 * row only while its output is one the checker owns: empty, AWAITING_CHECK_OUTPUT (the watcher's
 * "Docker finds it fine, go ahead"), or an output the checker wrote (`HTTP GET …`,
 * `TCP connect …`). Any other output is a hold: the check keeps running, nothing is proposed, and
 * when the watcher lifts the hold (back to AWAITING_CHECK_OUTPUT) the next result applies at once.
 *
 * Rows registered through the API (containerId null) have no other writer: the checker owns them.
 *
 * @module
 */
import type { Instance } from "../store/mod.ts";

import { AWAITING_CHECK_OUTPUT } from "../store/mod.ts";
export { AWAITING_CHECK_OUTPUT };

/** Starts of the outputs the checker writes (see probe.ts describeTarget). */
const CHECKER_PREFIXES = ["HTTP GET ", "TCP connect "] as const;

/** Whether the checker may change this instance's status now. */
export function checkerOwns(i: Pick<Instance, "containerId" | "output">): boolean {
  if (i.containerId === null) return true;
  if (i.output === "" || i.output === AWAITING_CHECK_OUTPUT) return true;
  return CHECKER_PREFIXES.some((p) => i.output.startsWith(p));
}
