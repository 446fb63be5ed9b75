/**
 * Reading a container's configuration from its labels and environment through one table (as
 * Traefik's `label.Decode` does from a schema): LABELS holds every label berth reads, each with
 * its keys, an example value, the line that documents it, its default, what a bad value leads to
 * and its parser. The README's label table lists the same rows (labels_test.ts checks it).
 *
 * Keys: `berth.*` are read from labels; Registrator's `SERVICE_*` from labels, then env (labels
 * win). The first key of an entry that is present and non-empty is used; `<port>` stands for the
 * container port. Parsers only read the text; what values are allowed are the store's rules
 * (`rules` in src/store/instance_rules.ts), so a label can never carry what apply() would refuse.
 *
 * A bad value never throws: it becomes a Problem naming the label, the value and the reason, and
 * the entry's default is used.
 *
 * Over 500 lines: the table is one schema of every label and is kept whole, in README order.
 *
 * @module
 */
import { parseDuration } from "../lib/duration.ts";
import { intOrText, parseBool, splitList } from "../lib/text.ts";
import {
  CommandError,
  type HttpProto,
  isSecretKey,
  type LbPolicy,
  ROUTE_KEY_INDEX,
  type RouteKeyIndex,
  rules,
  type TlsMode,
} from "../store/mod.ts";
import type { ContainerInfo } from "./container.ts";

/** A label or env value the watcher could not use; the watcher logs it once per container. */
export interface Problem {
  /** Container name. */
  container: string;
  containerId: string;
  label: string;
  message: string;
}

/** Longest label or env value read (longer ones are a Problem). */
export const LABEL_BYTES_MAX = 4096;
/** Most env entries read from one container. */
export const ENV_ENTRIES_MAX = 4096;
/** Most characters of a bad value quoted in a Problem. */
const SHOWN_CHARS_MAX = 80;

/** Where a container's settings come from: labels first, then env for `SERVICE_*` keys. */
export class ContainerSettings {
  readonly #labels: Record<string, string>;
  readonly #env: Map<string, string>;
  readonly #container: string;
  readonly #containerId: string;
  readonly problems: Problem[] = [];

  constructor(container: string, containerId: string, c: ContainerInfo) {
    this.#container = container;
    this.#containerId = containerId;
    this.#labels = c.Config?.Labels ?? {};
    this.#env = new Map();
    for (const e of (c.Config?.Env ?? []).slice(0, ENV_ENTRIES_MAX)) {
      const eq = e.indexOf("=");
      if (eq > 0) this.#env.set(e.slice(0, eq), e.slice(eq + 1));
    }
  }

  problem(label: string, message: string): void {
    this.problems.push({
      container: this.#container,
      containerId: this.#containerId,
      label,
      message,
    });
  }

  /** A label (any name); undefined when absent or too long. */
  label(key: string): string | undefined {
    return this.#bounded(key, this.#labels[key]);
  }

  /** Whether a label is set to more than blanks (a too long one too); reports nothing. */
  written(key: string): boolean {
    return Object.hasOwn(this.#labels, key) && this.#labels[key]!.trim() !== "";
  }

  /** A `SERVICE_*` key from labels, else env; any other key from labels only. */
  get(key: string): string | undefined {
    const v = this.label(key);
    if (v !== undefined || !key.startsWith("SERVICE_")) return v;
    return this.#bounded(key, this.#env.get(key));
  }

  /** Every label name, sorted. */
  labelKeys(): string[] {
    return Object.keys(this.#labels).sort();
  }

  /** Every Registrator key (`SERVICE_*`) present in labels or env, sorted. */
  serviceKeys(): string[] {
    const keys = new Set<string>();
    for (const k of this.#env.keys()) if (k.startsWith("SERVICE_")) keys.add(k);
    for (const k of Object.keys(this.#labels)) if (k.startsWith("SERVICE_")) keys.add(k);
    return [...keys].sort();
  }

  #bounded(key: string, v: string | undefined): string | undefined {
    if (v === undefined) return undefined;
    if (v.length > LABEL_BYTES_MAX) {
      this.problem(key, `${key}: longer than ${LABEL_BYTES_MAX} characters; ignored`);
      return undefined;
    }
    return v;
  }
}

/** One label of the table. */
export interface LabelSpec<T> {
  /** Keys in precedence order; the README lists them in this order. */
  keys: readonly string[];
  /** Value shown after the first key in the README (`berth.weight=N`). */
  example: string;
  /** The README's meaning column. */
  doc: string;
  /** Value when every key is absent, empty or bad. */
  default: T;
  /** The end of a bad value's log line: what is used instead. */
  onBad: string;
  /** Reads a value (trimmed, non-empty); throws CommandError, whose `want` is logged. */
  parse(value: string, key: string): T;
}

/** `berth.port`: a container port, optionally with its protocol. */
export interface PortChoice {
  port: number;
  proto: "tcp" | "udp" | null;
}

function bool(value: string): boolean {
  const b = parseBool(value);
  if (b === null) throw new CommandError(value, "true or false");
  return b;
}

/** Registrator's ignore flag: any value but false/0/no/off ignores. */
function ignoreFlag(value: string): boolean {
  return parseBool(value) !== false;
}

function duration(rule: (ms: number, key: string) => number) {
  return (value: string, key: string): number => {
    let ms: number;
    try {
      ms = parseDuration(value);
    } catch {
      throw new CommandError(value, "a duration like 5s or 500ms");
    }
    return rule(ms, key);
  };
}

function portChoice(value: string, key: string): PortChoice {
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(value);
  if (m === null) throw new CommandError(value, "a port like 8080 or 53/udp");
  return {
    port: rules.listenPort(Number(m[1]), key),
    proto: (m[2] ?? null) as PortChoice["proto"],
  };
}

export const CHECK_INTERVAL_DEFAULT_MS = 10_000;
export const CHECK_TIMEOUT_DEFAULT_MS = 2_000;

function label<T>(spec: LabelSpec<T>): LabelSpec<T> {
  return spec;
}

/** Every label berth reads. Order is the README's. */
export const LABELS = {
  enable: label<boolean>({
    keys: ["berth.enable"],
    example: "false",
    doc: "`false` ignores the container; with `--expose-by-default=false` only containers " +
      "labelled `true` are registered",
    default: true,
    onBad: "registering it",
    parse: bool,
  }),
  ignore: label<boolean>({
    keys: ["SERVICE_IGNORE"],
    example: "1",
    doc: "ignores the container (any value but `false`, `0`, `no`, `off`)",
    default: false,
    onBad: "registering it",
    parse: ignoreFlag,
  }),
  portIgnore: label<boolean>({
    keys: ["SERVICE_<port>_IGNORE"],
    example: "1",
    doc: "ignores one container port",
    default: false,
    onBad: "registering it",
    parse: ignoreFlag,
  }),
  service: label<string | null>({
    keys: ["berth.service", "SERVICE_NAME"],
    example: "NAME",
    doc: "service name (default: compose/swarm service, then image base name; `-<port>` " +
      "added when several ports remain after ignores, unless named per port)",
    default: null,
    onBad: "using the default name",
    parse: (v, key) => rules.serviceName(v, key),
  }),
  portService: label<string | null>({
    keys: ["SERVICE_<port>_NAME"],
    example: "NAME",
    doc: "service name of one container port",
    default: null,
    onBad: "using the container's service name",
    parse: (v, key) => rules.serviceName(v, key),
  }),
  serviceId: label<string | null>({
    keys: ["SERVICE_ID"],
    example: "ID",
    doc: "instance id `<node>:ID` (`<node>:ID:<port>` when several ports remain) " +
      "instead of `<node>:<container>:<port>`",
    default: null,
    onBad: "using <container-name>:<port>",
    parse: (v, key) => rules.idPart(v, key),
  }),
  tags: label<string[]>({
    keys: ["berth.tags", "SERVICE_<port>_TAGS", "SERVICE_TAGS"],
    example: "a,b",
    doc: "tags (the first of these present)",
    default: [],
    onBad: "no tags",
    parse: (v, key) => rules.tags(splitList(v), key),
  }),
  port: label<PortChoice | null>({
    keys: ["berth.port"],
    example: "N",
    doc: "the one container port to register when it has several (`N/udp` for UDP)",
    default: null,
    onBad: "using every port",
    parse: portChoice,
  }),
  network: label<string | null>({
    keys: ["berth.network"],
    example: "NAME",
    doc: "with `--internal`: the container network whose IP is registered (default: the " +
      "container's own network, else its first)",
    default: null,
    onBad: "using the default network",
    parse: (v) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(v)) {
        throw new CommandError(v, "a Docker network name");
      }
      return v;
    },
  }),
  httpHosts: label<string[] | null>({
    keys: ["berth.http.host"],
    example: "h1,h2",
    doc: "Host headers routed to the service (default `NAME.<edge-domain>`)",
    default: null,
    onBad: "using the default hosts",
    parse: (v, key) => rules.httpHosts(splitList(v), key),
  }),
  httpPath: label<string | null>({
    keys: ["berth.http.path"],
    example: "/prefix",
    doc: "path prefix routed to the service (longest prefix wins)",
    default: null,
    onBad: "no path route",
    parse: (v, key) => rules.urlPath(v, key),
  }),
  portHttpHosts: label<string[] | null>({
    keys: ["berth.http.<port>.host"],
    example: "h1,h2",
    doc: "Host headers routed to one container port (instead of `berth.http.host`)",
    default: null,
    onBad: "using the container's hosts",
    parse: (v, key) => rules.httpHosts(splitList(v), key),
  }),
  portHttpPath: label<string | null>({
    keys: ["berth.http.<port>.path"],
    example: "/prefix",
    doc: "path prefix routed to one container port (instead of `berth.http.path`)",
    default: null,
    onBad: "using the container's path",
    parse: (v, key) => rules.urlPath(v, key),
  }),
  httpProto: label<HttpProto | null>({
    keys: ["berth.http.proto"],
    example: "grpc",
    doc: "protocol to the instances: `http1` (default), `h2c` (HTTP/2 cleartext) or `grpc` " +
      "(h2c; the proxy's own errors as gRPC statuses)",
    default: null,
    onBad: "using http1",
    parse: (v, key) => rules.httpProto(v, key),
  }),
  tcpPort: label<number | null>({
    keys: ["berth.tcp.port"],
    example: "N",
    doc: "every proxy member listens on TCP port N for the service",
    default: null,
    onBad: "no TCP route",
    parse: (v, key) => rules.listenPort(intOrText(v), key),
  }),
  checkHttp: label<string | null>({
    keys: ["berth.check.http", "SERVICE_CHECK_HTTP"],
    example: "/path",
    doc: "HTTP check: 2xx passes, 429 warns",
    default: null,
    onBad: "no HTTP check",
    parse: (v, key) => rules.urlPath(v, key),
  }),
  checkTcp: label<boolean>({
    keys: ["berth.check.tcp", "SERVICE_CHECK_TCP"],
    example: "true",
    doc: "TCP connect check",
    default: false,
    onBad: "no TCP check",
    parse: bool,
  }),
  checkGrpc: label<boolean>({
    keys: ["berth.check.grpc"],
    example: "true",
    doc: "gRPC health check (`grpc.health.v1.Health/Check` over h2c): SERVING passes",
    default: false,
    onBad: "no gRPC check",
    parse: bool,
  }),
  checkUdp: label<string | null>({
    keys: ["berth.check.udp"],
    example: "PAYLOAD",
    doc: "UDP check of the UDP ports (Consul's): sends PAYLOAD (`true`: empty, `false`: none; " +
      "`\\xHH` escapes); ICMP unreachable fails, reply or silence pass",
    default: null,
    onBad: "no UDP check",
    // Only these two exact words: `1`, `ON` or `no` are plausible payloads of a status protocol.
    parse: (v, key) => v === "true" ? "" : v === "false" ? null : rules.udpCheckBytes(v, key),
  }),
  checkUdpExpect: label<string | null>({
    keys: ["berth.check.udp.expect"],
    example: "TEXT",
    doc: "with `berth.check.udp`: a reply containing TEXT (same escapes) must come in time",
    default: null,
    onBad: "the UDP check fails until it is fixed",
    parse: (v, key) => rules.udpCheckBytes(v, key),
  }),
  checkInterval: label<number>({
    keys: ["berth.check.interval", "SERVICE_CHECK_INTERVAL"],
    example: "5s",
    doc: "time between checks (default 10s)",
    default: CHECK_INTERVAL_DEFAULT_MS,
    onBad: "using 10s",
    parse: duration((ms, key) => rules.checkIntervalMs(ms, key)),
  }),
  checkTimeout: label<number>({
    keys: ["berth.check.timeout", "SERVICE_CHECK_TIMEOUT"],
    example: "2s",
    doc: "check timeout (default 2s)",
    default: CHECK_TIMEOUT_DEFAULT_MS,
    onBad: "using 2s",
    parse: duration((ms, key) => rules.checkTimeoutMs(ms, key)),
  }),
  weight: label<number>({
    keys: ["berth.weight"],
    example: "N",
    doc: "balancing weight and SRV weight (default 1; 0 keeps it out of the proxy)",
    default: 1,
    onBad: "using 1",
    parse: (v, key) => rules.weight(intOrText(v), key),
  }),
  lb: label<LbPolicy | null>({
    keys: ["berth.lb"],
    example: "least_conn",
    doc:
      "balancing policy of the service: `round_robin` (default), `least_conn`, `p2c`, `hash` or `sticky_cookie` (see Balancing)",
    default: null,
    onBad: "using round_robin",
    parse: (v, key) => rules.lbPolicy(v, key),
  }),
  tls: label<TlsMode | null>({
    keys: ["berth.tls"],
    example: "acme",
    doc: "certificates from ACME for the service's routed hosts (see ACME)",
    default: null,
    onBad: "no ACME certificate",
    parse: (v, key) => rules.tlsMode(v, key),
  }),
  portTls: label<TlsMode | null>({
    keys: ["berth.http.<port>.tls"],
    example: "acme",
    doc: "`berth.tls` for one container port",
    default: null,
    onBad: "using the container's berth.tls",
    parse: (v, key) => rules.tlsMode(v, key),
  }),
  hsts: label<string | null>({
    keys: ["berth.http.hsts"],
    example: "max-age=N",
    doc:
      "Strict-Transport-Security on HTTPS responses: `max-age=N[; includeSubDomains][; preload]`",
    default: null,
    onBad: "no Strict-Transport-Security",
    parse: (v, key) => rules.hsts(v, key),
  }),
  /** Read by key pattern (attributes()), not by decodeLabel(). */
  attributes: label<Record<string, string>>({
    keys: ["SERVICE_<port>_<KEY>", "SERVICE_<KEY>"],
    example: "v",
    doc: "any other key: instance meta `<key>: v` (key lower-cased; per port wins; not a " +
      "route setting: use its `berth.*` label)",
    default: {},
    onBad: "attributes ignored",
    parse: () => ({}),
  }),
};

/** Every entry, in the README's order. */
export const LABEL_SPECS: readonly LabelSpec<unknown>[] = Object.values(LABELS);

/** The value of one table entry for a container (`port` fills `<port>` keys). Never throws. */
export function decodeLabel<T>(s: ContainerSettings, spec: LabelSpec<T>, port?: number): T {
  for (const k of spec.keys) {
    if (k.includes("<port>") && port === undefined) continue;
    const key = k.replace("<port>", String(port));
    const raw = s.get(key);
    const value = raw?.trim() ?? "";
    if (value === "") continue;
    try {
      return spec.parse(value, key);
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      badValue(s, key, value, e, spec.onBad);
      return spec.default;
    }
  }
  return spec.default;
}

/**
 * The Problem `KEY="value": expected WANT; ON_BAD` of a label whose value a parser refused; for
 * a secret setting (`berth.http.auth.basic`, where a password instead of its hash is the likely
 * mistake) `KEY (value hidden): …`, since the line is logged and shown by explain.
 */
export function badValue(
  s: ContainerSettings,
  key: string,
  value: string,
  e: CommandError,
  onBad: string,
): void {
  const shown = value.length > SHOWN_CHARS_MAX ? `${value.slice(0, SHOWN_CHARS_MAX)}…` : value;
  const what = isSecretKey(key) ? `${key} (value hidden)` : `${key}=${JSON.stringify(shown)}`;
  s.problem(key, `${what}: expected ${e.want || e.message}; ${onBad}`);
}

const BERTH_KEYS = new Set(
  LABEL_SPECS.flatMap((e) => e.keys).filter((k) => k.startsWith("berth.")),
);

/** `berth.*` keys with a container port in them (`berth.http.80.host`), as patterns. */
const BERTH_PORT_KEYS = [...BERTH_KEYS].filter((k) => k.includes("<port>")).map((k) =>
  new RegExp(`^${k.replaceAll(".", "\\.").replace("<port>", "(0|[1-9]\\d{0,4})")}$`)
);

/**
 * The container port of a per-port `berth.*` label (`berth.http.80.host` → 80), else null; a
 * port written with a leading zero (`berth.http.080.host`) is none, so it is reported as an
 * unknown label rather than read for no port.
 */
export function labelPort(key: string): number | null {
  for (const re of BERTH_PORT_KEYS) {
    const m = re.exec(key);
    if (m !== null) return Number(m[1]);
  }
  return null;
}

/**
 * A `berth.*` label neither the table nor the route settings (`index`, default ROUTE_KEYS) know
 * (a typo, or a label of another version): a Problem.
 */
export function reportUnknownLabels(
  s: ContainerSettings,
  index: RouteKeyIndex = ROUTE_KEY_INDEX,
): void {
  for (const key of s.labelKeys()) {
    if (
      key.startsWith("berth.") && !BERTH_KEYS.has(key) && labelPort(key) === null &&
      index.find(key) === undefined
    ) {
      s.problem(key, `${key}: not a berth label (see the README's label table); ignored`);
    }
  }
}

/** Keys the table gives a meaning, and Registrator's check settings: not attributes. */
const RESERVED = new Set(
  LABEL_SPECS.flatMap((e) => e.keys).filter((k) => k.startsWith("SERVICE_") && !k.includes("<")),
);

/**
 * Registrator's attributes: `SERVICE_<KEY>=v` → meta `<key>: v`, `SERVICE_<port>_<KEY>`
 * overriding for that port. A set the meta rule refuses is one Problem and none are used. A
 * route setting (`SERVICE_berth.http.auth.basic`: a key ROUTE_KEY_INDEX knows) is no attribute:
 * route settings come from their labels only, each checked alone, failing closed where they
 * must (route_labels.ts); here one bad one would drop every attribute. It is a Problem.
 */
export function attributes(s: ContainerSettings, port: number): Record<string, string> {
  const out: Record<string, string> = {};
  const perPort = `SERVICE_${port}_`;
  const keys = s.serviceKeys();
  const put = (full: string, k: string) => {
    if (k === "" || /^\d/.test(k) || k.startsWith("CHECK_") || RESERVED.has(`SERVICE_${k}`)) return;
    const v = s.get(full);
    if (v === undefined) return;
    const key = k.toLowerCase();
    if (ROUTE_KEY_INDEX.find(key) !== undefined) {
      if (!s.problems.some((p) => p.label === full)) {
        s.problem(full, `${full}: a route setting is read from its label ${key} only; ignored`);
      }
      return;
    }
    out[key] = v;
  };
  for (const full of keys) put(full, full.slice("SERVICE_".length));
  for (const full of keys) if (full.startsWith(perPort)) put(full, full.slice(perPort.length));
  try {
    return rules.meta(out, "SERVICE_* attributes");
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    s.problem("SERVICE_*", `${e.message}; ${LABELS.attributes.onBad}`);
    return {};
  }
}
