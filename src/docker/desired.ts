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
 * - Docker verdict (`instance.docker`, this watcher's health source): `stopping` for a container
 *   that got a stop signal, else `paused`, `restarting`, the HEALTHCHECK state (`starting`,
 *   `unhealthy` with its last output, `healthy`), or `running` without a HEALTHCHECK. The check
 *   result is not the watcher's: specs carry none, and the store keeps the health checker's
 *   across re-registrations (src/store/health.ts derives the instance's health).
 *
 * @module
 */
import type { CheckDefinition, DockerVerdict, InstanceSpec } from "../store/mod.ts";
import {
  CommandError,
  HSTS_META_KEY,
  HTTP_PROTO_META_KEY,
  type HttpProto,
  instanceId,
  LB_META_KEY,
  type LbPolicy,
  NAME_BYTES_MAX,
  REDIRECT_META_KEY,
  type RedirectMode,
  type RouteKeyIndex,
  rules,
  SERVICE_NAME_CHARS_MAX,
  TLS_META_KEY,
  type TlsMode,
} from "../store/mod.ts";
import { intOrText } from "../lib/text.ts";
import { type ContainerInfo, containerName, type PortBinding } from "./container.ts";
import {
  attributes,
  ContainerSettings,
  decodeLabel,
  labelPort,
  LABELS,
  type Problem,
  reportUnknownLabels,
} from "./labels.ts";
import { routeLabels } from "./route_labels.ts";

/** Longest piece of a failing HEALTHCHECK's output kept in the Docker verdict. */
export const HEALTH_OUTPUT_CHARS_MAX = 200;
/** Most ports registered for one container. */
export const PORTS_PER_CONTAINER_MAX = 256;

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
  /** The route settings read from labels (default: every one, ROUTE_KEYS); tests give others. */
  routeKeys?: RouteKeyIndex;
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

  if (!decodeLabel(s, LABELS.enable) || decodeLabel(s, LABELS.ignore)) return none();
  reportUnknownLabels(s, options.routeKeys);

  // Ignored ports are dropped first: `-<port>` and per-port ids are for the ports that remain.
  const all = portEntries(c, options, s);
  reportPortLabels(s, all);
  const entries = selectPort(all, s).filter((e) => !decodeLabel(s, LABELS.portIgnore, e.port));
  const multi = entries.length > 1;
  const docker = dockerVerdict(c, options);
  const base = baseName(c, s, name);
  const common = commonFields(s, options);
  const serviceId = decodeLabel(s, LABELS.serviceId);

  const instances: InstanceSpec[] = [];
  for (const e of entries) {
    const service = decodeLabel(s, LABELS.portService, e.port) ??
      (multi ? `${base}-${e.port}` : base);
    const tags = [...decodeLabel(s, LABELS.tags, e.port)];
    if (e.udp && !tags.includes("udp")) tags.push("udp");
    const id = serviceId === null
      ? instanceId(options.node, name, e.port, e.udp)
      : multi
      ? instanceId(options.node, serviceId, e.port, e.udp)
      : `${options.node}:${serviceId}`;
    const check = e.udp ? null : common.check;
    const edgeHost = options.edgeDomain
      ? `${service}.${options.edgeDomain.replace(/\.$/, "")}`.toLowerCase()
      : null;
    const http = e.udp ? null : portHttp(s, e.port, common);
    instances.push({
      id,
      service,
      node: options.node,
      address: e.address,
      port: e.registered,
      tags,
      meta: metaOf(s, c, e, http === null ? common : { ...common, tls: http.tls }),
      weight: common.weight,
      containerId: c.Id,
      httpHosts: http === null ? [] : http.hosts ?? (edgeHost === null ? [] : [edgeHost]),
      httpPath: http?.path ?? null,
      tcpPort: e.udp ? null : common.tcpPort,
      check,
      docker,
      checkResult: null,
    });
  }
  return { instances, problems: s.problems };
}

/** The HTTP routes of one TCP port: its `berth.http.<port>.*` labels, else the container's. */
function portHttp(
  s: ContainerSettings,
  port: number,
  common: Common,
): { hosts: string[] | null; path: string | null; tls: TlsMode | null } {
  return {
    hosts: decodeLabel(s, LABELS.portHttpHosts, port) ?? common.httpHosts,
    path: decodeLabel(s, LABELS.portHttpPath, port) ?? common.httpPath,
    tls: decodeLabel(s, LABELS.portTls, port) ?? common.tls,
  };
}

/** A per-port `berth.*` label naming a port the container has no TCP entry for: a Problem. */
function reportPortLabels(s: ContainerSettings, all: readonly PortEntry[]): void {
  const tcp = new Set(all.filter((e) => !e.udp).map((e) => e.port));
  for (const key of s.labelKeys()) {
    const port = labelPort(key);
    if (port === null || tcp.has(port)) continue;
    const have = [...tcp].join(", ") || "none";
    s.problem(key, `${key}: the container has no TCP port ${port} (has ${have}); ignored`);
  }
}

/** A port number from the engine's data; null when the store's rule refuses it. */
function enginePort(text: string): number | null {
  try {
    return rules.listenPort(intOrText(text), "port");
  } catch (e) {
    if (e instanceof CommandError) return null;
    throw e;
  }
}

function parsePortKey(key: string): { port: number; udp: boolean } | null {
  const m = /^(\d{1,5})\/(tcp|udp)$/.exec(key);
  const port = m === null ? null : enginePort(m[1]!);
  return port === null ? null : { port, udp: m![2] === "udp" };
}

function isWildcard(ip: string | undefined): boolean {
  return ip === undefined || ip === "" || ip === "0.0.0.0" || ip === "::" || ip === "[::]";
}

function firstBinding(bindings: readonly PortBinding[]): PortBinding | undefined {
  const usable = bindings.filter((b) => /^\d{1,5}$/.test(b.HostPort ?? ""));
  return usable.find((b) => !(b.HostIp ?? "").includes(":")) ?? usable[0];
}

/** The container's IP on its own network (or its first network with an address). */
function containerIp(c: ContainerInfo): string | undefined {
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
      const hostPort = enginePort(b.HostPort ?? "");
      if (hostPort === null) continue;
      const address = isWildcard(b.HostIp) ? o.advertise : b.HostIp!;
      out.push({ ...p, address, registered: hostPort });
    }
  }
  out.sort((a, b) => a.port - b.port || Number(a.udp) - Number(b.udp));
  return out.slice(0, PORTS_PER_CONTAINER_MAX);
}

function selectPort(entries: PortEntry[], s: ContainerSettings): PortEntry[] {
  const choice = decodeLabel(s, LABELS.port);
  if (choice === null) return entries;
  const kept = entries.filter((e) =>
    e.port === choice.port && (choice.proto === null || e.udp === (choice.proto === "udp"))
  );
  if (kept.length === 0) {
    const have = entries.map((e) => `${e.port}/${e.udp ? "udp" : "tcp"}`).join(", ") || "none";
    const want = `${choice.port}${choice.proto === null ? "" : `/${choice.proto}`}`;
    s.problem(
      "berth.port",
      `berth.port=${want}: the container has no such port (has ${have}); ${LABELS.port.onBad}`,
    );
    return entries;
  }
  return kept;
}

function dockerVerdict(c: ContainerInfo, o: DesiredOptions): DockerVerdict {
  const st = c.State ?? {};
  const verdict = (state: DockerVerdict["state"], detail = ""): DockerVerdict => ({
    state,
    detail,
  });
  if (o.stopping?.has(c.Id)) return verdict("stopping");
  if (st.Paused || st.Status === "paused") return verdict("paused");
  if (st.Restarting || st.Status === "restarting") return verdict("restarting");
  const h = st.Health?.Status;
  if (h === "starting") return verdict("starting");
  if (h === "unhealthy") {
    const last = st.Health?.Log?.at(-1)?.Output?.trim() ?? "";
    return verdict("unhealthy", last.slice(0, HEALTH_OUTPUT_CHARS_MAX));
  }
  return verdict(h === "healthy" ? "healthy" : "running");
}

/** Image reference → its base name: registry, path, tag and digest removed. */
export function imageBaseName(image: string): string {
  const noDigest = image.split("@")[0] ?? "";
  const last = noDigest.split("/").at(-1) ?? "";
  return last.split(":")[0] ?? "";
}

/** Any name → a service name: lower case, runs of other characters → `-`. */
function sanitize(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "")
    .slice(0, SERVICE_NAME_CHARS_MAX);
}

/** The service name before any `-<port>`: the label, else compose, swarm, image, container. */
function baseName(c: ContainerInfo, s: ContainerSettings, container: string): string {
  const labelled = decodeLabel(s, LABELS.service);
  if (labelled !== null) return labelled;
  for (const key of ["com.docker.compose.service", "com.docker.swarm.service.name"]) {
    const v = sanitize(s.label(key) ?? "");
    if (v !== "") return v;
  }
  const image = c.Config?.Image ?? "";
  const fromImage = image.startsWith("sha256:") ? "" : sanitize(imageBaseName(image));
  return fromImage || sanitize(container) || "container";
}

interface Common {
  weight: number;
  httpHosts: string[] | null;
  httpPath: string | null;
  tcpPort: number | null;
  lb: LbPolicy | null;
  tls: TlsMode | null;
  proto: HttpProto | null;
  redirect: RedirectMode | null;
  hsts: string | null;
  check: CheckDefinition | null;
  /** Route settings from labels, canonical. */
  route: Record<string, string>;
}

function commonFields(s: ContainerSettings, o: DesiredOptions): Common {
  return {
    weight: decodeLabel(s, LABELS.weight),
    httpHosts: decodeLabel(s, LABELS.httpHosts),
    httpPath: decodeLabel(s, LABELS.httpPath),
    tcpPort: decodeLabel(s, LABELS.tcpPort),
    lb: decodeLabel(s, LABELS.lb),
    tls: decodeLabel(s, LABELS.tls),
    proto: decodeLabel(s, LABELS.httpProto),
    redirect: decodeLabel(s, LABELS.httpRedirect),
    hsts: decodeLabel(s, LABELS.hsts),
    check: checkOf(s),
    route: routeLabels(s, o.routeKeys),
  };
}

function checkOf(s: ContainerSettings): CheckDefinition | null {
  const http = decodeLabel(s, LABELS.checkHttp);
  const tcp = decodeLabel(s, LABELS.checkTcp);
  const grpc = decodeLabel(s, LABELS.checkGrpc);
  if (http === null && !tcp && !grpc) return null;
  const check: CheckDefinition = {
    intervalMs: decodeLabel(s, LABELS.checkInterval),
    timeoutMs: decodeLabel(s, LABELS.checkTimeout),
  };
  if (http !== null) check.http = http;
  if (tcp) check.tcp = true;
  if (grpc) check.grpc = true;
  return check;
}

function metaOf(
  s: ContainerSettings,
  c: ContainerInfo,
  e: PortEntry,
  { lb, tls, proto, redirect, hsts, route }: Common,
): Record<string, string> {
  return {
    ...attributes(s, e.port),
    ...route,
    container: containerName(c),
    image: (c.Config?.Image ?? "").slice(0, NAME_BYTES_MAX),
    "container-port": `${e.port}/${e.udp ? "udp" : "tcp"}`,
    ...(lb === null ? {} : { [LB_META_KEY]: lb }),
    ...(tls === null ? {} : { [TLS_META_KEY]: tls }),
    ...(proto === null ? {} : { [HTTP_PROTO_META_KEY]: proto }),
    ...(redirect === null ? {} : { [REDIRECT_META_KEY]: redirect }),
    ...(hsts === null ? {} : { [HSTS_META_KEY]: hsts }),
  };
}
