/**
 * Consul service definitions (agent and catalog registration bodies) → our InstanceSpec. Field
 * names match case-insensitively, as Go's JSON decoding does for Consul. Anything we cannot
 * honour (TTL or script checks, several checks) is refused with one line, never dropped.
 *
 * @module
 */
import { parseDuration } from "../lib/duration.ts";
import {
  AWAITING_CHECK_OUTPUT,
  type CheckDefinition,
  type CheckStatus,
  type InstanceSpec,
} from "../store/mod.ts";
import { badRequest } from "./http_error.ts";

/** Consul's default check timeout. */
export const CHECK_TIMEOUT_DEFAULT_MS = 10_000;
/** Interval when a check gives none. */
export const CHECK_INTERVAL_DEFAULT_MS = 10_000;

interface Kinds {
  string: string;
  number: number;
  boolean: boolean;
  object: Record<string, unknown>;
  array: unknown[];
  strings: string[];
  stringMap: Record<string, string>;
}

const WANT: Record<keyof Kinds, string> = {
  string: "a string",
  number: "a number",
  boolean: "true or false",
  object: "an object",
  array: "a list",
  strings: "a list of strings",
  stringMap: "an object of string values",
};

function lookup(o: Record<string, unknown>, name: string): unknown {
  if (name in o) return o[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

function isKind(v: unknown, kind: keyof Kinds): boolean {
  switch (kind) {
    case "string":
    case "number":
    case "boolean":
      return typeof v === kind && (kind !== "number" || Number.isFinite(v));
    case "object":
      return typeof v === "object" && v !== null && !Array.isArray(v);
    case "array":
      return Array.isArray(v);
    case "strings":
      return Array.isArray(v) && v.every((x) => typeof x === "string");
    case "stringMap":
      return isKind(v, "object") &&
        Object.values(v as object).every((x) => typeof x === "string");
  }
}

/** The field `name` of `o` (absent or null → undefined); 400 naming it when of the wrong type. */
export function optionalField<K extends keyof Kinds>(
  o: Record<string, unknown>,
  name: string,
  kind: K,
  what: string,
): Kinds[K] | undefined {
  const v = lookup(o, name);
  if (v === undefined || v === null) return undefined;
  if (!isKind(v, kind)) {
    const got = Array.isArray(v) ? "a list" : typeof v;
    throw badRequest(`${what}: ${name} must be ${WANT[kind]}, got ${got}`);
  }
  return v as Kinds[K];
}

/** Like optionalField, but 400 when missing (or an empty string). */
export function field<K extends keyof Kinds>(
  o: Record<string, unknown>,
  name: string,
  kind: K,
  what: string,
): Kinds[K] {
  const v = optionalField(o, name, kind, what);
  if (v === undefined || v === "") throw badRequest(`${what}: missing ${name}`);
  return v;
}

function duration(o: Record<string, unknown>, name: string, what: string, def: number): number {
  const v = optionalField(o, name, "string", what);
  if (v === undefined || v === "") return def;
  try {
    return parseDuration(v);
  } catch {
    throw badRequest(`${what}: ${name} "${v.slice(0, 40)}" is not a duration like 10s or 500ms`);
  }
}

const UNSUPPORTED_CHECKS = ["TTL", "Args", "ScriptArgs", "GRPC", "DockerContainerID", "H2PING"];

/** One Consul check definition → ours, with its initial status. */
function checkFromConsul(
  o: Record<string, unknown>,
  what: string,
): { check: CheckDefinition; status: CheckStatus } {
  for (const k of UNSUPPORTED_CHECKS) {
    if (lookup(o, k) !== undefined) {
      throw badRequest(`${what}: ${k} checks are not supported; use HTTP or TCP`);
    }
  }
  const http = optionalField(o, "HTTP", "string", what);
  const tcp = optionalField(o, "TCP", "string", what);
  if (http === undefined && tcp === undefined) {
    throw badRequest(`${what}: give HTTP or TCP (the only check kinds supported)`);
  }
  const check: CheckDefinition = {
    intervalMs: duration(o, "Interval", what, CHECK_INTERVAL_DEFAULT_MS),
    timeoutMs: duration(o, "Timeout", what, CHECK_TIMEOUT_DEFAULT_MS),
  };
  if (http !== undefined) {
    // berth probes the path on the instance's own address and port.
    let path = http;
    if (!http.startsWith("/")) {
      try {
        const u = new URL(http);
        path = u.pathname + u.search;
      } catch {
        throw badRequest(`${what}: HTTP "${http.slice(0, 80)}" is not a URL or a /path`);
      }
    }
    check.http = path;
  } else {
    check.tcp = true;
  }
  const status = optionalField(o, "Status", "string", what) ?? "critical";
  if (status !== "passing" && status !== "warning" && status !== "critical") {
    throw badRequest(`${what}: Status must be passing|warning|critical, got "${status}"`);
  }
  return { check, status };
}

/**
 * Routing for API registrations comes from Meta, with the Docker label names:
 * `berth.http.host` (comma-separated), `berth.http.path` (/prefix), `berth.tcp.port` (1..65535).
 */
function routesFromMeta(spec: InstanceSpec, what: string): void {
  const hosts = spec.meta["berth.http.host"];
  if (hosts !== undefined) {
    spec.httpHosts = hosts.split(",").map((h) => h.trim().toLowerCase()).filter((h) => h !== "");
    for (const h of spec.httpHosts) {
      if (!/^[a-z0-9*]([a-z0-9.-]*[a-z0-9])?$/.test(h)) {
        throw badRequest(`${what}: Meta berth.http.host "${h.slice(0, 80)}" is not a host name`);
      }
    }
  }
  const path = spec.meta["berth.http.path"];
  if (path !== undefined) {
    if (!path.startsWith("/")) {
      throw badRequest(
        `${what}: Meta berth.http.path must start with /, got "${path.slice(0, 80)}"`,
      );
    }
    spec.httpPath = path;
  }
  const tcp = spec.meta["berth.tcp.port"];
  if (tcp !== undefined) {
    const n = Number(tcp);
    if (!/^\d+$/.test(tcp) || n < 1 || n > 65535) {
      throw badRequest(
        `${what}: Meta berth.tcp.port must be a port in 1..65535, got "${tcp.slice(0, 20)}"`,
      );
    }
    spec.tcpPort = n;
  }
}

export interface ServiceFromConsulOptions {
  /** Prefix of error messages: `agent service register`. */
  what: string;
  node: string;
  /** Address used when the definition gives none. */
  defaultAddress: string;
  /** The field holding the service name: `Name` (agent) or `Service` (catalog). */
  serviceKey: "Name" | "Service";
  /** Whether Check/Checks definitions are read (agent registrations). */
  checks?: boolean;
}

/** Builds the spec of a Consul service definition; not yet validated by validateInstance. */
export function serviceFromConsul(
  o: Record<string, unknown>,
  opts: ServiceFromConsulOptions,
): InstanceSpec {
  const { what } = opts;
  const name = field(o, opts.serviceKey, "string", what);
  const weights = optionalField(o, "Weights", "object", what);
  const passingWeight = weights === undefined
    ? 1
    : optionalField(weights, "Passing", "number", `${what}: Weights`) ?? 1;
  const spec: InstanceSpec = {
    id: optionalField(o, "ID", "string", what) || name,
    service: name,
    node: opts.node,
    address: optionalField(o, "Address", "string", what) || opts.defaultAddress,
    port: optionalField(o, "Port", "number", what) ?? 0,
    tags: optionalField(o, "Tags", "strings", what) ?? [],
    meta: optionalField(o, "Meta", "stringMap", what) ?? {},
    weight: passingWeight,
    status: "passing",
    output: "",
    containerId: null,
    httpHosts: [],
    httpPath: null,
    tcpPort: null,
    check: null,
  };
  routesFromMeta(spec, what);
  if (opts.checks) {
    const one = optionalField(o, "Check", "object", what);
    const many = optionalField(o, "Checks", "array", what) ?? [];
    const all = [...(one === undefined ? [] : [one]), ...many];
    if (all.length > 1) throw badRequest(`${what}: at most one check per service is supported`);
    const first = all[0];
    if (first !== undefined) {
      if (typeof first !== "object" || first === null || Array.isArray(first)) {
        throw badRequest(`${what}: Check must be an object`);
      }
      const { check, status } = checkFromConsul(first as Record<string, unknown>, `${what}: Check`);
      spec.check = check;
      spec.status = status;
      spec.output = status === "passing" ? "" : AWAITING_CHECK_OUTPUT;
    }
  }
  return spec;
}
