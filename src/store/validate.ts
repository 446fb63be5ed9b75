/**
 * The one place where the rules for commands live: each command's shape, with the instance
 * field rules (service names, ports, weights, tags, meta, HTTP hosts and paths, TCP ports,
 * check timing, balancing policy) from instance_rules.ts, and the other families' commands from
 * their own modules (sessions, ACL, PKI, edge certificates, ACME). apply() runs validateCommand
 * on every replica, so nothing outside these rules reaches the tables, whoever proposed it.
 *
 * @module
 */
import { CHECK_TIMED_TYPES, type Command } from "./types.ts";
import { SNAPSHOT_CHUNK_BYTES } from "./snapshot_limits.ts";
import { SERVICE_NAME_CHARS_MAX } from "../lib/service_name.ts";
import {
  bytes,
  CommandError,
  fail,
  int,
  NAME_BYTES_MAX,
  obj,
  optInt,
  str,
  VALUE_BYTES_MAX,
} from "./rule_basics.ts";
import { isSessionCommand, validateSessionCommand } from "./session_commands.ts";
import { isAclCommand, validateAclCommand } from "./acl_commands.ts";
import { isPkiCommand, validatePkiCommand } from "./pki_commands.ts";
import { isEdgeCertCommand, validateEdgeCertCommand } from "./edge_cert_rules.ts";
import { isAcmeCommand, validateAcmeCommand } from "./acme_commands.ts";
import { rules, strMap, validateInstance } from "./instance_rules.ts";

export { CommandError, NAME_BYTES_MAX, SERVICE_NAME_CHARS_MAX, VALUE_BYTES_MAX };
export {
  CHECK_INTERVAL_MAX_MS,
  CHECK_INTERVAL_MIN_MS,
  CHECK_OUTPUT_CHARS_MAX,
  CHECK_TIMEOUT_MAX_MS,
  CHECK_TIMEOUT_MIN_MS,
  CHECK_TTL_MAX_MS,
  CHECKS_PER_TARGET_MAX,
  HOST_CHARS_MAX,
  ID_PART_CHARS_MAX,
  rules,
  TAGS_MAX,
  validateInstance,
} from "./instance_rules.ts";

/** Most commands in one batch. */
export const BATCH_COMMANDS_MAX = 4096;

/** A restore's id: chosen by the member that streams it in. */
function restoreId(x: unknown, path: string): string {
  const id = str(x, path);
  if (id.length > 64) fail(path, "at most 64 characters", id);
  return id;
}

/** Checks any command; throws CommandError naming the first bad field. */
export function validateCommand(x: unknown, path = "command"): Command {
  const o = obj(x, path);
  const c = validateCommandFields(o, path);
  if (!CHECK_TIMED.has(c.type)) return c;
  const nowMs = optInt(o.nowMs, `${path}.nowMs`, 0, Number.MAX_SAFE_INTEGER);
  return nowMs === undefined ? c : { ...c, nowMs } as Command;
}

/** The commands that can fail or remove a check, with an optional `nowMs` (types.ts). */
const CHECK_TIMED: ReadonlySet<string> = new Set(CHECK_TIMED_TYPES);

function validateCommandFields(o: Record<string, unknown>, path: string): Command {
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
        status: rules.status(o.status, `${path}.status`),
        output: o.output === undefined ? "" : str(o.output, `${path}.output`, { empty: true }),
      };
    case "check.register":
      return {
        type: "check.register",
        node: str(o.node, `${path}.node`),
        serviceId: o.serviceId === undefined || o.serviceId === null
          ? null
          : str(o.serviceId, `${path}.serviceId`),
        check: rules.registeredCheck(o.check, `${path}.check`),
      };
    case "check.update":
      return {
        type: "check.update",
        node: str(o.node, `${path}.node`),
        id: str(o.id, `${path}.id`),
        status: rules.status(o.status, `${path}.status`),
        output: o.output === undefined ? "" : rules.checkOutput(o.output, `${path}.output`),
      };
    case "check.deregister":
      return {
        type: "check.deregister",
        node: str(o.node, `${path}.node`),
        id: str(o.id, `${path}.id`),
      };
    case "docker":
      return {
        type: "docker",
        id: str(o.id, `${path}.id`),
        state: rules.dockerState(o.state, `${path}.state`),
        detail: o.detail === undefined ? "" : str(o.detail, `${path}.detail`, { empty: true }),
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
    case "restore.begin":
    case "restore.abort":
      return { type: o.type, id: restoreId(o.id, `${path}.id`) };
    case "restore.chunk": {
      const data = o.data;
      if (!(data instanceof Uint8Array)) fail(`${path}.data`, "bytes", data);
      if (data.byteLength > SNAPSHOT_CHUNK_BYTES) {
        fail(`${path}.data`, `at most ${SNAPSHOT_CHUNK_BYTES} bytes`, "bytes");
      }
      return {
        type: "restore.chunk",
        id: restoreId(o.id, `${path}.id`),
        seq: int(o.seq, `${path}.seq`, 0, Number.MAX_SAFE_INTEGER),
        data,
      };
    }
    case "restore.commit": {
      return {
        type: "restore.commit",
        id: restoreId(o.id, `${path}.id`),
        chunks: int(o.chunks, `${path}.chunks`, 0, Number.MAX_SAFE_INTEGER),
        bytes: int(o.bytes, `${path}.bytes`, 0, Number.MAX_SAFE_INTEGER),
        ...(o.acl === undefined ? {} : {
          acl: o.acl === true ? true : fail(`${path}.acl`, "true or absent", o.acl),
        }),
        ...(o.certs === undefined ? {} : {
          certs: o.certs === true ? true : fail(`${path}.certs`, "true or absent", o.certs),
        }),
      };
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
      if (commands.some((c) => c.type === "batch" || c.type === "txn")) {
        fail(`${path}.commands`, "no nested batch or txn", "batch");
      }
      return { type: "batch", commands };
    }
    default:
      if (isSessionCommand(o.type)) return validateSessionCommand(o, path);
      if (isAclCommand(o.type)) return validateAclCommand(o, path);
      if (isPkiCommand(o.type)) return validatePkiCommand(o, path);
      if (isEdgeCertCommand(o.type)) return validateEdgeCertCommand(o, path);
      if (isAcmeCommand(o.type)) return validateAcmeCommand(o, path);
      return fail(`${path}.type`, "a known command type", o.type);
  }
}

/** Instance ids are `node:container:port`; this helper builds the Registrator form. */
export function instanceId(node: string, container: string, port: number, udp = false): string {
  return `${node}:${container}:${port}${udp ? ":udp" : ""}`;
}
