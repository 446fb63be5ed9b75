/**
 * The catalog's commands: nodes (`node.register`, `node.status`) and instances (`register`,
 * `deregister`, and the two health sources `check` and `docker`, each of which writes only its
 * own field, see health.ts). A write that changes nothing (same fields, meta in any order) bumps
 * no index and announces nothing. A node's status change announces every service on the node,
 * since their health derives from it (and their catalog entries show its address and meta). Registered checks (`check.*`) are apply_checks.ts'.
 *
 * @module
 */
import type { ApplyStep } from "./apply_step.ts";
import { checkDefinitionKey, hasCheckSource } from "./health.ts";
import {
  instance,
  instanceRow,
  node,
  type NodeData,
  nodeData,
  nodeRow,
  servicesOfNode,
} from "./queries.ts";
import { checkReader, noteCheckHolders } from "./check_holders.ts";
import { checkIdClash, keptCheckResults } from "./checks.ts";
import type { ApplyResult, Command, Instance, InstanceSpec, NodeInfo } from "./types.ts";

type CatalogCommand = Extract<
  Command,
  { type: "node.register" | "node.status" | "register" | "deregister" | "check" | "docker" }
>;

export function applyCatalog(step: ApplyStep, cmd: CatalogCommand): ApplyResult {
  const { sql, index, change } = step;
  switch (cmd.type) {
    case "node.register": {
      const old = node(sql, cmd.name);
      const data = nodeData({
        address: cmd.address,
        status: old?.status ?? "alive",
        meta: cmd.meta,
        checks: old?.checks,
      });
      return putNode(step, { name: cmd.name, data, old });
    }
    case "node.status": {
      const old = node(sql, cmd.name);
      if (old === undefined) return { ok: false, error: `no node ${cmd.name}` };
      const data = nodeData({ ...old, status: cmd.status });
      return putNode(step, { name: cmd.name, data, old });
    }
    case "register": {
      const old = instance(sql, cmd.instance.id);
      const spec = registeredCheckResult(cmd.instance, old);
      const text = canonicalInstance(spec);
      if (old !== undefined && canonicalInstance(old) === text) return { ok: true };
      if (spec.checks !== undefined && spec.checks.length > 0) {
        const clash = checkIdClash(spec, node(sql, spec.node), checkReader(sql));
        if (clash !== null) return { ok: false, error: clash };
      }
      sql.stmt(
        `INSERT INTO instances VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET
         service=excluded.service, node=excluded.node, data=excluded.data,
         modify_index=excluded.modify_index`,
      ).run(spec.id, spec.service, spec.node, text, old?.createIndex ?? index, index);
      noteCheckHolders(sql, old ?? null, spec);
      change.instance(spec.id, old ?? null, instanceRow(text, old?.createIndex ?? index, index));
      change.tables.add("instances");
      change.services.add(spec.service);
      if (old !== undefined) change.services.add(old.service);
      return { ok: true };
    }
    case "deregister": {
      const old = instance(sql, cmd.id);
      if (old === undefined) return { ok: true };
      sql.stmt("DELETE FROM instances WHERE id=?").run(cmd.id);
      noteCheckHolders(sql, old, null);
      change.instance(cmd.id, old, null);
      change.tables.add("instances");
      change.services.add(old.service);
      return { ok: true };
    }
    case "check": {
      const old = instance(sql, cmd.id);
      if (old === undefined) return { ok: false, error: `no instance ${cmd.id}` };
      if (!hasCheckSource(old)) {
        return { ok: false, error: `instance ${cmd.id} is a Docker instance without a check` };
      }
      const checkResult = { status: cmd.status, output: cmd.output };
      return putHealth(step, old, { ...old, checkResult });
    }
    case "docker": {
      const old = instance(sql, cmd.id);
      if (old === undefined) return { ok: false, error: `no instance ${cmd.id}` };
      if (old.containerId === null) {
        return { ok: false, error: `instance ${cmd.id} has no container` };
      }
      const docker = { state: cmd.state, detail: cmd.detail };
      return putHealth(step, old, { ...old, docker });
    }
  }
}

/** Instance fields stored as JSON, in a fixed order so equal specs give equal text. */
export function canonicalInstance(s: InstanceSpec): string {
  const sortedMeta = Object.fromEntries(Object.entries(s.meta).sort(([a], [b]) => a < b ? -1 : 1));
  return JSON.stringify({
    id: s.id,
    service: s.service,
    node: s.node,
    address: s.address,
    port: s.port,
    tags: s.tags,
    meta: sortedMeta,
    weight: s.weight,
    containerId: s.containerId,
    httpHosts: s.httpHosts,
    httpPath: s.httpPath,
    tcpPort: s.tcpPort,
    check: s.check,
    docker: s.docker === null ? null : { state: s.docker.state, detail: s.docker.detail },
    checkResult: s.checkResult === null
      ? null
      : { status: s.checkResult.status, output: s.checkResult.output },
    // Only when there are some: instances without registered checks keep their old text.
    ...(s.checks === undefined || s.checks.length === 0 ? {} : { checks: s.checks }),
  });
}

/**
 * The check result a `register` stores: the one already stored while the check it came from
 * still runs unchanged (same container, same definition), so a re-registration never resets what
 * the health checker found; otherwise the registrant's (none for a Docker instance).
 */
function registeredCheckResult(given: InstanceSpec, old: Instance | undefined): InstanceSpec {
  const checks = keptCheckResults(given.checks, old);
  const spec = checks === undefined ? given : { ...given, checks };
  if (
    old === undefined || spec.check === null || old.containerId !== spec.containerId ||
    checkDefinitionKey(old.check) !== checkDefinitionKey(spec.check)
  ) {
    return spec;
  }
  return { ...spec, checkResult: old.checkResult };
}

/** Stores an instance whose health source changed; nothing when it did not. */
export function putHealth(step: ApplyStep, old: Instance, spec: InstanceSpec): ApplyResult {
  const text = canonicalInstance(spec);
  if (text === canonicalInstance(old)) return { ok: true };
  step.sql.stmt("UPDATE instances SET data=?, modify_index=? WHERE id=?")
    .run(text, step.index, old.id);
  noteCheckHolders(step.sql, old, spec);
  step.change.instance(old.id, old, instanceRow(text, old.createIndex, step.index));
  step.change.tables.add("instances");
  step.change.services.add(old.service);
  return { ok: true };
}

/**
 * Stores a node's data; nothing when it is what `old` holds. Every service with an instance on
 * the node changes with it: its liveness and node-level checks are part of their health, its
 * address and meta part of their catalog entries (as Consul bumps the node's service indexes).
 */
export function putNode(
  step: ApplyStep,
  { name, data, old }: { name: string; data: NodeData; old: NodeInfo | undefined },
): ApplyResult {
  const text = JSON.stringify(data);
  if (old !== undefined && JSON.stringify(nodeData(old)) === text) return { ok: true };
  const { sql, index, change } = step;
  sql.stmt(
    `INSERT INTO nodes VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET
     data=excluded.data, modify_index=excluded.modify_index`,
  ).run(name, text, old?.createIndex ?? index, index);
  change.node(name, old ?? null, nodeRow(name, text, old?.createIndex ?? index, index));
  change.tables.add("nodes");
  const health = (d: Pick<NodeData, "status" | "checks"> | undefined) =>
    JSON.stringify([d?.status ?? "alive", d?.checks ?? []]);
  if (health(old) !== health(data)) change.tables.add("instances");
  for (const s of servicesOfNode(sql, name)) change.services.add(s);
  return { ok: true };
}
