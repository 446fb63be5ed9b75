/**
 * The reconcile step: diff the desired instances of this node against what the store holds for
 * it, and produce the commands that close the gap. Pure except for reading the store.
 *
 * Ownership: only this node's Docker rows (node = this node, containerId ≠ null) are changed or
 * removed. A desired id already held by an API registration or by another node is skipped.
 *
 * Status rule for instances with an active check (`instance.check` set; src/health runs it):
 * Docker's verdict wins when it is not healthy (paused, restarting, HEALTHCHECK starting or
 * unhealthy, being stopped). Otherwise the watcher keeps the status and output already in the
 * store (the health checker's last result) as long as the row belongs to the same container and
 * has the same check; a new row, a new container or a changed check starts at critical
 * AWAITING_CHECK_OUTPUT, as does a row whose output is one the watcher itself wrote.
 *
 * @module
 */
import type { CheckDefinition, Command, Instance, InstanceSpec } from "../store/mod.ts";
import { BATCH_COMMANDS_MAX, CommandError, validateCommand } from "../store/mod.ts";
import {
  AWAITING_CHECK_OUTPUT,
  DOCKER_HEALTH_PREFIX,
  PAUSED_OUTPUT,
  RESTARTING_OUTPUT,
  STOPPING_OUTPUT,
} from "./desired.ts";
import type { Problem } from "./labels.ts";

/** The store reads reconcile needs (a Store satisfies it). */
export interface InstanceReader {
  instance(id: string): Instance | undefined;
  instancesOfNode(node: string): Instance[];
}

export interface Plan {
  commands: Command[];
  problems: Problem[];
}

function watcherOutput(output: string): boolean {
  return output.startsWith(DOCKER_HEALTH_PREFIX) ||
    [PAUSED_OUTPUT, RESTARTING_OUTPUT, STOPPING_OUTPUT, AWAITING_CHECK_OUTPUT].includes(output);
}

/** Key-order independent text of a check (the store may reorder fields). */
function checkText(c: CheckDefinition | null): string {
  return c === null
    ? "null"
    : JSON.stringify([c.http ?? null, c.tcp ?? false, c.intervalMs, c.timeoutMs]);
}

function sameCheck(a: Instance, b: InstanceSpec): boolean {
  return checkText(a.check) === checkText(b.check);
}

/** The spec to register: `d`, with the health checker's status kept per the module rule. */
function withKeptStatus(d: InstanceSpec, current: Instance | undefined): InstanceSpec {
  const dockerFine = d.status === "critical" && d.output === AWAITING_CHECK_OUTPUT;
  if (
    d.check === null || !dockerFine || current === undefined ||
    current.containerId !== d.containerId || !sameCheck(current, d) ||
    watcherOutput(current.output)
  ) {
    return d;
  }
  return { ...d, status: current.status, output: current.output };
}

function comparable(i: InstanceSpec): string {
  return JSON.stringify([
    i.service,
    i.node,
    i.address,
    i.port,
    i.tags,
    Object.entries(i.meta).sort(([a], [b]) => a < b ? -1 : 1),
    i.weight,
    i.containerId,
    i.httpHosts,
    i.httpPath,
    i.tcpPort,
    checkText(i.check),
  ]);
}

/** Commands turning this node's Docker rows in `store` into `desired`; empty when in sync. */
export function planReconcile(
  desired: readonly InstanceSpec[],
  store: InstanceReader,
  options: { node: string },
): Plan {
  const commands: Command[] = [];
  const problems: Problem[] = [];
  const own = store.instancesOfNode(options.node).filter((i) => i.containerId !== null);
  const wanted = new Set<string>();
  for (const d of desired) {
    wanted.add(d.id);
    const current = store.instance(d.id);
    if (current !== undefined && (current.node !== options.node || current.containerId === null)) {
      problems.push({
        container: d.meta.container ?? d.id,
        containerId: d.containerId ?? "",
        label: "instance",
        message: `instance id ${d.id} is taken by ${
          current.containerId === null ? "an API registration" : `node ${current.node}`
        }; not registered`,
      });
      continue;
    }
    const spec = withKeptStatus(d, current);
    let command: Command;
    if (current === undefined || comparable(current) !== comparable(spec)) {
      command = { type: "register", instance: spec };
    } else if (current.status !== spec.status || current.output !== spec.output) {
      command = { type: "check", id: spec.id, status: spec.status, output: spec.output };
    } else continue;
    try {
      commands.push(validateCommand(command));
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      problems.push({
        container: d.meta.container ?? d.id,
        containerId: d.containerId ?? "",
        label: "instance",
        message: `cannot register ${d.id}: ${e.message}`,
      });
    }
  }
  for (const o of own) {
    if (!wanted.has(o.id)) commands.push({ type: "deregister", id: o.id });
  }
  return { commands, problems };
}

/** Splits commands into `batch` commands of at most BATCH_COMMANDS_MAX each. */
export function toBatches(commands: readonly Command[], sizeMax = BATCH_COMMANDS_MAX): Command[] {
  const out: Command[] = [];
  for (let i = 0; i < commands.length; i += sizeMax) {
    out.push({ type: "batch", commands: commands.slice(i, i + sizeMax) });
  }
  return out;
}
