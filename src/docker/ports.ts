/**
 * Which container ports a container registers, at which address and port: published ports at
 * their binding (or `advertise` for a wildcard binding); with host networking every exposed port
 * at `advertise`; with `internal` every exposed port at the container's IP (its `berth.network`,
 * else its own network) and container port. `berth.port` keeps one port. Ports left out are
 * reported to `skip` with the reason, for `berth explain`.
 *
 * @module
 */
import { CommandError, rules } from "../store/mod.ts";
import { intOrText } from "../lib/text.ts";
import type { ContainerInfo, PortBinding } from "./container.ts";
import { type ContainerSettings, decodeLabel, LABELS } from "./labels.ts";

/** Most ports registered for one container. */
export const PORTS_PER_CONTAINER_MAX = 256;

/** One container port to register. */
export interface PortEntry {
  /** Container port. */
  port: number;
  udp: boolean;
  address: string;
  /** Port registered: host port when published, container port otherwise. */
  registered: number;
}

/** Where a container's ports are registered. */
export interface PortOptions {
  /** Address registered for wildcard bindings and host networking. */
  advertise: string;
  /** Register container IP and container port instead of published ports. */
  internal: boolean;
}

/** `80/tcp`: how a skip reason names a port. */
export function portName(e: { port: number; udp: boolean }): string {
  return `${e.port}/${e.udp ? "udp" : "tcp"}`;
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

/**
 * The container's IP: on its `berth.network` when set (a network it lacks is a Problem naming
 * those it has), else on its own network (or its first network with an address).
 */
function containerIp(c: ContainerInfo, s: ContainerSettings): string | undefined {
  const ns = c.NetworkSettings;
  const networks = ns?.Networks ?? {};
  const wanted = decodeLabel(s, LABELS.network);
  if (wanted !== null) {
    const ip = networks[wanted]?.IPAddress;
    if (ip) return ip;
    const have = Object.keys(networks).filter((n) => networks[n]?.IPAddress).sort();
    s.problem(
      "berth.network",
      `berth.network=${JSON.stringify(wanted)}: the container has no address on that network ` +
        `(has ${have.join(", ") || "none"}); ${LABELS.network.onBad}`,
    );
  }
  if (ns?.IPAddress) return ns.IPAddress;
  const mode = c.HostConfig?.NetworkMode ?? "";
  const own = networks[mode]?.IPAddress;
  if (own) return own;
  for (const key of Object.keys(networks).sort()) {
    const ip = networks[key]?.IPAddress;
    if (ip) return ip;
  }
  return undefined;
}

/** Every port the container can register, sorted; the others go to `skip`. */
export function portEntries(
  c: ContainerInfo,
  o: PortOptions,
  s: ContainerSettings,
  skip: (reason: string) => void,
): PortEntry[] {
  const out: PortEntry[] = [];
  const hostNet = c.HostConfig?.NetworkMode === "host";
  const network = s.label("berth.network")?.trim() ?? "";
  if (network !== "" && (hostNet || !o.internal)) {
    s.problem(
      "berth.network",
      `berth.network=${JSON.stringify(network)}: unused ` +
        (hostNet
          ? "(the container uses host networking: its ports are registered at the host's address)"
          : "without --internal (berth registers published ports, not container IPs)"),
    );
  }
  const published = c.NetworkSettings?.Ports ?? {};
  const keys = [
    ...new Set([...Object.keys(c.Config?.ExposedPorts ?? {}), ...Object.keys(published)]),
  ]
    .sort();
  if (keys.length === 0) {
    skip("no exposed or published port");
    return out;
  }
  if (hostNet || o.internal) {
    const address = hostNet ? o.advertise : containerIp(c, s);
    if (address === undefined) {
      const why = `no container IP (network mode ${c.HostConfig?.NetworkMode ?? "unknown"})`;
      s.problem("NetworkMode", `${why}; not registered with --internal`);
      skip(`${why}; --internal registers container IPs`);
      return out;
    }
    for (const key of keys) {
      const p = parsePortKey(key);
      if (p !== null) out.push({ ...p, address, registered: p.port });
      else skip(`port ${key}: not a port number/protocol`);
    }
  } else {
    for (const key of keys) {
      const p = parsePortKey(key);
      const b = firstBinding(published[key] ?? []);
      const hostPort = b === undefined ? null : enginePort(b.HostPort ?? "");
      if (p === null) skip(`port ${key}: not a port number/protocol`);
      else if (hostPort === null) {
        skip(`port ${key}: not published (publish it with -p, or run berth with --internal)`);
      } else {
        const address = isWildcard(b!.HostIp) ? o.advertise : b!.HostIp!;
        out.push({ ...p, address, registered: hostPort });
      }
    }
  }
  out.sort((a, b) => a.port - b.port || Number(a.udp) - Number(b.udp));
  if (out.length > PORTS_PER_CONTAINER_MAX) {
    skip(
      `${out.length - PORTS_PER_CONTAINER_MAX} ports after the first ` +
        `${PORTS_PER_CONTAINER_MAX} (${
          portName(out[PORTS_PER_CONTAINER_MAX]!)
        } on): too many ports`,
    );
  }
  return out.slice(0, PORTS_PER_CONTAINER_MAX);
}

/** The port `berth.port` keeps (all when unset or when the container lacks it); others skipped. */
export function selectPort(
  entries: PortEntry[],
  s: ContainerSettings,
  skip: (reason: string) => void,
): PortEntry[] {
  const choice = decodeLabel(s, LABELS.port);
  if (choice === null) return entries;
  const kept = entries.filter((e) =>
    e.port === choice.port && (choice.proto === null || e.udp === (choice.proto === "udp"))
  );
  const want = `${choice.port}${choice.proto === null ? "" : `/${choice.proto}`}`;
  if (kept.length === 0) {
    const have = entries.map(portName).join(", ") || "none";
    s.problem(
      "berth.port",
      `berth.port=${want}: the container has no such port (has ${have}); ${LABELS.port.onBad}`,
    );
    return entries;
  }
  for (const e of entries) {
    if (!kept.includes(e)) skip(`port ${portName(e)}: not berth.port=${want}`);
  }
  return kept;
}
