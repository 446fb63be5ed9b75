/**
 * What every route module gets: the options the app was built with, the blocking-query
 * registry, and the helpers that make a read Consul-shaped (consistency, blocking, index
 * headers) and a write go through consensus.
 *
 * @module
 */
import type { Context } from "hono";
import type { Cluster, Proposed } from "../cluster/mod.ts";
import type { Command, Store } from "../store/mod.ts";
import { validateCommand } from "../store/mod.ts";
import type { Blocker, Watch } from "./blocker.ts";
import type { CatalogIndex } from "./catalog_index.ts";
import type { SecretBox } from "../pki/mod.ts";
import { badRequest, clusterHttpError, HttpError } from "./http_error.ts";
import { blockingParams, consistencyParam } from "./query.ts";
import type { ExplainSources } from "./explain_sources.ts";
import type { TcpRouteInfo } from "../proxy/tcp_proxy.ts";
import type { UdpRouteInfo } from "../proxy/udp_proxy.ts";

/** Longest a default or `?consistent` read waits for the read barrier. */
export const READ_BARRIER_TIMEOUT_MS = 10_000;

/** Consensus operations beyond propose; a missing one answers 501. */
export interface ClusterAdmin {
  /** Joins the cluster that the member at `address` (host:port) belongs to. */
  join(address: string): Promise<void>;
  /** Leaves the cluster gracefully (hands off leadership first). */
  leave(): Promise<void>;
  /** Hands leadership to `node`, or to the most up-to-date voter when null. */
  transferLeader(node: string | null): Promise<void>;
  /** Removes a member that is gone for good. */
  removePeer(node: string): Promise<void>;
}

/**
 * The proxy's routes as /v1/berth/routes lists them (the agent passes the proxy's report): HTTP
 * routes, TCP routes with their listener state (`failed` with the reason), clashes.
 */
export interface RoutesView {
  /** The proxy's HTTP address; null when it is off. */
  listen: string | null;
  /** The proxy's HTTPS address; null when it is off. */
  https: string | null;
  http: { host: string | null; prefix: string; service: string; targets: number }[];
  tcp: TcpRouteInfo[];
  /** UDP routes (`berth.udp.port`) with their listener state and open flows (absent: none). */
  udp?: UdpRouteInfo[];
  conflicts: string[];
  /** Instances the proxy's passive health skips now (absent: none). */
  ejected?: { instance: string; address: string; port: number; untilMs: number }[];
}

export interface Deps {
  store: Store;
  cluster: Cluster;
  admin: Partial<ClusterAdmin>;
  node: string;
  advertise: string;
  datacenter: string;
  version: string;
  config: Record<string, unknown>;
  blocker: Blocker;
  /** Services, status counts and non-passing instances, kept from the change feed. */
  catalog: CatalogIndex;
  random: () => number;
  /** The clock put in lock commands (the leader replaces it with its own when it appends them). */
  now: () => number;
  startedAtMs: number;
  extraMetrics: (() => string | Promise<string>) | undefined;
  routes: () => RoutesView | null | Promise<RoutesView | null>;
  /**
   * Told when a TTL check of this node got a report (its owner restarts the TTL); answers the
   * check's TTL-expiry proposal in flight, if any, which the report must wait for.
   */
  onTtlReport: (checkId: string) => Promise<void> | null;
  /** Seals and opens certificate keys (the cluster key); undefined: this agent keeps none. */
  secrets: SecretBox | undefined;
  /** What /v1/berth/explain reads beyond the store (explain.ts). */
  explain: ExplainSources;
}

/** What a read reports as X-Consul-Index and what its answer reads (which changes can move it). */
export interface ReadSpec {
  index: () => number;
  watch: Watch | readonly Watch[];
  /**
   * Runs after the read barrier and before a blocking query waits; throws to refuse at once
   * (a right on what the read names: no wait, and no wake-up telling when it changed).
   */
  beforeWait?: () => void;
}

type Query = (name: string) => string | undefined;

function queryOf(c: Context): Query {
  return (name) => c.req.query(name);
}

/** Waits for the read barrier (503 on timeout, cluster errors as their statuses). */
export async function barrier(cluster: Cluster): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new HttpError(503, "read barrier timed out; retry, or read with ?stale")),
      READ_BARRIER_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([cluster.readBarrier(), timeout]);
  } catch (e) {
    throw clusterHttpError(e, "retry, or read with ?stale") ?? e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs the read protocol: parse `?index`/`?wait`/`?stale`/`?consistent` (400 when bad), await
 * the read barrier unless stale, run `beforeWait`, block while the index has not passed `?index`, then set the
 * X-Consul-* headers. The caller builds its answer right after, in the same turn, so the data
 * matches the index reported.
 */
export async function prepareRead(c: Context, d: Deps, spec: ReadSpec): Promise<void> {
  const q = queryOf(c);
  const consistency = consistencyParam(q);
  const { index, waitMs } = blockingParams(q);
  if (consistency !== "stale") await barrier(d.cluster);
  spec.beforeWait?.();
  const reported = () => Math.max(1, spec.index());
  if (index > 0 && reported() <= index) {
    // Consul adds up to wait/16 of jitter so that many watchers do not wake together.
    const jitterMs = Math.floor(d.random() * waitMs / 16);
    // Ends, and stops counting against BLOCKED_READS_MAX, when the client goes away: Deno.serve
    // aborts the request's signal on a disconnect. (deno.json opts into `no-legacy-abort`:
    // without it Deno 2.9 warns when the signal is read, and aborts it after every answer too.)
    await d.blocker.wait(spec.watch, () => reported() > index, {
      waitMs: waitMs + jitterMs,
      signal: c.req.raw.signal,
    });
  }
  setReadHeaders(c, d, reported());
  c.header("X-Consul-Effective-Consistency", consistency === "default" ? "leader" : consistency);
}

/** Consul's index and leader headers for an answer at `index`. */
export function consulHeaders(d: Pick<Deps, "cluster">, index: number): Record<string, string> {
  const s = d.cluster.status();
  return {
    "X-Consul-Index": String(index),
    "X-Consul-KnownLeader": s.leader === null ? "false" : "true",
    // Never heard from a leader: 0, with X-Consul-KnownLeader false.
    "X-Consul-LastContact": String(Math.max(0, Math.round(s.lastContactMs ?? 0))),
  };
}

export function setReadHeaders(c: Context, d: Deps, index: number): void {
  for (const [k, v] of Object.entries(consulHeaders(d, index))) c.header(k, v);
}

/** Validates and proposes a command; the apply-time rejection of a command answers 400. */
export async function proposeChecked(d: Deps, command: Command): Promise<Proposed> {
  const checked = validateCommand(command);
  const p = await d.cluster.propose(checked);
  if (p.result.error !== undefined) throw badRequest(p.result.error);
  return p;
}

/** Decodes a path segment; 400 when its percent-encoding is malformed. */
export function decodePath(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw badRequest(`${what}: malformed percent-encoding in ${JSON.stringify(raw.slice(0, 80))}`);
  }
}
