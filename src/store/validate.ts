/**
 * Shape checks for commands arriving from outside the process (API bodies, Raft entries decoded
 * from the network). A bad command is rejected with one message naming the field; it never
 * reaches the tables.
 *
 * @module
 */
import {
  CHECK_STATUSES,
  type CheckDefinition,
  type CheckStatus,
  type Command,
  type InstanceSpec,
} from "./types.ts";

/** Longest key, service name, node name or instance id accepted. */
export const NAME_BYTES_MAX = 512;
/** Largest KV value accepted (Consul's default limit). */
export const VALUE_BYTES_MAX = 512 * 1024;
/** Largest snapshot a restore command carries (under the cluster's proposal limit). */
export const RESTORE_BYTES_MAX = 3 * 1024 * 1024;
/** Most commands in one batch. */
export const BATCH_COMMANDS_MAX = 4096;
/** Most tags or meta pairs on one instance. */
export const TAGS_MAX = 64;

export class CommandError extends Error {
  override name = "CommandError";
}

function fail(path: string, want: string, got: unknown): never {
  const shown = typeof got === "string" ? JSON.stringify(got.slice(0, 40)) : typeof got;
  throw new CommandError(`${path}: expected ${want}, got ${shown}`);
}

function obj(x: unknown, path: string): Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) fail(path, "an object", x);
  return x as Record<string, unknown>;
}

function str(x: unknown, path: string, opts: { empty?: boolean } = {}): string {
  if (typeof x !== "string") fail(path, "a string", x);
  if (!opts.empty && x.length === 0) fail(path, "a non-empty string", x);
  if (x.length > NAME_BYTES_MAX) fail(path, `at most ${NAME_BYTES_MAX} characters`, x);
  return x;
}

function int(x: unknown, path: string, min: number, max: number): number {
  if (typeof x !== "number" || !Number.isInteger(x) || x < min || x > max) {
    fail(path, `an integer in [${min}, ${max}]`, typeof x === "number" ? String(x) : x);
  }
  return x;
}

function strList(x: unknown, path: string): string[] {
  if (!Array.isArray(x)) fail(path, "a list of strings", x);
  if (x.length > TAGS_MAX) fail(path, `at most ${TAGS_MAX} items`, "list");
  return x.map((v, i) => str(v, `${path}[${i}]`));
}

function strMap(x: unknown, path: string): Record<string, string> {
  const o = obj(x, path);
  const keys = Object.keys(o);
  if (keys.length > TAGS_MAX) fail(path, `at most ${TAGS_MAX} entries`, "map");
  const out: Record<string, string> = {};
  for (const k of keys) out[str(k, `${path} key`)] = str(o[k], `${path}.${k}`, { empty: true });
  return out;
}

function status(x: unknown, path: string): CheckStatus {
  if (!CHECK_STATUSES.includes(x as CheckStatus)) fail(path, CHECK_STATUSES.join("|"), x);
  return x as CheckStatus;
}

function bytes(x: unknown, path: string): Uint8Array {
  if (!(x instanceof Uint8Array)) fail(path, "bytes", x);
  if (x.byteLength > VALUE_BYTES_MAX) fail(path, `at most ${VALUE_BYTES_MAX} bytes`, "bytes");
  return x;
}

function optInt(x: unknown, path: string, min: number, max: number): number | undefined {
  return x === undefined || x === null ? undefined : int(x, path, min, max);
}

function check(x: unknown, path: string): CheckDefinition | null {
  if (x === null || x === undefined) return null;
  const o = obj(x, path);
  const out: CheckDefinition = {
    intervalMs: int(o.intervalMs, `${path}.intervalMs`, 100, 86_400_000),
    timeoutMs: int(o.timeoutMs, `${path}.timeoutMs`, 10, 3_600_000),
  };
  if (o.http !== undefined && o.http !== null) out.http = str(o.http, `${path}.http`);
  if (o.tcp !== undefined && o.tcp !== null) {
    if (typeof o.tcp !== "boolean") fail(`${path}.tcp`, "a boolean", o.tcp);
    out.tcp = o.tcp;
  }
  return out;
}

/** Checks an instance spec field by field; returns a clean copy. */
export function validateInstance(x: unknown, path = "instance"): InstanceSpec {
  const o = obj(x, path);
  const hosts = o.httpHosts === undefined ? [] : strList(o.httpHosts, `${path}.httpHosts`);
  return {
    id: str(o.id, `${path}.id`),
    service: str(o.service, `${path}.service`),
    node: str(o.node, `${path}.node`),
    address: str(o.address, `${path}.address`),
    port: int(o.port, `${path}.port`, 0, 65535),
    tags: o.tags === undefined ? [] : strList(o.tags, `${path}.tags`),
    meta: o.meta === undefined ? {} : strMap(o.meta, `${path}.meta`),
    weight: o.weight === undefined ? 1 : int(o.weight, `${path}.weight`, 0, 65535),
    status: o.status === undefined ? "passing" : status(o.status, `${path}.status`),
    output: o.output === undefined ? "" : str(o.output, `${path}.output`, { empty: true }),
    containerId: o.containerId === undefined || o.containerId === null
      ? null
      : str(o.containerId, `${path}.containerId`),
    httpHosts: hosts.map((h) => h.toLowerCase()),
    httpPath: o.httpPath === undefined || o.httpPath === null
      ? null
      : str(o.httpPath, `${path}.httpPath`),
    tcpPort: optInt(o.tcpPort, `${path}.tcpPort`, 1, 65535) ?? null,
    check: check(o.check, `${path}.check`),
  };
}

/** Checks any command; throws CommandError naming the first bad field. */
export function validateCommand(x: unknown, path = "command"): Command {
  const o = obj(x, path);
  switch (o.type) {
    case "noop":
      return { type: "noop" };
    case "node.register":
      return {
        type: "node.register",
        name: str(o.name, `${path}.name`),
        address: str(o.address, `${path}.address`),
        meta: o.meta === undefined ? {} : strMap(o.meta, `${path}.meta`),
      };
    case "node.status":
      if (o.status !== "alive" && o.status !== "down") {
        fail(`${path}.status`, "alive|down", o.status);
      }
      return { type: "node.status", name: str(o.name, `${path}.name`), status: o.status };
    case "register":
      return { type: "register", instance: validateInstance(o.instance, `${path}.instance`) };
    case "deregister":
      return { type: "deregister", id: str(o.id, `${path}.id`) };
    case "check":
      return {
        type: "check",
        id: str(o.id, `${path}.id`),
        status: status(o.status, `${path}.status`),
        output: o.output === undefined ? "" : str(o.output, `${path}.output`, { empty: true }),
      };
    case "kv.put": {
      const cas = optInt(o.cas, `${path}.cas`, 0, Number.MAX_SAFE_INTEGER);
      return {
        type: "kv.put",
        key: str(o.key, `${path}.key`),
        value: bytes(o.value, `${path}.value`),
        flags: o.flags === undefined ? 0 : int(o.flags, `${path}.flags`, 0, 2 ** 53 - 1),
        ...(cas === undefined ? {} : { cas }),
      };
    }
    case "kv.delete": {
      const cas = optInt(o.cas, `${path}.cas`, 0, Number.MAX_SAFE_INTEGER);
      return {
        type: "kv.delete",
        key: str(o.key, `${path}.key`, { empty: true }),
        ...(o.recurse === true ? { recurse: true } : {}),
        ...(cas === undefined ? {} : { cas }),
      };
    }
    case "restore": {
      if (!(o.snapshot instanceof Uint8Array)) fail(`${path}.snapshot`, "bytes", o.snapshot);
      if (o.snapshot.byteLength > RESTORE_BYTES_MAX) {
        fail(`${path}.snapshot`, `at most ${RESTORE_BYTES_MAX} bytes`, "bytes");
      }
      return { type: "restore", snapshot: o.snapshot };
    }
    case "conf": {
      const ids = (x: unknown, p: string) => {
        if (!Array.isArray(x)) fail(p, "a list of member ids", x);
        return x.map((v, i) => int(v, `${p}[${i}]`, 1, Number.MAX_SAFE_INTEGER));
      };
      const out: Command = {
        type: "conf",
        voters: ids(o.voters, `${path}.voters`),
        learners: ids(o.learners, `${path}.learners`),
      };
      if (o.upsert !== undefined && o.upsert !== null) {
        const m = obj(o.upsert, `${path}.upsert`);
        out.upsert = {
          id: int(m.id, `${path}.upsert.id`, 1, Number.MAX_SAFE_INTEGER),
          name: str(m.name, `${path}.upsert.name`),
          address: str(m.address, `${path}.upsert.address`),
          ...(m.nonce === undefined ? {} : { nonce: str(m.nonce, `${path}.upsert.nonce`) }),
        };
      }
      if (o.remove !== undefined && o.remove !== null) {
        out.remove = int(o.remove, `${path}.remove`, 1, Number.MAX_SAFE_INTEGER);
      }
      return out;
    }
    case "batch": {
      if (!Array.isArray(o.commands)) fail(`${path}.commands`, "a list", o.commands);
      if (o.commands.length > BATCH_COMMANDS_MAX) {
        fail(`${path}.commands`, `at most ${BATCH_COMMANDS_MAX} commands`, "list");
      }
      const commands = o.commands.map((c, i) => validateCommand(c, `${path}.commands[${i}]`));
      if (commands.some((c) => c.type === "batch")) {
        fail(`${path}.commands`, "no nested batch", "batch");
      }
      return { type: "batch", commands };
    }
    default:
      return fail(`${path}.type`, "a known command type", o.type);
  }
}

/** Instance ids are `node:container:port`; this helper builds the Registrator form. */
export function instanceId(node: string, container: string, port: number, udp = false): string {
  return `${node}:${container}:${port}${udp ? ":udp" : ""}`;
}
