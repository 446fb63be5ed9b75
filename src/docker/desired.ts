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
 * - ignored: `berth.enable=false` (with `exposeByDefault` false: anything but
 *   `berth.enable=true`), `SERVICE_IGNORE`, per port `SERVICE_<port>_IGNORE`; containers with no
 *   usable port. `berth.port=N` (or `N/udp`) keeps only that container port (ports.ts). Each
 *   container or port left out is listed in `skipped` with the reason.
 * - HTTP routes: `berth.http.<port>.host/.path/.tls` for one TCP port, else the container's
 *   `berth.http.host`, `berth.http.path`, `berth.tls`; route settings (src/store/route_keys.ts)
 *   go into meta as their canonical text (route_labels.ts).
 * - service name: `SERVICE_<port>_NAME`, else the base name (`berth.service`, `SERVICE_NAME`,
 *   compose service, swarm service, image base name) with `-<port>` appended when several ports
 *   remain after `berth.port` and the per-port ignores.
 * - id: `<node>:<container-name>:<port>[:udp]`; with `SERVICE_ID`, `<node>:<SERVICE_ID>` for a
 *   container with one remaining port and `<node>:<SERVICE_ID>:<port>[:udp]` otherwise (ids always start
 *   with the node, which owns them).
 * - UDP ports get the `:udp` id suffix and the tag `udp`; HTTP routing applies to TCP ports
 *   only; `berth.check.http/tcp/grpc` checks the TCP ports' instances, `berth.check.udp` the UDP
 *   ports' (each with the shared interval and timeout); a bad `berth.check.udp.expect` fails
 *   closed: the UDP check gets `failClosed` (critical at every run) instead of passing on silence.
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
  HSTS_META_KEY,
  HTTP_PROTO_META_KEY,
  type HttpProto,
  instanceId,
  LB_META_KEY,
  type LbPolicy,
  NAME_BYTES_MAX,
  type RouteKeyIndex,
  SERVICE_NAME_CHARS_MAX,
  TAGS_MAX,
  TLS_META_KEY,
  type TlsMode,
} from "../store/mod.ts";
import { parseBool } from "../lib/text.ts";
import { controlsEscaped } from "../lib/error_text.ts";
import { type ContainerInfo, containerName } from "./container.ts";
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
import { portEntries, type PortEntry, portName, selectPort } from "./ports.ts";

/** A UDP check's output when its `berth.check.udp.expect` was bad (fails closed). */
export const UDP_EXPECT_BAD =
  "berth.check.udp.expect is not valid (the container's problem says why); fails until fixed";

/** Longest piece of a failing HEALTHCHECK's output kept in the Docker verdict. */
export const HEALTH_OUTPUT_CHARS_MAX = 200;

export interface DesiredOptions {
  /** This node's name; every id starts with it. */
  node: string;
  /** Address registered for wildcard bindings and host networking. */
  advertise: string;
  /** Register container IP and container port instead of published ports. */
  internal: boolean;
  /** False: only containers labelled `berth.enable=true` or with `SERVICE_NAME` (ports: `SERVICE_<port>_NAME`). Default true. */
  exposeByDefault?: boolean;
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
  /** Containers and ports not registered, each with why (for `berth explain`). */
  skipped: Skip[];
}

/** A container, or one of its ports (`port 80/tcp: …`), that is not registered, and why. */
export interface Skip {
  /** Container name. */
  container: string;
  containerId: string;
  reason: string;
}

/** The complete set of instances the running `containers` ask for on this node. */
export function desiredInstances(
  containers: readonly ContainerInfo[],
  options: DesiredOptions,
): Desired {
  const byId = new Map<string, InstanceSpec>();
  const problems: Problem[] = [];
  const skipped: Skip[] = [];
  const sorted = [...containers].sort((a, b) => a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0);
  for (const c of sorted) {
    const r = containerInstances(c, options);
    problems.push(...r.problems);
    skipped.push(...r.skipped);
    for (const i of r.instances) {
      const held = byId.get(i.id);
      if (held !== undefined) {
        const container = containerName(c);
        const message = `instance id ${i.id} is already used by another container; not registered`;
        problems.push({ container, containerId: c.Id, label: "SERVICE_ID", message });
        skipped.push({
          container,
          containerId: c.Id,
          reason: `port ${i.meta["container-port"]}: instance id ${i.id} is already used by ` +
            `container ${held.meta.container}`,
        });
        continue;
      }
      byId.set(i.id, i);
    }
  }
  const instances = [...byId.values()].sort((a, b) => a.id < b.id ? -1 : 1);
  return { instances, problems, skipped };
}

/** The instances one container asks for, with the problems found in its labels. */
export function containerInstances(c: ContainerInfo, options: DesiredOptions): Desired {
  const name = containerName(c);
  const s = new ContainerSettings(name, c.Id, c);
  const skipped: Skip[] = [];
  const skip = (reason: string) => skipped.push({ container: name, containerId: c.Id, reason });
  const none = (): Desired => ({ instances: [], problems: s.problems, skipped });

  const ignored = ignoreReason(s, options.exposeByDefault ?? true);
  if (ignored !== null && ignored !== NAMED_PORTS) {
    skip(ignored);
    return none();
  }
  reportUnknownLabels(s, options.routeKeys);

  // Ignored ports are dropped first: `-<port>` and per-port ids are for the ports that remain.
  const all = portEntries(c, options, s, skip);
  reportPortLabels(s, all, c);
  const entries = selectPort(all, s, skip).filter((e) => {
    if (ignored === NAMED_PORTS && !hasValue(s, `SERVICE_${e.port}_NAME`)) {
      skip(
        `port ${portName(e)}: neither berth.enable=true nor SERVICE_NAME nor ` +
          `SERVICE_${e.port}_NAME (berth runs with --expose-by-default=false)`,
      );
      return false;
    }
    if (!decodeLabel(s, LABELS.portIgnore, e.port)) return true;
    const key = `SERVICE_${e.port}_IGNORE`;
    skip(`port ${portName(e)}: ${key}=${controlsEscaped(s.get(key)!.trim())}`);
    return false;
  });
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
    const check = e.udp ? common.udpCheck : common.check;
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
  if (common.check !== null && entries.length > 0 && entries.every((e) => e.udp)) {
    // berth.check.http/tcp/grpc probe a TCP port; a container with UDP ports only has none.
    const check = common.check;
    const key = check.http
      ? "berth.check.http"
      : check.grpc
      ? "berth.check.grpc"
      : "berth.check.tcp";
    s.problem(
      key,
      `${key}: the container has no TCP port to check (UDP ports take berth.check.udp); ignored`,
    );
  }
  if (common.udpCheck !== null && entries.length > 0 && !entries.some((e) => e.udp)) {
    s.problem(
      "berth.check.udp",
      "berth.check.udp: the container has no UDP port to check (TCP ports take " +
        "berth.check.tcp, .http or .grpc); ignored",
    );
  }
  return { instances, problems: s.problems, skipped };
}

/**
 * Why the whole container is not registered (`berth.enable=false`, not enabled under
 * `--expose-by-default=false`, `SERVICE_IGNORE`), or null; NAMED_PORTS when only its ports with
 * a `SERVICE_<port>_NAME` are. A bad `berth.enable` value is a Problem and counts as absent.
 *
 * Under `--expose-by-default=false` a container is taken when labelled `berth.enable=true`
 * (Traefik's `exposedByDefault=false`) or, as Registrator's `-explicit`, when it sets
 * `SERVICE_NAME` (label or env: all its ports), else only the ports with `SERVICE_<port>_NAME`.
 * `berth.enable=false` leaves it out in either case.
 */
function ignoreReason(s: ContainerSettings, exposeByDefault: boolean): string | null {
  const enable = decodeLabel(s, exposeByDefault ? LABELS.enable : ENABLE_OPT_IN);
  if (!enable) {
    const raw = s.label("berth.enable")?.trim() ?? "";
    if (parseBool(raw) === false) return `berth.enable=${raw}`;
    if (!hasValue(s, "SERVICE_NAME")) {
      if (s.serviceKeys().some((k) => /^SERVICE_\d+_NAME$/.test(k) && hasValue(s, k))) {
        return ignoredOr(s) ?? NAMED_PORTS;
      }
      return "not labelled berth.enable=true and no SERVICE_NAME (berth runs with " +
        "--expose-by-default=false)";
    }
  }
  return ignoredOr(s);
}

/** `SERVICE_IGNORE=…` when it is set, else null. */
function ignoredOr(s: ContainerSettings): string | null {
  if (!decodeLabel(s, LABELS.ignore)) return null;
  // Any value ignores: shown as set, a control character escaped (explain prints it).
  return `SERVICE_IGNORE=${controlsEscaped(s.get("SERVICE_IGNORE")!.trim())}`;
}

/** ignoreReason's answer when only ports named by `SERVICE_<port>_NAME` are taken. */
const NAMED_PORTS = "named ports only";

/** Whether label or env `key` is set to something other than blanks. */
function hasValue(s: ContainerSettings, key: string): boolean {
  return (s.get(key)?.trim() ?? "") !== "";
}

/** `berth.enable` under `--expose-by-default=false`: absent or bad leaves the container out. */
const ENABLE_OPT_IN = { ...LABELS.enable, default: false, onBad: "not registering it" };

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

/**
 * A per-port `berth.*` label naming a port the container has no TCP entry for: a Problem, which
 * says "not published" for a port the container exposes without publishing it.
 */
function reportPortLabels(
  s: ContainerSettings,
  all: readonly PortEntry[],
  c: ContainerInfo,
): void {
  const tcp = new Set(all.filter((e) => !e.udp).map((e) => e.port));
  for (const key of s.labelKeys()) {
    const port = labelPort(key);
    if (port === null || tcp.has(port)) continue;
    const name = `${port}/tcp`;
    if (name in (c.Config?.ExposedPorts ?? {}) || name in (c.NetworkSettings?.Ports ?? {})) {
      s.problem(
        key,
        `${key}: port ${name} is not published (publish it with -p, or run berth with ` +
          "--internal); ignored",
      );
      continue;
    }
    const have = [...tcp].join(", ") || "none";
    s.problem(key, `${key}: the container has no TCP port ${port} (has ${have}); ignored`);
  }
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
  hsts: string | null;
  /** The check of the TCP ports' instances (`berth.check.http/tcp/grpc`). */
  check: CheckDefinition | null;
  /** The check of the UDP ports' instances (`berth.check.udp`). */
  udpCheck: CheckDefinition | null;
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
    hsts: decodeLabel(s, LABELS.hsts),
    ...checksOf(s),
    route: routeLabels(s, o.routeKeys),
  };
}

/** The check labels: one definition for the TCP ports, one for the UDP ports (shared timing). */
function checksOf(s: ContainerSettings): Pick<Common, "check" | "udpCheck"> {
  const http = decodeLabel(s, LABELS.checkHttp);
  const tcp = decodeLabel(s, LABELS.checkTcp);
  const grpc = decodeLabel(s, LABELS.checkGrpc);
  const udp = decodeLabel(s, LABELS.checkUdp);
  const expect = decodeLabel(s, LABELS.checkUdpExpect);
  // A bad expected text (its Problem is logged) must not leave a check that passes on silence.
  const expectBad = expect === null && s.written(LABELS.checkUdpExpect.keys[0]!);
  if (expect !== null && udp === null) {
    s.problem(
      "berth.check.udp.expect",
      "berth.check.udp.expect: no berth.check.udp to go with (berth.check.udp=PAYLOAD sends " +
        "the datagram); ignored",
    );
  }
  const tcpSide = http !== null || tcp || grpc;
  if (!tcpSide && udp === null) return { check: null, udpCheck: null };
  const timing = {
    intervalMs: decodeLabel(s, LABELS.checkInterval),
    timeoutMs: decodeLabel(s, LABELS.checkTimeout),
  };
  let check: CheckDefinition | null = null;
  if (tcpSide) {
    check = { ...timing };
    if (http !== null) check.http = http;
    if (tcp) check.tcp = true;
    if (grpc) check.grpc = true;
  }
  const udpCheck: CheckDefinition | null = udp === null ? null : {
    udp,
    ...(expect === null ? {} : { udpExpect: expect }),
    ...(expectBad ? { failClosed: UDP_EXPECT_BAD } : {}),
    ...timing,
  };
  return { check, udpCheck };
}

function metaOf(
  s: ContainerSettings,
  c: ContainerInfo,
  e: PortEntry,
  { lb, tls, proto, hsts, route }: Common,
): Record<string, string> {
  const own: Record<string, string> = {
    ...route,
    container: containerName(c),
    image: (c.Config?.Image ?? "").slice(0, NAME_BYTES_MAX),
    "container-port": `${e.port}/${e.udp ? "udp" : "tcp"}`,
    ...(lb === null ? {} : { [LB_META_KEY]: lb }),
    ...(tls === null ? {} : { [TLS_META_KEY]: tls }),
    ...(proto === null ? {} : { [HTTP_PROTO_META_KEY]: proto }),
    ...(hsts === null ? {} : { [HSTS_META_KEY]: hsts }),
  };
  // The store keeps at most TAGS_MAX meta pairs and refuses a bigger instance (and the batch of
  // registrations holding it): attributes give way to berth's own keys.
  const attrs = attributes(s, e.port);
  const fit = TAGS_MAX - Object.keys(own).length;
  const extra = Object.keys(attrs).filter((k) => !(k in own)).length;
  if (extra > fit) {
    s.problem(
      "SERVICE_*",
      `${extra} attributes for port ${portName(e)}, but only ${fit} fit beside berth's own ` +
        `meta (at most ${TAGS_MAX}); ${LABELS.attributes.onBad}`,
    );
    return own;
  }
  return { ...attrs, ...own };
}
