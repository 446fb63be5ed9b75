/**
 * The reconcile step: diff the desired instances of this node against what the store holds for
 * it, and produce the commands that close the gap. Pure except for reading the store.
 *
 * Ownership: only this node's Docker rows (node = this node, containerId ≠ null) are changed or
 * removed. A desired id already held by an API registration or by another node is skipped.
 *
 * Health: the watcher owns one source, the Docker verdict. A row whose registration differs gets
 * a `register` (the store keeps the health checker's result while the container and the check
 * stay the same); a row that differs only in its Docker verdict gets a `docker` command. The
 * check result is never compared nor written here.
 *
 * @module
 */
import type { Command, Instance, InstanceSpec, Store } from "../store/mod.ts";
import {
  BATCH_COMMANDS_MAX,
  checkDefinitionKey,
  CommandError,
  validateCommand,
} from "../store/mod.ts";
import type { Problem } from "./labels.ts";

/**
 * Most commands in one proposal of the watcher: each batch is one log entry applied in one
 * transaction on every member (measured here at 100,000 instances: ~20 ms for 64 or 100
 * registrations, ~80 ms for 500), so a host with many containers proposes several bounded
 * batches, one after the other, rather than one long apply.
 */
export const RECONCILE_BATCH_MAX = 64;

/** The store reads reconcile needs (own_rows.ts keeps them; `storeReader` reads the store). */
export interface InstanceReader {
  instance(id: string): Instance | undefined;
  /** This node's Docker rows (`containerId` set). */
  dockerRows(): Iterable<Instance>;
}

/** An InstanceReader over the store itself (reads every instance of the node per call). */
export function storeReader(
  store: Pick<Store, "instance" | "instancesOfNode">,
  node: string,
): InstanceReader {
  return {
    instance: (id) => store.instance(id),
    dockerRows: () => store.instancesOfNode(node).filter((i) => i.containerId !== null),
  };
}

export interface Plan {
  commands: Command[];
  problems: Problem[];
}

function dockerText(i: InstanceSpec): string {
  return JSON.stringify([i.docker?.state ?? null, i.docker?.detail ?? null]);
}

/** The registration's fields, health sources left out. */
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
    checkDefinitionKey(i.check),
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
    let command: Command;
    if (current === undefined || comparable(current) !== comparable(d)) {
      command = { type: "register", instance: d };
    } else if (d.docker !== null && dockerText(current) !== dockerText(d)) {
      command = { type: "docker", id: d.id, state: d.docker.state, detail: d.docker.detail };
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
  for (const o of store.dockerRows()) {
    if (!wanted.has(o.id)) commands.push({ type: "deregister", id: o.id });
  }
  return { commands, problems };
}

/** Splits commands into `batch` commands of at most `sizeMax` (RECONCILE_BATCH_MAX) each. */
export function toBatches(commands: readonly Command[], sizeMax = RECONCILE_BATCH_MAX): Command[] {
  if (sizeMax > BATCH_COMMANDS_MAX) throw new RangeError(`toBatches: ${sizeMax} > batch limit`);
  const out: Command[] = [];
  for (let i = 0; i < commands.length; i += sizeMax) {
    out.push({ type: "batch", commands: commands.slice(i, i + sizeMax) });
  }
  return out;
}
