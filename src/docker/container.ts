/**
 * The part of `docker inspect` output the watcher reads. Field names are the Engine API's, so an
 * inspect response (dockerode's ContainerInspectInfo) fits as is; everything is optional because
 * engines and container states leave fields out.
 *
 * @module
 */

/** One host binding of a published container port. */
export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

export interface ContainerNetwork {
  IPAddress?: string;
  GlobalIPv6Address?: string;
}

export interface ContainerHealth {
  /** `starting`, `healthy` or `unhealthy`; absent when the image has no HEALTHCHECK. */
  Status?: string;
  Log?: { ExitCode?: number; Output?: string }[];
}

/** Inspect data of one container (`GET /containers/{id}/json`). */
export interface ContainerInfo {
  Id: string;
  /** With a leading slash: `/web-1`. */
  Name: string;
  Config?: {
    Image?: string;
    Labels?: Record<string, string> | null;
    Env?: string[] | null;
    /** Keys like `80/tcp`, `53/udp`. */
    ExposedPorts?: Record<string, unknown> | null;
  };
  State?: {
    Status?: string;
    Running?: boolean;
    Paused?: boolean;
    Restarting?: boolean;
    Dead?: boolean;
    OOMKilled?: boolean;
    ExitCode?: number;
    /** RFC 3339; `0001-01-01T00:00:00Z` when never. */
    StartedAt?: string;
    FinishedAt?: string;
    /** The engine's error starting it, `""` when none. */
    Error?: string;
    Health?: ContainerHealth | null;
  };
  HostConfig?: { NetworkMode?: string };
  NetworkSettings?: {
    /** `80/tcp` → bindings, or null when exposed but not published. */
    Ports?: Record<string, PortBinding[] | null> | null;
    IPAddress?: string;
    Networks?: Record<string, ContainerNetwork> | null;
  };
}

/** The container name without Docker's leading slash. */
export function containerName(c: ContainerInfo): string {
  return c.Name.startsWith("/") ? c.Name.slice(1) : c.Name;
}
