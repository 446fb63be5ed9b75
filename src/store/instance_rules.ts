/**
 * The rules of an instance's fields (service names, ports, weights, tags, meta, HTTP hosts and
 * paths, TCP ports, check timing, balancing policy, the edge's meta keys) and validateInstance,
 * which applies them to a whole spec. validate.ts checks commands with them, and re-exports them.
 *
 * The field rules are exported as `rules` for the Docker watcher and the API, which call them to
 * give an early error in their own words (a label, a body field); they never restate a rule.
 * A rule takes the value and the path to name in its error, and returns the clean value.
 *
 * @module
 */
import {
  CHECK_KINDS,
  CHECK_STATUSES,
  type CheckDefinition,
  type CheckResult,
  type CheckStatus,
  DOCKER_STATES,
  type DockerState,
  type DockerVerdict,
  type InstanceSpec,
  type RegisteredCheck,
} from "./types.ts";
import { isLegacyInstance, legacyInstance } from "./migrate.ts";
import { isServiceName, SERVICE_NAME_EXPECTED } from "../lib/service_name.ts";
import { LB_META_KEY, LB_POLICIES, type LbPolicy, parseLbPolicy } from "./lb_policy.ts";
import { parseTlsMode, TLS_META_KEY, TLS_MODES, type TlsMode } from "./tls_meta.ts";
import { HTTP_PROTO_META_KEY, HTTP_PROTOS, type HttpProto, parseHttpProto } from "./http_proto.ts";
import { HSTS_EXPECTED, HSTS_META_KEY, parseHsts } from "./edge_meta.ts";
import { canonicalRouteMeta } from "./route_keys.ts";
import { CommandError, durationMs, fail, int, obj, str } from "./rule_basics.ts";
import { unescapeBytes } from "../lib/escaped_bytes.ts";

/** Most tags, meta pairs or HTTP hosts on one instance. */
export const TAGS_MAX = 64;
/** Longest HTTP host name. */
export const HOST_CHARS_MAX = 253;
/** Longest id part (`SERVICE_ID`) put between the node and the port of an instance id. */
export const ID_PART_CHARS_MAX = 126;
/** Bounds of an active check's interval and timeout. */
export const CHECK_INTERVAL_MIN_MS = 100;
export const CHECK_INTERVAL_MAX_MS = 86_400_000;
export const CHECK_TIMEOUT_MIN_MS = 10;
export const CHECK_TIMEOUT_MAX_MS = 3_600_000;

/** Longest a TTL check's result holds, and DeregisterCriticalServiceAfter. */
export const CHECK_TTL_MAX_MS = 86_400_000;
/** Most registered checks on one instance or one node. */
export const CHECKS_PER_TARGET_MAX = 64;
/** Most bytes of a UDP check's datagram or of its expected reply text. */
export const UDP_CHECK_BYTES_MAX = 512;
/** Longest check output or notes kept. */
export const CHECK_OUTPUT_CHARS_MAX = 4096;

const ID_PART_RE = /^[A-Za-z0-9_.-]+$/;
const HOST_RE = /^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;
// deno-lint-ignore no-control-regex
const URL_PATH_RE = /^\/[^\s\x00-\x1f\x7f]*$/;

function strList(x: unknown, path: string): string[] {
  if (!Array.isArray(x)) fail(path, "a list of strings", x);
  if (x.length > TAGS_MAX) fail(path, `at most ${TAGS_MAX} items`, "list");
  return x.map((v, i) => str(v, `${path}[${i}]`));
}

/** A map of strings (node meta, instance meta): at most TAGS_MAX entries. */
export function strMap(x: unknown, path: string): Record<string, string> {
  const o = obj(x, path);
  const keys = Object.keys(o);
  if (keys.length > TAGS_MAX) fail(path, `at most ${TAGS_MAX} entries`, "map");
  const out: Record<string, string> = {};
  for (const k of keys) out[str(k, `${path} key`)] = str(o[k], `${path}.${k}`, { empty: true });
  return out;
}

/** The rule of each instance field, for validateInstance and for callers' early errors. */
export const rules = {
  /** 1-63 letters, digits, `-` or `_`, not starting with `-` (one DNS label). */
  serviceName(x: unknown, path: string): string {
    const v = str(x, path);
    if (!isServiceName(v)) {
      fail(path, SERVICE_NAME_EXPECTED, v);
    }
    return v;
  },
  /** What `SERVICE_ID` puts in an instance id: letters, digits, `.`, `-`, `_`. */
  idPart(x: unknown, path: string): string {
    const v = str(x, path);
    if (v.length > ID_PART_CHARS_MAX || !ID_PART_RE.test(v)) {
      fail(path, `at most ${ID_PART_CHARS_MAX} letters, digits, '.', '-' or '_'`, v);
    }
    return v;
  },
  /** An instance's port; 0 for a registration without one. */
  port(x: unknown, path: string): number {
    return int(x, path, 0, 65535);
  },
  /** A port something listens on or is chosen by: 1..65535. */
  listenPort(x: unknown, path: string): number {
    return int(x, path, 1, 65535);
  },
  /** Balancing and SRV weight; 0 keeps the instance out of the proxy. */
  weight(x: unknown, path: string): number {
    return int(x, path, 0, 65535);
  },
  tags(x: unknown, path: string): string[] {
    return strList(x, path);
  },
  /**
   * String pairs; `berth.lb` must name a policy, `berth.tls` a mode and `berth.http.proto` a
   * protocol, each stored by its canonical name; every route setting (route_keys.ts) is parsed
   * and stored as its canonical text.
   */
  meta(x: unknown, path: string): Record<string, string> {
    const m = strMap(x, path);
    canonicalRouteMeta(m, path);
    if (m[LB_META_KEY] !== undefined) {
      m[LB_META_KEY] = rules.lbPolicy(m[LB_META_KEY], `${path}.${LB_META_KEY}`);
    }
    if (m[TLS_META_KEY] !== undefined) {
      m[TLS_META_KEY] = rules.tlsMode(m[TLS_META_KEY], `${path}.${TLS_META_KEY}`);
    }
    if (m[HTTP_PROTO_META_KEY] !== undefined) {
      m[HTTP_PROTO_META_KEY] = rules.httpProto(
        m[HTTP_PROTO_META_KEY],
        `${path}.${HTTP_PROTO_META_KEY}`,
      );
    }
    if (m[HSTS_META_KEY] !== undefined) {
      m[HSTS_META_KEY] = rules.hsts(m[HSTS_META_KEY], `${path}.${HSTS_META_KEY}`);
    }
    return m;
  },
  /** `berth.http.hsts`: the Strict-Transport-Security value, canonical. */
  hsts(x: unknown, path: string): string {
    const h = typeof x === "string" ? parseHsts(x) : null;
    if (h === null) fail(path, HSTS_EXPECTED, x);
    return h;
  },
  /** `berth.tls`: how the service gets its certificates (`acme`). */
  tlsMode(x: unknown, path: string): TlsMode {
    const t = typeof x === "string" ? parseTlsMode(x) : null;
    if (t === null) fail(path, TLS_MODES.join("|"), x);
    return t;
  },
  /** The protocol the proxy speaks to the instances: http1, h2c or grpc. */
  httpProto(x: unknown, path: string): HttpProto {
    const p = typeof x === "string" ? parseHttpProto(x) : null;
    if (p === null) fail(path, HTTP_PROTOS.join("|"), x);
    return p;
  },
  lbPolicy(x: unknown, path: string): LbPolicy {
    const p = typeof x === "string" ? parseLbPolicy(x) : null;
    if (p === null) fail(path, LB_POLICIES.join("|"), x);
    return p;
  },
  /** Host names (lower-cased), `*.` allowed in front. */
  httpHosts(x: unknown, path: string): string[] {
    return strList(x, path).map((h, i) => {
      const v = h.toLowerCase();
      if (v.length > HOST_CHARS_MAX || !HOST_RE.test(v)) fail(`${path}[${i}]`, "a host name", h);
      return v;
    });
  },
  /** An HTTP path: starts with `/`, no spaces or control characters. */
  urlPath(x: unknown, path: string): string {
    const v = str(x, path);
    if (!URL_PATH_RE.test(v)) fail(path, "a path starting with /", v);
    return v;
  },
  checkIntervalMs(x: unknown, path: string): number {
    return durationMs(x, path, CHECK_INTERVAL_MIN_MS, CHECK_INTERVAL_MAX_MS);
  },
  checkTimeoutMs(x: unknown, path: string): number {
    return durationMs(x, path, CHECK_TIMEOUT_MIN_MS, CHECK_TIMEOUT_MAX_MS);
  },
  status(x: unknown, path: string): CheckStatus {
    if (!CHECK_STATUSES.includes(x as CheckStatus)) fail(path, CHECK_STATUSES.join("|"), x);
    return x as CheckStatus;
  },
  /** A container's state as the Docker watcher reports it. */
  dockerState(x: unknown, path: string): DockerState {
    if (!DOCKER_STATES.includes(x as DockerState)) fail(path, DOCKER_STATES.join("|"), x);
    return x as DockerState;
  },
  /** A check's output or notes: any text up to CHECK_OUTPUT_CHARS_MAX characters. */
  checkOutput(x: unknown, path: string): string {
    if (typeof x !== "string") fail(path, "a string", x);
    if (x.length > CHECK_OUTPUT_CHARS_MAX) {
      fail(path, `at most ${CHECK_OUTPUT_CHARS_MAX} characters`, x);
    }
    return x;
  },
  /** An HTTP check's URL: absolute http:// or https:// with a host. */
  checkUrl(x: unknown, path: string): string {
    const v = str(x, path);
    let u: URL | null = null;
    try {
      u = new URL(v);
    } catch {
      // reported below
    }
    if (u === null || (u.protocol !== "http:" && u.protocol !== "https:") || u.hostname === "") {
      fail(path, "an http:// or https:// URL", v);
    }
    return v;
  },
  /** A TCP check's `host:port` (IPv6 in brackets). */
  checkHostPort(x: unknown, path: string): string {
    const v = str(x, path);
    const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):(\d{1,5})$/.exec(v);
    if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      fail(path, "host:port with a port in [1, 65535]", v);
    }
    return v;
  },
  /**
   * A UDP check's datagram or expected reply: text with `\xHH`, `\n`, `\r`, `\t`, `\0`, `\\`
   * escapes (src/lib/escaped_bytes.ts) for at most UDP_CHECK_BYTES_MAX bytes; "" allowed.
   */
  udpCheckBytes(x: unknown, path: string): string {
    if (typeof x !== "string") fail(path, "a string", x);
    let n: number;
    try {
      n = unescapeBytes(x).length;
    } catch (e) {
      fail(path, `valid escapes: ${(e as Error).message}`, x);
    }
    if (n > UDP_CHECK_BYTES_MAX) fail(path, `at most ${UDP_CHECK_BYTES_MAX} bytes`, x);
    return x;
  },
  /** A gRPC check's `host:port`, or `host:port/service` (the gRPC service asked about). */
  checkGrpcTarget(x: unknown, path: string): string {
    const v = str(x, path);
    const slash = v.indexOf("/");
    const service = slash < 0 ? "" : v.slice(slash + 1);
    if (slash >= 0 && !/^[A-Za-z0-9_.-]{1,200}$/.test(service)) {
      fail(path, "host:port or host:port/service (a gRPC service name)", v);
    }
    rules.checkHostPort(slash < 0 ? v : v.slice(0, slash), path);
    return v;
  },
  /** How long a TTL check's result holds, or DeregisterCriticalServiceAfter. */
  ttlMs(x: unknown, path: string): number {
    return durationMs(x, path, 1000, CHECK_TTL_MAX_MS);
  },
  /** A registered check, whole: the fields its kind needs, zeros for the others. */
  registeredCheck(x: unknown, path: string): RegisteredCheck {
    const o = obj(x, path);
    if (!CHECK_KINDS.includes(o.kind as RegisteredCheck["kind"])) {
      fail(`${path}.kind`, CHECK_KINDS.join("|"), o.kind);
    }
    const kind = o.kind as RegisteredCheck["kind"];
    const zero = (v: unknown, p: string) => {
      if (v !== 0 && v !== undefined) fail(p, `0 for a ${kind} check`, String(v));
      return 0;
    };
    const probed = kind === "http" || kind === "tcp" || kind === "grpc" || kind === "udp";
    return {
      id: str(o.id, `${path}.id`),
      name: str(o.name, `${path}.name`),
      notes: o.notes === undefined ? "" : rules.checkOutput(o.notes, `${path}.notes`),
      kind,
      target: kind === "http"
        ? rules.checkUrl(o.target, `${path}.target`)
        : kind === "tcp" || kind === "udp"
        ? rules.checkHostPort(o.target, `${path}.target`)
        : kind === "grpc"
        ? rules.checkGrpcTarget(o.target, `${path}.target`)
        : (o.target === undefined || o.target === "" ? "" : fail(`${path}.target`, '""', o.target)),
      ttlMs: kind === "ttl"
        ? rules.ttlMs(o.ttlMs, `${path}.ttlMs`)
        : zero(o.ttlMs, `${path}.ttlMs`),
      intervalMs: probed
        ? rules.checkIntervalMs(o.intervalMs, `${path}.intervalMs`)
        : zero(o.intervalMs, `${path}.intervalMs`),
      timeoutMs: probed
        ? rules.checkTimeoutMs(o.timeoutMs, `${path}.timeoutMs`)
        : zero(o.timeoutMs, `${path}.timeoutMs`),
      deregisterCriticalAfterMs: o.deregisterCriticalAfterMs === undefined ||
          o.deregisterCriticalAfterMs === 0
        ? 0
        : rules.ttlMs(o.deregisterCriticalAfterMs, `${path}.deregisterCriticalAfterMs`),
      status: rules.status(o.status, `${path}.status`),
      output: o.output === undefined ? "" : rules.checkOutput(o.output, `${path}.output`),
    };
  },
  /** A list of registered checks with distinct ids. */
  registeredChecks(x: unknown, path: string): RegisteredCheck[] {
    if (!Array.isArray(x)) fail(path, "a list of checks", x);
    if (x.length > CHECKS_PER_TARGET_MAX) {
      fail(path, `at most ${CHECKS_PER_TARGET_MAX} checks`, "list");
    }
    const out = x.map((c, i) => rules.registeredCheck(c, `${path}[${i}]`));
    const ids = new Set<string>();
    for (const c of out) {
      if (ids.has(c.id)) fail(path, "distinct check ids", c.id);
      ids.add(c.id);
    }
    return out;
  },
};

function dockerVerdict(x: unknown, path: string): DockerVerdict | null {
  if (x === null || x === undefined) return null;
  const o = obj(x, path);
  return {
    state: rules.dockerState(o.state, `${path}.state`),
    detail: o.detail === undefined ? "" : str(o.detail, `${path}.detail`, { empty: true }),
  };
}

function checkResult(x: unknown, path: string): CheckResult | null {
  if (x === null || x === undefined) return null;
  const o = obj(x, path);
  return {
    status: rules.status(o.status, `${path}.status`),
    output: o.output === undefined ? "" : str(o.output, `${path}.output`, { empty: true }),
  };
}

function check(x: unknown, path: string): CheckDefinition | null {
  if (x === null || x === undefined) return null;
  const o = obj(x, path);
  const out: CheckDefinition = {
    intervalMs: rules.checkIntervalMs(o.intervalMs, `${path}.intervalMs`),
    timeoutMs: rules.checkTimeoutMs(o.timeoutMs, `${path}.timeoutMs`),
  };
  if (o.http !== undefined && o.http !== null) out.http = rules.urlPath(o.http, `${path}.http`);
  if (o.tcp !== undefined && o.tcp !== null) {
    if (typeof o.tcp !== "boolean") fail(`${path}.tcp`, "a boolean", o.tcp);
    out.tcp = o.tcp;
  }
  if (o.grpc !== undefined && o.grpc !== null) {
    if (typeof o.grpc !== "boolean") fail(`${path}.grpc`, "a boolean", o.grpc);
    out.grpc = o.grpc;
  }
  if (o.udp !== undefined && o.udp !== null) out.udp = rules.udpCheckBytes(o.udp, `${path}.udp`);
  if (o.udpExpect !== undefined && o.udpExpect !== null) {
    if (out.udp === undefined) fail(`${path}.udpExpect`, "udp set too", o.udpExpect);
    out.udpExpect = rules.udpCheckBytes(o.udpExpect, `${path}.udpExpect`);
  }
  if (o.failClosed !== undefined && o.failClosed !== null) {
    out.failClosed = str(o.failClosed, `${path}.failClosed`);
  }
  return out;
}

/**
 * Checks an instance spec field by field; returns a clean copy. The health sources must fit the
 * kind of instance: a Docker verdict exactly when there is a container, a check result only when
 * there is a check source (an active check, or an API registration). A spec in the old shape
 * (status/output) is read through migrate.ts first.
 */
export function validateInstance(x: unknown, path = "instance"): InstanceSpec {
  let o = obj(x, path);
  if (isLegacyInstance(o)) o = legacyInstance(o);
  const opt = (v: unknown) => v === undefined || v === null;
  const spec: InstanceSpec = {
    id: str(o.id, `${path}.id`),
    service: rules.serviceName(o.service, `${path}.service`),
    node: str(o.node, `${path}.node`),
    address: str(o.address, `${path}.address`),
    port: rules.port(o.port, `${path}.port`),
    tags: o.tags === undefined ? [] : rules.tags(o.tags, `${path}.tags`),
    meta: o.meta === undefined ? {} : rules.meta(o.meta, `${path}.meta`),
    weight: o.weight === undefined ? 1 : rules.weight(o.weight, `${path}.weight`),
    containerId: opt(o.containerId) ? null : str(o.containerId, `${path}.containerId`),
    httpHosts: o.httpHosts === undefined ? [] : rules.httpHosts(o.httpHosts, `${path}.httpHosts`),
    httpPath: opt(o.httpPath) ? null : rules.urlPath(o.httpPath, `${path}.httpPath`),
    tcpPort: opt(o.tcpPort) ? null : rules.listenPort(o.tcpPort, `${path}.tcpPort`),
    check: check(o.check, `${path}.check`),
    docker: dockerVerdict(o.docker, `${path}.docker`),
    checkResult: checkResult(o.checkResult, `${path}.checkResult`),
  };
  if (o.checks !== undefined && o.checks !== null) {
    const checks = rules.registeredChecks(o.checks, `${path}.checks`);
    if (checks.length > 0) spec.checks = checks;
  }
  if ((spec.containerId === null) !== (spec.docker === null)) {
    throw new CommandError(
      spec.containerId === null
        ? `${path}.docker: an instance without containerId has no Docker verdict; give null`
        : `${path}.docker: a Docker instance (containerId set) needs its Docker verdict`,
    );
  }
  if (spec.checkResult !== null && spec.containerId !== null && spec.check === null) {
    throw new CommandError(
      `${path}.checkResult: a Docker instance without a check has no check result; give null`,
    );
  }
  return spec;
}
