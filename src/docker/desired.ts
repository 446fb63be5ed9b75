/**
 * The desired registrations of this node, computed from the Docker engine's running containers:
 * a pure function from inspect data to plain InstanceSpec values (Traefik's "providers produce
 * data"). No I/O, no clock; the same containers always give the same instances.
 *
 * Rules (README, the label table):
 * - one instance per published port (address: the binding's HostIp, or `advertise` when it is
 *   0.0.0.0, :: or empty; port: the host port); with host networking, one per exposed port at
 *   `advertise`; with `internal`, one per exposed port at the container IP and container port.
 *   A container port published several times registers its first binding (IPv4 first).
 * - ignored: `berth.enable=false`, `SERVICE_IGNORE`, per port `SERVICE_<port>_IGNORE`; containers
 *   with no usable port. `berth.port=N` (or `N/udp`) keeps only that container port.
 * - service name: `SERVICE_<port>_NAME`, else the base name (`berth.service`, `SERVICE_NAME`,
 *   compose service, swarm service, image base name) with `-<port>` appended when several ports
 *   remain after `berth.port` and the per-port ignores.
 * - id: `<node>:<container-name>:<port>[:udp]`; with `SERVICE_ID`, `<node>:<SERVICE_ID>` for a
 *   container with one remaining port and `<node>:<SERVICE_ID>:<port>[:udp]` otherwise (ids always start
 *   with the node, which owns them).
 * - UDP ports get the `:udp` id suffix and the tag `udp`; HTTP routing and active checks apply to
 *   TCP ports only.
 * - status from Docker: paused, restarting, health `starting` or `unhealthy` → critical with the
 *   reason as output; healthy or no HEALTHCHECK → passing. A container being stopped (`stopping`)
 *   → critical. An instance with an active check (`berth.check.*`, `SERVICE_CHECK_*`) that Docker
 *   finds fine starts critical with output AWAITING_CHECK_OUTPUT (see reconcile.ts for how the
 *   health checker's later results are kept).
 *
 * @module
 */
import type { CheckDefinition, CheckStatus, InstanceSpec } from "../store/mod.ts";
import { instanceId, NAME_BYTES_MAX } from "../store/mod.ts";
import { TAGS_MAX } from "../store/validate.ts";
import { type ContainerInfo, containerName, type PortBinding } from "./container.ts";
import { ContainerSettings, isIgnoreValue, type Problem, splitList } from "./labels.ts";

import { AWAITING_CHECK_OUTPUT } from "../store/mod.ts";
export { AWAITING_CHECK_OUTPUT };
/** Output of an instance whose container got a stop signal (`kill` event). */
export const STOPPING_OUTPUT = "container being stopped";
/** Prefix of outputs that come from Docker's own HEALTHCHECK state. */
export const DOCKER_HEALTH_PREFIX = "docker health: ";
export const PAUSED_OUTPUT = "container paused";
export const RESTARTING_OUTPUT = "container restarting";

export const CHECK_INTERVAL_DEFAULT_MS = 10_000;
export const CHECK_TIMEOUT_DEFAULT_MS = 2_000;
/** Longest piece of a failing HEALTHCHECK's output copied into the instance output. */
export const HEALTH_OUTPUT_CHARS_MAX = 200;
/** Most ports registered for one container. */
export const PORTS_PER_CONTAINER_MAX = 256;
/** Longest service name (one DNS label). */
export const SERVICE_NAME_CHARS_MAX = 63;

const SERVICE_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/;
const SERVICE_ID_RE = /^[A-Za-z0-9_.-]+$/;
const HOST_RE = /^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;
/** SERVICE_* keys with a meaning; the others become instance meta (Registrator's attributes). */
const REGISTRATOR_KEYS = new Set(["NAME", "TAGS", "ID", "IGNORE"]);

export interface DesiredOptions {
  /** This node's name; every id starts with it. */
  node: string;
  /** Address registered for wildcard bindings and host networking. */
  advertise: string;
  /** Register container IP and container port instead of published ports. */
  internal: boolean;
  /** When set, `NAME.<edgeDomain>` is the default HTTP host of each TCP instance. */
  edgeDomain?: string | null;
  /** Ids of containers that got a stop signal and are still running. */
  stopping?: ReadonlySet<string>;
}

export interface Desired {
  /** Sorted by id, ids unique. */
  instances: InstanceSpec[];
  problems: Problem[];
}

/** The complete set of instances the running `containers` ask for on this node. */
export function desiredInstances(
  containers: readonly ContainerInfo[],
  options: DesiredOptions,
): Desired {
  const byId = new Map<string, InstanceSpec>();
  const problems: Problem[] = [];
  const sorted = [...containers].sort((a, b) => a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0);
  for (const c of sorted) {
    const r = containerInstances(c, options);
    problems.push(...r.problems);
    for (const i of r.instances) {
      if (byId.has(i.id)) {
        problems.push({
          container: containerName(c),
          containerId: c.Id,
          label: "SERVICE_ID",
          message: `instance id ${i.id} is already used by another container; not registered`,
        });
        continue;
      }
      byId.set(i.id, i);
    }
  }
  const instances = [...byId.values()].sort((a, b) => a.id < b.id ? -1 : 1);
  return { instances, problems };
}

interface PortEntry {
  /** Container port. */
  port: number;
  udp: boolean;
  address: string;
  /** Port registered: host port when published, container port otherwise. */
  registered: number;
}

/** The instances one container asks for, with the problems found in its labels. */
export function containerInstances(c: ContainerInfo, options: DesiredOptions): Desired {
  const name = containerName(c);
  const s = new ContainerSettings(name, c.Id, c);
  const none = (): Desired => ({ instances: [], problems: s.problems });

  if (s.bool("berth.enable", s.label("berth.enable")) === false) return none();
  if (isIgnoreValue(s.service("SERVICE_IGNORE"))) return none();

  // Ignored ports are dropped first: `-<port>` and per-port ids are for the ports that remain.
  const entries = selectPort(portEntries(c, options, s), s)
    .filter((e) => !isIgnoreValue(s.service(`SERVICE_${e.port}_IGNORE`)));
  const multi = entries.length > 1;
  const health = dockerStatus(c, options);
  const base = baseName(c, s, name);
  const common = commonFields(s);
  const serviceId = serviceIdOf(s);

  const instances: InstanceSpec[] = [];
  for (const e of entries) {
    const perPort = validName(s, `SERVICE_${e.port}_NAME`, s.service(`SERVICE_${e.port}_NAME`));
    const service = perPort ?? (multi ? `${base}-${e.port}` : base);
    const tags = splitList(
      s.label("berth.tags") ?? s.service(`SERVICE_${e.port}_TAGS`) ?? s.service("SERVICE_TAGS"),
    ).filter((t) => t.length <= NAME_BYTES_MAX);
    if (e.udp && !tags.includes("udp")) tags.push("udp");
    const id = serviceId === undefined
      ? instanceId(options.node, name, e.port, e.udp)
      : multi
      ? instanceId(options.node, serviceId, e.port, e.udp)
      : `${options.node}:${serviceId}`;
    const check = e.udp ? null : common.check;
    let status: CheckStatus = health.status;
    let output = health.output;
    if (check !== null && status === "passing") {
      status = "critical";
      output = AWAITING_CHECK_OUTPUT;
    }
    const edgeHost = options.edgeDomain
      ? `${service}.${options.edgeDomain.replace(/\.$/, "")}`.toLowerCase()
      : null;
    instances.push({
      id,
      service,
      node: options.node,
      address: e.address,
      port: e.registered,
      tags: tags.slice(0, TAGS_MAX),
      meta: metaOf(s, c, e),
      weight: common.weight,
      status,
      output,
      containerId: c.Id,
      httpHosts: e.udp ? [] : common.httpHosts ?? (edgeHost === null ? [] : [edgeHost]),
      httpPath: e.udp ? null : common.httpPath,
      tcpPort: e.udp ? null : common.tcpPort,
      check,
    });
  }
  return { instances, problems: s.problems };
}

function parsePortKey(key: string): { port: number; udp: boolean } | null {
  const m = /^(\d{1,5})\/(tcp|udp)$/.exec(key);
  if (m === null) return null;
  const port = Number(m[1]);
  if (port < 1 || port > 65535) return null;
  return { port, udp: m[2] === "udp" };
}

function isWildcard(ip: string | undefined): boolean {
  return ip === undefined || ip === "" || ip === "0.0.0.0" || ip === "::" || ip === "[::]";
}

function firstBinding(bindings: readonly PortBinding[]): PortBinding | undefined {
  const usable = bindings.filter((b) => /^\d{1,5}$/.test(b.HostPort ?? ""));
  return usable.find((b) => !(b.HostIp ?? "").includes(":")) ?? usable[0];
}

/** The container's IP on its own network (or its first network with an address). */
export function containerIp(c: ContainerInfo): string | undefined {
  const ns = c.NetworkSettings;
  if (ns?.IPAddress) return ns.IPAddress;
  const networks = ns?.Networks ?? {};
  const mode = c.HostConfig?.NetworkMode ?? "";
  const own = networks[mode]?.IPAddress;
  if (own) return own;
  for (const key of Object.keys(networks).sort()) {
    const ip = networks[key]?.IPAddress;
    if (ip) return ip;
  }
  return undefined;
}

function portEntries(c: ContainerInfo, o: DesiredOptions, s: ContainerSettings): PortEntry[] {
  const out: PortEntry[] = [];
  const hostNet = c.HostConfig?.NetworkMode === "host";
  const published = c.NetworkSettings?.Ports ?? {};
  if (hostNet || o.internal) {
    const keys = new Set([
      ...Object.keys(c.Config?.ExposedPorts ?? {}),
      ...Object.keys(published),
    ]);
    if (keys.size === 0) return out;
    const address = hostNet ? o.advertise : containerIp(c);
    if (address === undefined) {
      s.problem(
        "NetworkMode",
        `no container IP (network mode ${c.HostConfig?.NetworkMode ?? "unknown"}); ` +
          "not registered with --internal",
      );
      return out;
    }
    for (const key of keys) {
      const p = parsePortKey(key);
      if (p !== null) out.push({ ...p, address, registered: p.port });
    }
  } else {
    for (const [key, bindings] of Object.entries(published)) {
      const p = parsePortKey(key);
      const b = firstBinding(bindings ?? []);
      if (p === null || b === undefined) continue;
      const hostPort = Number(b.HostPort);
      if (hostPort < 1 || hostPort > 65535) continue;
      const address = isWildcard(b.HostIp) ? o.advertise : b.HostIp!;
      out.push({ ...p, address, registered: hostPort });
    }
  }
  out.sort((a, b) => a.port - b.port || Number(a.udp) - Number(b.udp));
  return out.slice(0, PORTS_PER_CONTAINER_MAX);
}

function selectPort(entries: PortEntry[], s: ContainerSettings): PortEntry[] {
  const v = s.label("berth.port");
  if (v === undefined || v.trim() === "") return entries;
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(v.trim());
  const port = m === null ? NaN : Number(m[1]);
  if (m === null || port < 1 || port > 65535) {
    s.problem(
      "berth.port",
      `berth.port=${JSON.stringify(v)}: expected a port like 8080 or 53/udp; using every port`,
    );
    return entries;
  }
  const proto = m[2];
  const kept = entries.filter((e) =>
    e.port === port && (proto === undefined || e.udp === (proto === "udp"))
  );
  if (kept.length === 0) {
    const have = entries.map((e) => `${e.port}/${e.udp ? "udp" : "tcp"}`).join(", ") || "none";
    s.problem(
      "berth.port",
      `berth.port=${v}: the container has no such port (has ${have}); using every port`,
    );
    return entries;
  }
  return kept;
}

function dockerStatus(
  c: ContainerInfo,
  o: DesiredOptions,
): { status: CheckStatus; output: string } {
  const st = c.State ?? {};
  if (o.stopping?.has(c.Id)) return { status: "critical", output: STOPPING_OUTPUT };
  if (st.Paused || st.Status === "paused") return { status: "critical", output: PAUSED_OUTPUT };
  if (st.Restarting || st.Status === "restarting") {
    return { status: "critical", output: RESTARTING_OUTPUT };
  }
  const h = st.Health?.Status;
  if (h === "starting") return { status: "critical", output: `${DOCKER_HEALTH_PREFIX}starting` };
  if (h === "unhealthy") {
    const last = st.Health?.Log?.at(-1)?.Output?.trim() ?? "";
    const detail = last === "" ? "" : ` (${last.slice(0, HEALTH_OUTPUT_CHARS_MAX)})`;
    return { status: "critical", output: `${DOCKER_HEALTH_PREFIX}unhealthy${detail}` };
  }
  return { status: "passing", output: "" };
}

function validName(s: ContainerSettings, key: string, v: string | undefined): string | undefined {
  if (v === undefined || v.trim() === "") return undefined;
  const t = v.trim();
  if (t.length > SERVICE_NAME_CHARS_MAX || !SERVICE_NAME_RE.test(t)) {
    s.problem(
      key,
      `${key}=${JSON.stringify(v)}: a service name is 1-${SERVICE_NAME_CHARS_MAX} letters, ` +
        "digits, - or _; using the default name",
    );
    return undefined;
  }
  return t;
}

/** Image reference → its base name: registry, path, tag and digest removed. */
export function imageBaseName(image: string): string {
  const noDigest = image.split("@")[0] ?? "";
  const last = noDigest.split("/").at(-1) ?? "";
  return last.split(":")[0] ?? "";
}

function sanitize(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "")
    .slice(0, SERVICE_NAME_CHARS_MAX);
}

function baseName(c: ContainerInfo, s: ContainerSettings, container: string): string {
  const labelled = validName(s, "berth.service", s.label("berth.service")) ??
    validName(s, "SERVICE_NAME", s.service("SERVICE_NAME")) ??
    validName(s, "com.docker.compose.service", s.label("com.docker.compose.service")) ??
    validName(s, "com.docker.swarm.service.name", s.label("com.docker.swarm.service.name"));
  if (labelled !== undefined) return labelled;
  const image = c.Config?.Image ?? "";
  const fromImage = image.startsWith("sha256:") ? "" : sanitize(imageBaseName(image));
  return fromImage || sanitize(container) || "container";
}

function serviceIdOf(s: ContainerSettings): string | undefined {
  const v = s.service("SERVICE_ID")?.trim();
  if (v === undefined || v === "") return undefined;
  if (!SERVICE_ID_RE.test(v) || v.length > SERVICE_NAME_CHARS_MAX * 2) {
    s.problem(
      "SERVICE_ID",
      `SERVICE_ID=${JSON.stringify(v)}: expected letters, digits, '.', '-' or '_'; ` +
        "using <container-name>:<port>",
    );
    return undefined;
  }
  return v;
}

interface Common {
  weight: number;
  httpHosts: string[] | null;
  httpPath: string | null;
  tcpPort: number | null;
  check: CheckDefinition | null;
}

function commonFields(s: ContainerSettings): Common {
  const weight = s.int("berth.weight", s.label("berth.weight"), 0, 65535) ?? 1;
  const tcpPort = s.int("berth.tcp.port", s.label("berth.tcp.port"), 1, 65535) ?? null;

  let httpHosts: string[] | null = null;
  const hostsRaw = s.label("berth.http.host");
  if (hostsRaw !== undefined) {
    const hosts = splitList(hostsRaw.toLowerCase());
    const bad = hosts.filter((h) => h.length > 253 || !HOST_RE.test(h));
    if (bad.length > 0) {
      s.problem(
        "berth.http.host",
        `berth.http.host: ${bad.map((h) => JSON.stringify(h)).join(", ")} ` +
          "is not a host name; ignored",
      );
    }
    httpHosts = hosts.filter((h) => !bad.includes(h)).slice(0, TAGS_MAX);
  }

  let httpPath: string | null = null;
  const pathRaw = s.label("berth.http.path")?.trim();
  if (pathRaw !== undefined && pathRaw !== "") {
    if (pathRaw.startsWith("/") && !/\s/.test(pathRaw)) httpPath = pathRaw;
    else {
      s.problem(
        "berth.http.path",
        `berth.http.path=${JSON.stringify(pathRaw)}: expected a path starting with /; ignored`,
      );
    }
  }

  return { weight, httpHosts, httpPath, tcpPort, check: checkOf(s) };
}

function checkOf(s: ContainerSettings): CheckDefinition | null {
  const httpKey = s.label("berth.check.http") !== undefined
    ? "berth.check.http"
    : "SERVICE_CHECK_HTTP";
  const httpRaw = (s.label("berth.check.http") ?? s.service("SERVICE_CHECK_HTTP"))?.trim();
  let http: string | undefined;
  if (httpRaw !== undefined && httpRaw !== "") {
    if (httpRaw.startsWith("/") && !/\s/.test(httpRaw)) http = httpRaw;
    else {
      s.problem(
        httpKey,
        `${httpKey}=${JSON.stringify(httpRaw)}: expected a path starting with /; no HTTP check`,
      );
    }
  }
  const tcpKey = s.label("berth.check.tcp") !== undefined ? "berth.check.tcp" : "SERVICE_CHECK_TCP";
  const tcp = s.bool(tcpKey, s.label("berth.check.tcp") ?? s.service("SERVICE_CHECK_TCP"));
  if (http === undefined && tcp !== true) return null;
  const ivKey = s.label("berth.check.interval") !== undefined
    ? "berth.check.interval"
    : "SERVICE_CHECK_INTERVAL";
  const toKey = s.label("berth.check.timeout") !== undefined
    ? "berth.check.timeout"
    : "SERVICE_CHECK_TIMEOUT";
  const intervalMs = s.duration(
    ivKey,
    s.label("berth.check.interval") ?? s.service("SERVICE_CHECK_INTERVAL"),
    100,
    86_400_000,
  ) ?? CHECK_INTERVAL_DEFAULT_MS;
  const timeoutMs = s.duration(
    toKey,
    s.label("berth.check.timeout") ?? s.service("SERVICE_CHECK_TIMEOUT"),
    10,
    3_600_000,
  ) ?? CHECK_TIMEOUT_DEFAULT_MS;
  const check: CheckDefinition = { intervalMs, timeoutMs };
  if (http !== undefined) check.http = http;
  if (tcp === true) check.tcp = true;
  return check;
}

function metaOf(s: ContainerSettings, c: ContainerInfo, e: PortEntry): Record<string, string> {
  const meta: Record<string, string> = {
    container: containerName(c),
    image: (c.Config?.Image ?? "").slice(0, NAME_BYTES_MAX),
    "container-port": `${e.port}/${e.udp ? "udp" : "tcp"}`,
  };
  // Registrator's attributes: SERVICE_<KEY>=v → meta key, SERVICE_<port>_<KEY> overrides.
  const perPort = `SERVICE_${e.port}_`;
  const keys = s.serviceKeys();
  const put = (k: string, full: string) => {
    if (REGISTRATOR_KEYS.has(k) || k.startsWith("CHECK_") || /^\d/.test(k) || k === "") return;
    if (Object.keys(meta).length >= TAGS_MAX) return;
    const v = s.service(full);
    if (v !== undefined && k.length <= NAME_BYTES_MAX && v.length <= NAME_BYTES_MAX) {
      meta[k.toLowerCase()] = v;
    }
  };
  for (const full of keys) put(full.slice("SERVICE_".length), full);
  for (const full of keys) if (full.startsWith(perPort)) put(full.slice(perPort.length), full);
  return meta;
}
