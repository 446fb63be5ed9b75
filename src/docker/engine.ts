/**
 * The Docker engine as the watcher uses it: list the running containers (inspected) and follow
 * the container event stream. Built on npm dockerode, which works under Deno's node compat on a
 * unix socket and over http: requests, and the events stream (a node Readable of NDJSON chunks).
 *
 * Two clients: requests carry REQUEST_TIMEOUT_MS (dockerode's `timeout` is an idle timeout on
 * the request, which would also cut a quiet event stream), the event stream only a connect
 * timeout.
 *
 * @module
 */
// @ts-types="./_dockerode.d.ts"
import Docker from "dockerode";
import type { DockerOptions } from "./_dockerode.d.ts";
import type { ContainerInfo } from "./container.ts";
import { NdjsonSplitter } from "./ndjson.ts";

/** Time allowed for one engine request (list, inspect, ping). */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Time allowed to open the event stream. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** Most containers read per list. */
export const CONTAINERS_MAX = 4096;
/** Inspect requests in flight at once. */
export const INSPECT_CONCURRENCY = 8;

/** One container event, normalised from the Engine API's event JSON. */
export interface DockerEvent {
  /** `start`, `die`, `kill`, `health_status`, … (the part before any `:`). */
  action: string;
  /** Container id. */
  id: string;
  attributes: Record<string, string>;
}

export interface Engine {
  /** The running (and paused/restarting) containers, inspected. Throws when unreachable. */
  list(): Promise<ContainerInfo[]>;
  /**
   * One container in any state (stopped ones too: for explain) by name or id prefix, inspected;
   * null when the engine knows none. Throws when unreachable.
   */
  inspect?(nameOrId: string): Promise<ContainerInfo | null>;
  /**
   * Opens the container event stream. Resolves with a function that closes it once it is open;
   * `onEnd` is called once when the stream ends or fails (not after the close function).
   */
  events(
    onEvent: (e: DockerEvent) => void,
    onEnd: (err: Error | null) => void,
  ): Promise<() => void>;
}

/** dockerode options for an engine URL: unix:///path, http://host:port, tcp://host:port. */
function dockerOptions(url: string): DockerOptions {
  if (url.startsWith("unix://")) {
    const socketPath = url.slice("unix://".length);
    if (socketPath.startsWith("/")) return { socketPath };
  }
  const m = /^(http|https|tcp):\/\/([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(url);
  if (m !== null) {
    const protocol = m[1] === "https" ? "https" : "http";
    const port = m[3] === undefined ? (protocol === "https" ? 2376 : 2375) : Number(m[3]);
    return { host: m[2]!.replace(/^\[|\]$/g, ""), port, protocol };
  }
  throw new Error(
    `docker: unsupported engine URL ${url}; expected unix:///var/run/docker.sock or http://host:port`,
  );
}

/** Normalises one event value; null for non-container or malformed events. */
function parseEvent(v: unknown): DockerEvent | null {
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  const type = o.Type ?? "container";
  if (type !== "container") return null;
  const actionRaw = typeof o.Action === "string"
    ? o.Action
    : typeof o.status === "string"
    ? o.status
    : "";
  const actor = (typeof o.Actor === "object" && o.Actor !== null ? o.Actor : {}) as Record<
    string,
    unknown
  >;
  const id = typeof actor.ID === "string" ? actor.ID : typeof o.id === "string" ? o.id : "";
  if (actionRaw === "" || id === "") return null;
  const attributes: Record<string, string> = {};
  if (typeof actor.Attributes === "object" && actor.Attributes !== null) {
    for (const [k, val] of Object.entries(actor.Attributes)) {
      if (typeof val === "string") attributes[k] = val;
    }
  }
  const action = (actionRaw.split(":")[0] ?? "").trim();
  return { action, id, attributes };
}

interface NodeStream {
  on(event: string, fn: (arg: unknown) => void): unknown;
  destroy(): void;
}

/** An Engine talking to the Docker engine at `url` through dockerode. */
export function dockerEngine(url: string): Engine {
  const opts = dockerOptions(url);
  const api = new Docker({ ...opts, timeout: REQUEST_TIMEOUT_MS });
  const stream = new Docker(opts);
  // docker-modem reads `connectionTimeout` from its options; @types/dockerode lacks it.
  (stream.modem as unknown as { connectionTimeout: number }).connectionTimeout = CONNECT_TIMEOUT_MS;

  return {
    async list() {
      const summaries = (await api.listContainers({ all: false })).slice(0, CONTAINERS_MAX);
      const out: ContainerInfo[] = [];
      for (let i = 0; i < summaries.length; i += INSPECT_CONCURRENCY) {
        const chunk = summaries.slice(i, i + INSPECT_CONCURRENCY);
        const inspected = await Promise.all(chunk.map(async (s) => {
          try {
            return await api.getContainer(s.Id).inspect() as ContainerInfo;
          } catch (e) {
            // Removed between list and inspect: it is simply not running any more.
            if ((e as { statusCode?: number }).statusCode === 404) return null;
            throw e;
          }
        }));
        for (const c of inspected) if (c !== null) out.push(c);
      }
      return out;
    },

    async inspect(nameOrId) {
      try {
        return await api.getContainer(nameOrId).inspect() as ContainerInfo;
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode === 404) return null;
        throw e;
      }
    },

    async events(onEvent, onEnd) {
      const s = await stream.getEvents({
        filters: { type: ["container"] },
      }) as unknown as NodeStream;
      const splitter = new NdjsonSplitter();
      let done = false;
      const end = (err: Error | null) => {
        if (done) return;
        done = true;
        onEnd(err);
      };
      s.on("data", (chunk) => {
        if (done) return;
        for (const v of splitter.push(chunk as Uint8Array)) {
          const e = parseEvent(v);
          if (e !== null) onEvent(e);
        }
      });
      s.on("end", () => end(null));
      s.on("close", () => end(null));
      s.on("error", (err) => end(err as Error));
      return () => {
        done = true;
        s.destroy();
      };
    },
  };
}
