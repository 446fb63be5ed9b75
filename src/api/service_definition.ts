/**
 * Consul service definitions (agent and catalog registration bodies) → our InstanceSpec, through
 * one field table each for the service, its check and the `berth.*` Meta keys: every field's
 * name, type, documentation and how it fills the spec in one entry. Field names match
 * case-insensitively, as Go's JSON decoding does for Consul. What a value may be is the store's
 * rules (src/store/validate.ts); they are called here only to answer 400 naming the field.
 * Anything we cannot honour (TTL or script checks, several checks) is refused with one line,
 * never dropped.
 *
 * @module
 */
import { parseDuration } from "../lib/duration.ts";
import { intOrText, splitList } from "../lib/text.ts";
import {
  AWAITING_CHECK_OUTPUT,
  type CheckDefinition,
  type CheckStatus,
  CommandError,
  type InstanceSpec,
  rules,
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

/** Runs a store rule; its CommandError becomes a 400 prefixed with `what`. */
function ruled<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CommandError) throw badRequest(`${what}: ${e.message}`);
    throw e;
  }
}

/** One field of a body: Consul's name, its JSON type, and how it fills `target`. */
export interface FieldSpec<T, K extends keyof Kinds = keyof Kinds> {
  name: string;
  kind: K;
  doc: string;
  /** Called when the field is present; `what` prefixes errors. */
  set(target: T, value: Kinds[K], what: string): void;
}

function fieldSpec<T, K extends keyof Kinds>(s: FieldSpec<T, K>): FieldSpec<T> {
  return s as unknown as FieldSpec<T>;
}

/** Reads every field of `table` present in `o` into `target`. */
function decodeFields<T>(
  o: Record<string, unknown>,
  table: readonly FieldSpec<T>[],
  target: T,
  what: string,
): void {
  for (const f of table) {
    const v = optionalField(o, f.name, f.kind, what);
    if (v !== undefined) f.set(target, v, what);
  }
}

function durationMs(v: string, name: string, what: string): number | undefined {
  if (v === "") return undefined;
  try {
    return parseDuration(v);
  } catch {
    throw badRequest(`${what}: ${name} "${v.slice(0, 40)}" is not a duration like 10s or 500ms`);
  }
}

/** A check being read: the definition and its initial status. */
interface CheckDraft {
  check: CheckDefinition;
  status: CheckStatus;
  kinds: number;
}

/** The fields of a Consul check definition that berth runs. */
export const CHECK_FIELDS: readonly FieldSpec<CheckDraft>[] = [
  fieldSpec({
    name: "HTTP",
    kind: "string",
    doc: "URL or /path probed with GET on the instance's own address and port",
    set: (d: CheckDraft, v: string, what: string) => {
      let path = v;
      if (!v.startsWith("/")) {
        try {
          const u = new URL(v);
          path = u.pathname + u.search;
        } catch {
          throw badRequest(`${what}: HTTP "${v.slice(0, 80)}" is not a URL or a /path`);
        }
      }
      d.check.http = ruled(what, () => rules.urlPath(path, "HTTP"));
      d.kinds++;
    },
  }),
  fieldSpec({
    name: "TCP",
    kind: "string",
    doc: "any host:port; berth connects to the instance's own address and port",
    set: (d: CheckDraft) => {
      d.check.tcp = true;
      d.kinds++;
    },
  }),
  fieldSpec({
    name: "Interval",
    kind: "string",
    doc: `time between checks (default ${CHECK_INTERVAL_DEFAULT_MS / 1000}s)`,
    set: (d: CheckDraft, v: string, what: string) => {
      const ms = durationMs(v, "Interval", what);
      if (ms !== undefined) {
        d.check.intervalMs = ruled(what, () => rules.checkIntervalMs(ms, "Interval"));
      }
    },
  }),
  fieldSpec({
    name: "Timeout",
    kind: "string",
    doc: `check timeout (default ${CHECK_TIMEOUT_DEFAULT_MS / 1000}s)`,
    set: (d: CheckDraft, v: string, what: string) => {
      const ms = durationMs(v, "Timeout", what);
      if (ms !== undefined) {
        d.check.timeoutMs = ruled(what, () => rules.checkTimeoutMs(ms, "Timeout"));
      }
    },
  }),
  fieldSpec({
    name: "Status",
    kind: "string",
    doc: "status until the first result (default critical)",
    set: (d: CheckDraft, v: string, what: string) => {
      d.status = ruled(what, () => rules.status(v, "Status"));
    },
  }),
];

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
  const d: CheckDraft = {
    check: { intervalMs: CHECK_INTERVAL_DEFAULT_MS, timeoutMs: CHECK_TIMEOUT_DEFAULT_MS },
    status: "critical",
    kinds: 0,
  };
  decodeFields(o, CHECK_FIELDS, d, what);
  if (d.kinds === 0) throw badRequest(`${what}: give HTTP or TCP (the only check kinds supported)`);
  if (d.check.http !== undefined) delete d.check.tcp;
  return { check: d.check, status: d.status };
}

/**
 * Routing for API registrations, from Meta with the Docker label names. The values stay in Meta
 * as given; `berth.lb` needs no entry (the meta rule checks it and the proxy reads it there).
 */
export const META_FIELDS: readonly FieldSpec<InstanceSpec, "string">[] = [
  {
    name: "berth.http.host",
    kind: "string",
    doc: "comma-separated Host headers routed to the service",
    set: (spec, v, what) => {
      spec.httpHosts = ruled(what, () => rules.httpHosts(splitList(v), 'Meta["berth.http.host"]'));
    },
  },
  {
    name: "berth.http.path",
    kind: "string",
    doc: "path prefix routed to the service",
    set: (spec, v, what) => {
      spec.httpPath = ruled(what, () => rules.urlPath(v, 'Meta["berth.http.path"]'));
    },
  },
  {
    name: "berth.tcp.port",
    kind: "string",
    doc: "every proxy member listens on this TCP port for the service",
    set: (spec, v, what) => {
      spec.tcpPort = ruled(what, () => rules.listenPort(intOrText(v), 'Meta["berth.tcp.port"]'));
    },
  },
];

/** The fields of a Consul service definition besides its name and checks. */
export const SERVICE_FIELDS: readonly FieldSpec<InstanceSpec>[] = [
  fieldSpec({
    name: "ID",
    kind: "string",
    doc: "instance id (default: the service name)",
    set: (spec: InstanceSpec, v: string) => {
      if (v !== "") spec.id = v;
    },
  }),
  fieldSpec({
    name: "Address",
    kind: "string",
    doc: "address (default: the node's)",
    set: (spec: InstanceSpec, v: string) => {
      if (v !== "") spec.address = v;
    },
  }),
  fieldSpec({
    name: "Port",
    kind: "number",
    doc: "port (default 0)",
    set: (spec: InstanceSpec, v: number, what: string) => {
      spec.port = ruled(what, () => rules.port(v, "Port"));
    },
  }),
  fieldSpec({
    name: "Tags",
    kind: "strings",
    doc: "tags",
    set: (spec: InstanceSpec, v: string[], what: string) => {
      spec.tags = ruled(what, () => rules.tags(v, "Tags"));
    },
  }),
  fieldSpec({
    name: "Meta",
    kind: "stringMap",
    doc: "meta; the berth.* keys of META_FIELDS also route the service",
    set: (spec: InstanceSpec, v: Record<string, string>, what: string) => {
      spec.meta = ruled(what, () => rules.meta({ ...v }, "Meta"));
      decodeFields(v, META_FIELDS, spec, what);
    },
  }),
  fieldSpec({
    name: "Weights",
    kind: "object",
    doc: "Passing is the weight (default 1); Warning is ignored",
    set: (spec: InstanceSpec, v: Record<string, unknown>, what: string) => {
      const passing = optionalField(v, "Passing", "number", `${what}: Weights`);
      if (passing !== undefined) {
        spec.weight = ruled(what, () => rules.weight(passing, "Weights.Passing"));
      }
    },
  }),
];
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
  const spec: InstanceSpec = {
    id: name,
    service: ruled(what, () => rules.serviceName(name, opts.serviceKey)),
    node: opts.node,
    address: opts.defaultAddress,
    port: 0,
    tags: [],
    meta: {},
    weight: 1,
    containerId: null,
    httpHosts: [],
    httpPath: null,
    tcpPort: null,
    check: null,
    docker: null,
    checkResult: null,
  };
  decodeFields(o, SERVICE_FIELDS, spec, what);
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
      // A given Status passing or warning is the check's first result; critical (Consul's
      // default) is the same as no result yet: critical, awaiting the first run.
      spec.checkResult = status === "critical"
        ? null
        : { status, output: status === "passing" ? "" : AWAITING_CHECK_OUTPUT };
    }
  }
  return spec;
}
