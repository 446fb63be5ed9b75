/**
 * Consul service definitions (agent and catalog registration bodies) → our InstanceSpec, through
 * one field table each for the service, its check and the `berth.*` Meta keys: every field's
 * name, type, documentation and how it fills the spec in one entry. Field names match
 * case-insensitively, as Go's JSON decoding does for Consul. What a value may be is the store's
 * rules (src/store/instance_rules.ts); they are called here only to answer 400 naming the field.
 * A service's checks are read by check_definition.ts. Anything we cannot honour is refused with
 * one line, never dropped.
 *
 * @module
 */
import { closest } from "../lib/closest.ts";
import { intOrText, splitList } from "../lib/text.ts";
import {
  HSTS_META_KEY,
  HTTP_PROTO_META_KEY,
  type InstanceSpec,
  isFamily,
  LB_META_KEY,
  REDIRECT_META_KEY,
  ROUTE_KEY_INDEX,
  ROUTE_KEYS,
  rules,
  TLS_META_KEY,
} from "../store/mod.ts";
import { checkFromConsul } from "./check_definition.ts";
import { field, type FieldSpec, fieldSpec, optionalField, readFields, ruled } from "./fields.ts";
import { badRequest } from "./http_error.ts";

export { field, optionalField } from "./fields.ts";

/**
 * Routing for API registrations, from Meta with the Docker label names. The values stay in Meta
 * as given; `berth.lb` and `berth.http.proto` need no entry (the meta rule checks them and the
 * proxy reads them there).
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

/**
 * The `berth.*` Meta keys an API registration may set: META_FIELDS, the edge options the meta
 * rule checks, and the route settings (ROUTE_KEY_INDEX, families by prefix).
 */
const API_META_KEYS: readonly string[] = [
  ...META_FIELDS.map((f) => f.name),
  LB_META_KEY,
  TLS_META_KEY,
  HTTP_PROTO_META_KEY,
  HSTS_META_KEY,
  REDIRECT_META_KEY,
];

/** Per-port container labels (`berth.http.80.host`): no Meta form, an instance has one port. */
const PER_PORT_KEY = /^berth\.http\.\d+\.(host|path|tls)$/i;

/**
 * Refuses (400) a `berth.`-prefixed Meta key no part of berth reads (a typo such as
 * `berth.http.alow`, a per-port or container-only label): as a label, it would be reported;
 * silently ignored in Meta, a mistyped protection would leave the service open. Only at the API
 * edge: instances already in the store apply as they are.
 */
function checkBerthMetaKeys(meta: Record<string, string>, what: string): void {
  for (const key of Object.keys(meta)) {
    if (!key.toLowerCase().startsWith("berth.")) continue;
    if (META_FIELDS.some((f) => f.name === key.toLowerCase())) continue; // matched ignoring case
    if (API_META_KEYS.includes(key) || ROUTE_KEY_INDEX.find(key) !== undefined) continue;
    if (PER_PORT_KEY.test(key)) {
      throw badRequest(
        `${what}: Meta.${key}: per-port keys are container labels only; an API registration ` +
          `has one port: use berth.http.host, berth.http.path or berth.tls`,
      );
    }
    const near = closest(key, [
      ...API_META_KEYS,
      ...ROUTE_KEYS.filter((k) => !isFamily(k)).map((k) => k.key),
    ]);
    throw badRequest(
      `${what}: Meta.${key}: not a berth key of API registrations` +
        (near === null ? "" : `; did you mean ${near}?`) +
        ` (the README's label table lists them)`,
    );
  }
}

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
      checkBerthMetaKeys(v, what);
      spec.meta = ruled(what, () => rules.meta({ ...v }, "Meta"));
      readFields(v, META_FIELDS, spec, what);
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
  readFields(o, SERVICE_FIELDS, spec, what);
  if (opts.checks) {
    const one = optionalField(o, "Check", "object", what);
    const many = optionalField(o, "Checks", "array", what) ?? [];
    const all = [...(one === undefined ? [] : [one]), ...many];
    const checks = all.map((c, n) => {
      if (typeof c !== "object" || c === null || Array.isArray(c)) {
        throw badRequest(`${what}: Checks[${n}] must be an object`);
      }
      // Consul's ids: `service:<id>` for one check, `service:<id>:<n>` (from 1) for several.
      return checkFromConsul(c as Record<string, unknown>, {
        what: `${what}: Check`,
        defaultId: all.length === 1 ? `service:${spec.id}` : `service:${spec.id}:${n + 1}`,
        defaultName: `Service '${spec.service}' check`,
        service: { address: spec.address, port: spec.port },
        mode: "run",
      });
    });
    if (checks.length > 0) spec.checks = checks;
  }
  return spec;
}
