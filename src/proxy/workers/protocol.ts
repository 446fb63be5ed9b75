/**
 * Every message between the main thread and a proxy worker (proxy_worker.ts): plain data only
 * (structured clone), no class instances, no functions.
 *
 * Routes travel as versioned deltas of the store's instance and node rows: `routes.full` (on
 * start, after a store reset, and when a worker asks with `resync`) carries every row at store
 * index `version`; `routes.delta` carries the rows one change wrote (their `after`; null:
 * deleted) and the index of the message before it (`from`). A worker that sees `from` beyond
 * the version it holds missed something and asks for a full table (route_replica.ts).
 *
 * Certificates (`certs`: the edge certificates with their keys opened) and ACME challenges
 * (`acme`: the replicated challenge rows, from which each worker answers HTTP-01 and
 * TLS-ALPN-01) are sent whole when they change; they are few. Key material is never logged.
 *
 * @module
 */
import type { AcmeChallenge, Instance, NodeInfo } from "../../store/mod.ts";
import type { HostPort } from "../../lib/host_port.ts";
import type { ServedCert } from "../sni_index.ts";
import type { AccessLogFormat } from "../access_log_format.ts";
import type { ReservedListener } from "../tcp_proxy.ts";
import type { RoutesReport } from "../http_proxy.ts";
import type { ProxyMetricsSnapshot } from "../proxy_metrics.ts";

/** The store's ACME challenge rows as `store.acme.challenges()` gives them. */
export type ChallengeRow = AcmeChallenge & { name: string };

/** Every instance and node row at store index `version`. */
export interface RoutesFull {
  type: "routes.full";
  version: number;
  instances: Instance[];
  nodes: NodeInfo[];
}

/** The rows one change wrote (`after` of each; null: deleted), at `version`. */
export interface RoutesDelta {
  type: "routes.delta";
  /** The version of the route message sent before this one. */
  from: number;
  version: number;
  instances: { id: string; after: Instance | null }[];
  nodes: { name: string; after: NodeInfo | null }[];
}

export type RoutesMessage = RoutesFull | RoutesDelta;

/** What a worker's HttpProxy is built with (the rest are HttpProxy's defaults). */
export interface WorkerProxyConfig {
  /** Plain HTTP listener; null: none. */
  listen: HostPort | null;
  /** HTTPS listener; null: none. */
  https: HostPort | null;
  h2: boolean;
  edgeDomain: string | null;
  reserved: ReservedListener[];
  /** `--proxy-protocol-from`: canonical CIDRs (none: empty). */
  proxyProtocolFrom?: string[];
  /** `--request-id-from`: canonical CIDRs (`none`: empty; `any`, the default: null or absent). */
  requestIdFrom?: string[] | null;
  /** This member's node name, in request records. */
  member?: string;
  /** How long an untouched metrics series stays (default RETENTION_MS; shorter in tests). */
  metricsRetentionMs?: number;
  /** `--access-log` (`stdout` or a file path) and its format; absent or null: off. */
  accessLog?: { target: string; format: AccessLogFormat } | null;
}

/** A passive-health ejection: the target (`Target.key`) is skipped for `ms`. */
export interface Ejection {
  key: string;
  ms: number;
}

/** Main thread → worker. */
export type ToProxyWorker =
  | {
    type: "start";
    config: WorkerProxyConfig;
    /** How many workers share the proxy's caps (worker_limits.ts). */
    workers: number;
    /** This worker's index; worker 0 alone logs route conflicts and TCP route problems. */
    index: number;
    routes: RoutesFull;
    certs: ServedCert[];
    challenges: ChallengeRow[];
    /** Ejections other workers reported that are still running. */
    ejections: Ejection[];
    /** The rate limiter's buckets, one table for every worker (middleware/rate_buckets.ts). */
    rateBuckets: SharedArrayBuffer;
    /**
     * Every worker's requests in flight and waiting under `berth.http.max-conns` (conn_slots.ts);
     * this worker counts in row `index`.
     */
    connSlots: SharedArrayBuffer;
  }
  | RoutesMessage
  | { type: "certs"; certs: ServedCert[] }
  | { type: "acme"; challenges: ChallengeRow[] }
  | ({ type: "eject" } & Ejection)
  | { type: "report"; id: number }
  /** Asks for the worker's request metrics (proxy_metrics.ts), answered with `metrics`. */
  | { type: "metrics"; id: number }
  /** SIGUSR1: open the access log file again (it was moved away); answered `access-log.reopened`. */
  | { type: "access-log.reopen"; id: number }
  | { type: "drain"; timeoutMs: number }
  | { type: "close" };

/** Worker → main thread. */
export type FromProxyWorker =
  | { type: "ready"; listen: HostPort | null; https: HostPort | null }
  | { type: "failed"; error: string }
  | { type: "resync" }
  | ({ type: "ejected" } & Ejection)
  /** null: the worker's proxy is not started (or already stopped). */
  | { type: "report"; id: number; report: RoutesReport | null }
  /** `accessLogDropped`: the lines its access log dropped so far (absent: no access log). */
  | { type: "metrics"; id: number; snapshot: ProxyMetricsSnapshot; accessLogDropped?: number }
  /** `error`: why the access log file could not be opened again; null: it was. */
  | { type: "access-log.reopened"; id: number; error: string | null }
  | { type: "log"; line: string }
  /** `cut`: after a drain, the requests, streams and connections its timeout cut. */
  | { type: "closed"; cut?: number };
