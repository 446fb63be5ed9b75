/**
 * Consul check definitions (a service's `Check` / `Checks`, `PUT /v1/agent/check/register`, a
 * catalog registration's checks) → the store's RegisteredCheck, through one field table. Field
 * names match case-insensitively, as Go's JSON decoding does for Consul. What a value may be is
 * the store's rules (src/store/instance_rules.ts); they are called here to answer 400 naming the field.
 * Check kinds berth does not run (script, Docker exec, H2 ping, OS service, alias) are
 * refused with one line, never dropped.
 *
 * | field | meaning |
 * |---|---|
 * | `ID` / `CheckID` | CheckID (default: the Name; a service's check `service:<ServiceID>`) |
 * | `Name`, `Notes` | shown as given |
 * | `TTL` | a TTL check: the registrant reports with `/v1/agent/check/pass|warn|fail|update` |
 * | `HTTP` | GET this URL as given (its own host and port); `/path` means the service's address and port |
 * | `TCP` | connect to this `host:port` as given |
 * | `UDP` | an empty datagram to this `host:port` as given: an ICMP refusal fails, a reply or silence passes (Consul's) |
 * | `GRPC` | gRPC health protocol over h2c at `host:port` (whole server) or `host:port/service`; `GRPCUseTLS` must be false |
 * | `Interval`, `Timeout` | for HTTP, TCP, UDP and gRPC (default 10s each) |
 * | `Status` | the status until the first result (default critical) |
 * | `Output` | the output until the first result |
 * | `DeregisterCriticalServiceAfter` | deregister the service when the check stays critical this long |
 *
 * @module
 */
import { parseDuration } from "../lib/duration.ts";
import { formatHostPort } from "../lib/host_port.ts";
import { type RegisteredCheck, rules } from "../store/mod.ts";
import { type FieldSpec, lookup, optionalField, readFields, ruled } from "./fields.ts";
import { badRequest } from "./http_error.ts";

/** Consul's default check timeout. */
export const CHECK_TIMEOUT_DEFAULT_MS = 10_000;
/** Interval when a check gives none. */
export const CHECK_INTERVAL_DEFAULT_MS = 10_000;

/** Check kinds berth does not run: refused, never dropped. */
const UNSUPPORTED_CHECKS = [
  "Args",
  "ScriptArgs",
  "DockerContainerID",
  "H2PING",
  "OSService",
  "AliasNode",
  "AliasService",
];

function durationMs(v: string, name: string, what: string): number | undefined {
  if (v === "") return undefined;
  try {
    return parseDuration(v);
  } catch {
    throw badRequest(`${what}: ${name} "${v.slice(0, 40)}" is not a duration like 10s or 500ms`);
  }
}

/** A check being read. */
interface CheckDraft {
  check: RegisteredCheck;
  /** How many of TTL, HTTP, TCP, UDP, GRPC were given. */
  kinds: number;
  /** The service's address and port, for an HTTP `/path`. */
  service: { address: string; port: number } | null;
}

/** The fields of a Consul check definition that berth reads (module doc). */
export const CHECK_FIELDS: readonly FieldSpec<CheckDraft>[] = [
  {
    name: "Name",
    kind: "string",
    doc: "shown as the check's name",
    set: (d, v) => {
      if (v !== "") d.check.name = v as string;
    },
  },
  {
    name: "Notes",
    kind: "string",
    doc: "shown as given",
    set: (d, v, what) => {
      d.check.notes = ruled(what, () => rules.checkOutput(v, "Notes"));
    },
  },
  {
    name: "TTL",
    kind: "string",
    doc: "a TTL check: results come from /v1/agent/check/pass|warn|fail|update",
    set: (d, v, what) => {
      const ms = durationMs(v as string, "TTL", what);
      if (ms === undefined) return;
      d.check.kind = "ttl";
      d.check.ttlMs = ruled(what, () => rules.ttlMs(ms, "TTL"));
      d.kinds++;
    },
  },
  {
    name: "HTTP",
    kind: "string",
    doc: "URL requested with GET as given; /path: the service's own address and port",
    set: (d, v, what) => {
      let url = v as string;
      if (url.startsWith("/")) {
        if (d.service === null || d.service.port === 0) {
          throw badRequest(`${what}: HTTP "${url.slice(0, 80)}" needs a full URL here`);
        }
        url = `http://${formatHostPort({ host: d.service.address, port: d.service.port })}${url}`;
      }
      d.check.kind = "http";
      d.check.target = ruled(what, () => rules.checkUrl(url, "HTTP"));
      d.kinds++;
    },
  },
  {
    name: "TCP",
    kind: "string",
    doc: "host:port connected to as given",
    set: (d, v, what) => {
      d.check.kind = "tcp";
      d.check.target = ruled(what, () => rules.checkHostPort(v, "TCP"));
      d.kinds++;
    },
  },
  {
    name: "UDP",
    kind: "string",
    doc:
      "host:port sent an empty datagram as given: an ICMP refusal fails, a reply or silence passes",
    set: (d, v, what) => {
      d.check.kind = "udp";
      d.check.target = ruled(what, () => rules.checkHostPort(v, "UDP"));
      d.kinds++;
    },
  },
  {
    name: "GRPC",
    kind: "string",
    doc: "host:port or host:port/service asked with the gRPC health protocol over h2c",
    set: (d, v, what) => {
      d.check.kind = "grpc";
      d.check.target = ruled(what, () => rules.checkGrpcTarget(v, "GRPC"));
      d.kinds++;
    },
  },
  {
    name: "GRPCUseTLS",
    kind: "boolean",
    doc: "must be false: gRPC checks speak HTTP/2 cleartext",
    set: (_d, v, what) => {
      if (v === true) {
        throw badRequest(`${what}: GRPCUseTLS checks are not supported; gRPC checks use h2c`);
      }
    },
  },
  {
    name: "Interval",
    kind: "string",
    doc: `time between HTTP/TCP/UDP/gRPC runs (default ${CHECK_INTERVAL_DEFAULT_MS / 1000}s)`,
    set: (d, v, what) => {
      const ms = durationMs(v as string, "Interval", what);
      if (ms !== undefined) {
        d.check.intervalMs = ruled(what, () => rules.checkIntervalMs(ms, "Interval"));
      }
    },
  },
  {
    name: "Timeout",
    kind: "string",
    doc: `timeout of one HTTP/TCP/UDP/gRPC run (default ${CHECK_TIMEOUT_DEFAULT_MS / 1000}s)`,
    set: (d, v, what) => {
      const ms = durationMs(v as string, "Timeout", what);
      if (ms !== undefined) {
        d.check.timeoutMs = ruled(what, () => rules.checkTimeoutMs(ms, "Timeout"));
      }
    },
  },
  {
    name: "Status",
    kind: "string",
    doc: "status until the first result (default critical)",
    set: (d, v, what) => {
      if (v !== "") d.check.status = ruled(what, () => rules.status(v, "Status"));
    },
  },
  {
    name: "Output",
    kind: "string",
    doc: "output until the first result",
    set: (d, v, what) => {
      d.check.output = ruled(what, () => rules.checkOutput(v, "Output"));
    },
  },
  {
    name: "DeregisterCriticalServiceAfter",
    kind: "string",
    doc: "a service whose check stays critical this long is deregistered",
    set: (d, v, what) => {
      const ms = durationMs(v as string, "DeregisterCriticalServiceAfter", what);
      if (ms !== undefined && ms > 0) {
        d.check.deregisterCriticalAfterMs = ruled(
          what,
          () => rules.ttlMs(ms, "DeregisterCriticalServiceAfter"),
        );
      }
    },
  },
] as FieldSpec<CheckDraft>[];

export interface CheckFromConsulOptions {
  /** Prefix of error messages. */
  what: string;
  /** CheckID when the definition gives none (a service's: `service:<id>`); "": the Name. */
  defaultId: string;
  defaultName: string;
  /** The service's address and port (HTTP `/path`); null for node-level checks. */
  service: { address: string; port: number } | null;
  /**
   * `run`: the check must be TTL, HTTP, TCP, UDP or GRPC (agent registrations: berth runs it); `report`:
   * any definition is a reported result (catalog registrations: the registrant runs it).
   */
  mode: "run" | "report";
}

/** One Consul check definition → a RegisteredCheck (checked by the store's rules). */
export function checkFromConsul(
  o: Record<string, unknown>,
  opts: CheckFromConsulOptions,
): RegisteredCheck {
  const { what } = opts;
  for (const k of UNSUPPORTED_CHECKS) {
    if (lookup(o, k) !== undefined && lookup(o, k) !== null && lookup(o, k) !== "") {
      throw badRequest(`${what}: ${k} checks are not supported; use TTL, HTTP, TCP, UDP or GRPC`);
    }
  }
  const id = optionalField(o, "CheckID", "string", what) ??
    optionalField(o, "ID", "string", what) ?? "";
  const d: CheckDraft = {
    check: {
      id: "",
      name: opts.defaultName,
      notes: "",
      kind: "reported",
      target: "",
      ttlMs: 0,
      intervalMs: 0,
      timeoutMs: 0,
      deregisterCriticalAfterMs: 0,
      status: "critical",
      output: "",
    },
    kinds: 0,
    service: opts.service,
  };
  readFields(o, CHECK_FIELDS, d, what);
  const c = d.check;
  if (d.kinds > 1) {
    throw badRequest(`${what}: give one of TTL, HTTP, TCP, UDP or GRPC, not several`);
  }
  if (opts.mode === "report") {
    Object.assign(c, { kind: "reported", target: "", ttlMs: 0, intervalMs: 0, timeoutMs: 0 });
  } else if (d.kinds === 0) {
    throw badRequest(`${what}: give TTL, HTTP, TCP, UDP or GRPC (the check kinds berth runs)`);
  } else if (c.kind === "http" || c.kind === "tcp" || c.kind === "udp" || c.kind === "grpc") {
    c.intervalMs ||= CHECK_INTERVAL_DEFAULT_MS;
    c.timeoutMs ||= Math.min(CHECK_TIMEOUT_DEFAULT_MS, c.intervalMs);
  } else {
    c.intervalMs = 0;
    c.timeoutMs = 0;
  }
  c.id = id !== "" ? id : opts.defaultId !== "" ? opts.defaultId : c.name;
  if (c.id === "") throw badRequest(`${what}: missing Name (or ID)`);
  if (c.name === "") c.name = c.id;
  return ruled(what, () => rules.registeredCheck(c, "Check"));
}
