/**
 * `berth explain CONTAINER` from the Docker side: the labels berth reads from a container,
 * those it rejected (the watcher's latest Problems for it), each port with the instance it
 * became or why none, and the Docker verdict. A pure function of the inspect data, the
 * watcher's options and the problems it kept; the watcher calls it (`DockerWatcher.explain`).
 *
 * @module
 */
import type { ContainerInfo } from "./container.ts";
import { containerName } from "./container.ts";
import { containerInstances, type DesiredOptions, type Skip } from "./desired.ts";
import { ContainerSettings, type Problem } from "./labels.ts";
import { HIDDEN_VALUE, isSecretKey } from "../store/mod.ts";

/** Most characters of a label value shown. */
export const EXPLAIN_VALUE_CHARS_MAX = 200;
/** Label keys whose values are never shown besides secret route settings (isSecretKey). */
const SECRET_KEY_RE = /auth/i;

/** One port of the container and what became of it. */
export interface PortExplain {
  /** Container port: `80/tcp`. */
  port: string;
  /** Where it is published (`0.0.0.0:32768`), null when it is not. */
  published: string | null;
  /** The instance it became; null when none. */
  instance: string | null;
  service: string | null;
  /** Why it became no instance; null when it did. */
  reason: string | null;
}

export interface ContainerExplain {
  name: string;
  id: string;
  image: string;
  /** Docker's state: running, paused, … */
  state: string;
  networkMode: string;
  /** The `berth.*` labels and the `SERVICE_*` labels and env entries berth reads. */
  labels: { key: string; value: string; from: "label" | "env" }[];
  /** Labels rejected, with the watcher's message (what it logged once). */
  problems: { label: string; message: string }[];
  ports: PortExplain[];
  /** The instances the container asks for (registered or not: see the store). */
  instances: { id: string; service: string; address: string; port: number }[];
  /** One line: registered, or why not. */
  summary: string;
  /**
   * Why this member's latest registration did not go through (the cluster rejected the batch,
   * or no proposal could be made), or null. It applies to every container of the member.
   */
  proposeError: string | null;
}

function shown(key: string, value: string): string {
  if (SECRET_KEY_RE.test(key) || isSecretKey(key)) return HIDDEN_VALUE;
  return value.length > EXPLAIN_VALUE_CHARS_MAX
    ? `${value.slice(0, EXPLAIN_VALUE_CHARS_MAX)}…`
    : value;
}

/** What the watcher's latest reconcile adds to a container's own reading. */
export interface ReconcileNotes {
  /**
   * Skips that only the whole list sees (`desiredInstances`: a port whose instance id another
   * container took), in desired.ts's `port P: …` form; their instances are left out.
   */
  skipped?: readonly Skip[];
  /** Why the latest registration did not go through (a rejected batch, no leader), or null. */
  proposeError?: string | null;
}

/**
 * The explanation of container `c` under the watcher's `options`, with its kept `problems` and
 * what the latest reconcile adds (`notes`).
 */
export function explainContainer(
  c: ContainerInfo,
  options: DesiredOptions,
  problems: readonly Problem[],
  notes: ReconcileNotes = {},
): ContainerExplain {
  const name = containerName(c);
  const own = containerInstances(c, options);
  const extra = notes.skipped ?? [];
  const taken = new Set(
    extra.map((k) => /^port (\S+): /.exec(k.reason)?.[1]).filter((p) => p !== undefined),
  );
  const wanted = {
    instances: own.instances.filter((i) => !taken.has(i.meta["container-port"] ?? "")),
    skipped: [...own.skipped, ...extra],
  };
  // A fresh reader: decoding again must not add to the problems shown (the watcher's are).
  const s = new ContainerSettings(name, c.Id, c);
  const labels: ContainerExplain["labels"] = [];
  const labelMap = c.Config?.Labels ?? {};
  for (const key of s.labelKeys()) {
    if (key.startsWith("berth.") || key.startsWith("SERVICE_")) {
      labels.push({ key, value: shown(key, labelMap[key] ?? ""), from: "label" });
    }
  }
  for (const key of s.serviceKeys()) {
    if (key in labelMap) continue;
    labels.push({ key, value: shown(key, s.get(key) ?? ""), from: "env" });
  }

  // Why the container or a port is left out: desired.ts's own reasons (Desired.skipped).
  const over = wanted.skipped.find((k) => TOO_MANY_PORTS.test(k.reason))?.reason ?? null;
  const ignored =
    wanted.skipped.find((k) => !k.reason.startsWith("port ") && !TOO_MANY_PORTS.test(k.reason))
      ?.reason ?? null;
  const portReasons = new Map<string, string>();
  for (const k of wanted.skipped) {
    const m = /^port (\S+): (.*)$/.exec(k.reason);
    if (m !== null && !portReasons.has(m[1]!)) portReasons.set(m[1]!, m[2]!);
  }
  const byPort = new Map(wanted.instances.map((i) => [i.meta["container-port"], i]));
  const published = c.NetworkSettings?.Ports ?? {};
  const keys = [
    ...new Set([...Object.keys(c.Config?.ExposedPorts ?? {}), ...Object.keys(published)]),
  ]
    .filter((k) => /^\d{1,5}\/(tcp|udp)$/.test(k))
    .sort((a, b) => parseInt(a) - parseInt(b) || (a < b ? -1 : a > b ? 1 : 0));
  const ports = keys.map((key): PortExplain => {
    const binding = (published[key] ?? []).find((b) => /^\d{1,5}$/.test(b.HostPort ?? ""));
    const pub = binding === undefined ? null : `${binding.HostIp || "0.0.0.0"}:${binding.HostPort}`;
    const i = byPort.get(key);
    if (i !== undefined) {
      return { port: key, published: pub, instance: i.id, service: i.service, reason: null };
    }
    const reason = portReasons.get(key) ??
      (ignored !== null
        ? `the container is left out: ${ignored}`
        : over !== null
        ? over
        : "not registered: see the problems");
    return { port: key, published: pub, instance: null, service: null, reason };
  });

  const instances = wanted.instances.map((i) => ({
    id: i.id,
    service: i.service,
    address: i.address,
    port: i.port,
  }));
  const summary = ignored !== null
    ? `not registered: ${ignored}`
    : instances.length > 0
    ? `asks for ${instances.length} instance${instances.length === 1 ? "" : "s"}: ${
      instances.map((i) => i.id).join(", ")
    }`
    : "not registered: no port became an instance (see ports)";
  return {
    name,
    id: c.Id,
    image: c.Config?.Image ?? "",
    state: c.State?.Status ?? (c.State?.Running ? "running" : "unknown"),
    networkMode: c.HostConfig?.NetworkMode ?? "",
    labels,
    problems: problems.map((p) => ({ label: p.label, message: p.message })),
    ports,
    instances,
    summary,
    proposeError: notes.proposeError ?? null,
  };
}

/** desired.ts's skip of the ports past PORTS_PER_CONTAINER_MAX (ports.ts), not a container's. */
const TOO_MANY_PORTS = /^\d+ ports after the first \d+ /;

/**
 * The container `query` names among `containers`: its name (a leading `/` allowed) or a prefix
 * of its id (at least 4 hex digits). A string when none or several match.
 */
export function findContainer(
  containers: readonly ContainerInfo[],
  query: string,
): ContainerInfo | string {
  const q = query.startsWith("/") ? query.slice(1) : query;
  const byName = containers.find((c) => containerName(c) === q);
  if (byName !== undefined) return byName;
  if (/^[0-9a-f]{4,64}$/i.test(q)) {
    const hits = containers.filter((c) => c.Id.toLowerCase().startsWith(q.toLowerCase()));
    if (hits.length === 1) return hits[0]!;
    if (hits.length > 1) {
      return `${hits.length} containers have ids starting with ${q}: give more of the id`;
    }
  }
  return `no running container named or with an id starting with ${
    JSON.stringify(q.slice(0, 80))
  } on this member`;
}

/** How long ago an RFC 3339 time was, in words (`42s`, `5m`, `3h`, `2d`); null when never. */
function agoText(time: string | undefined, nowMs: number): string | null {
  const at = time === undefined ? NaN : Date.parse(time);
  if (!Number.isFinite(at) || at <= 0 || time!.startsWith("0001-")) return null;
  const s = Math.max(0, Math.round((nowMs - at) / 1000));
  const text = s < 120
    ? `${s}s`
    : s < 7200
    ? `${Math.round(s / 60)}m`
    : s < 172_800
    ? `${Math.round(s / 3600)}h`
    : `${Math.round(s / 86_400)}d`;
  return `${text} ago (${time!.replace(/\.\d+Z$/, "Z")})`;
}

/**
 * Docker's state of a container as one phrase: `exited (code 137, OOM killed) 5m ago (…)`,
 * `created, never started`, `restarting (last exit code 1)`, `dead`, `paused`, `running`.
 */
export function containerStateText(c: ContainerInfo, nowMs: number): string {
  const st = c.State ?? {};
  const status = st.Status ?? (st.Running ? "running" : "unknown");
  const error = st.Error ? `: ${st.Error.slice(0, EXPLAIN_VALUE_CHARS_MAX)}` : "";
  const finished = agoText(st.FinishedAt, nowMs);
  switch (status) {
    case "exited":
      return `exited (code ${st.ExitCode ?? "?"}${st.OOMKilled ? ", OOM killed" : ""})` +
        `${finished === null ? "" : ` ${finished}`}${error}`;
    case "created":
      return `created, never started${error}`;
    case "restarting":
      return `restarting (last exit code ${st.ExitCode ?? "?"}${
        finished === null ? "" : `, ${finished}`
      })${error}`;
    case "dead":
      return `dead${finished === null ? "" : ` since ${finished}`}${error}`;
    default:
      return `${status}${error}`;
  }
}

/**
 * The explanation of a container the engine has but the watcher's list of running ones does
 * not (exited, created, dead, …): its labels and what berth rejects in them, its ports, and
 * that berth registers running containers only. One that runs (started since the watcher's
 * latest list) is explained as the watcher will see it.
 */
export function explainInspected(
  c: ContainerInfo,
  options: DesiredOptions,
  nowMs: number,
): ContainerExplain {
  const e = explainContainer(c, options, containerInstances(c, options).problems);
  if (c.State?.Running) return e;
  const state = containerStateText(c, nowMs);
  return {
    ...e,
    state,
    summary: `not registered: the container is ${state}; berth registers running containers only`,
    ports: e.ports.map((p) => ({
      ...p,
      instance: null,
      service: null,
      reason: "the container is not running",
    })),
    instances: [],
  };
}
