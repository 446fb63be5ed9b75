/**
 * berth's HTTP API: a Consul-compatible `/v1` subset (catalog, health, KV, agent, status) so
 * consul-template, Prometheus `consul_sd_configs` and Consul client libraries work against it,
 * plus native `/v1/berth/*` routes, `/v1/snapshot`, `/metrics` (Prometheus) and `/ui`.
 *
 * Reads come from the local store. Every read answers `X-Consul-Index`, `X-Consul-KnownLeader`
 * and `X-Consul-LastContact`; `?index=N&wait=30s` blocks until the index passes N (wait default
 * 5m, at most 10m, plus up to wait/16 jitter). `?stale` reads the local replica at once; the
 * default and `?consistent` wait for the cluster's read barrier first. Writes go only through
 * `cluster.propose()`. Every route needs the right acl_routes.ts names for the request's ACL
 * token (`X-Consul-Token`, `Authorization: Bearer` or `?token=`; acl_enforce.ts); lists answer
 * what it may read. Bad input answers 400 (413 for bodies over the limit) with one line.
 *
 * Options (ApiOptions): `store`, `cluster`, `node`, `advertise`, `version`;
 * optional `aclDefault` ("deny"), `datacenter` ("dc1"), `config` (shown redacted in /v1/agent/self), `admin`
 * (join/leave/raft operations; missing ones answer 501), `routes` (the proxy's report
 * for /v1/berth/routes), `extraMetrics`, `blockedReadsMax` (16,384), `signal`, `random`.
 *
 * @example
 * ```ts
 * const api = new ApiServer({ store, cluster, node: "n1", advertise: "10.0.0.5",
 *   version: VERSION, aclDefault: "deny", listen: { host: "127.0.0.1", port: 8500 } });
 * await api.start();
 * // curl -s 127.0.0.1:8500/v1/health/service/web?passing
 * // curl -s -X PUT --data-binary 'on' 127.0.0.1:8500/v1/kv/feature/x   → true
 * // curl -s '127.0.0.1:8500/v1/kv/feature/x?index=12&wait=30s'         (blocks for a change)
 * await api.close();
 * ```
 *
 * @module
 */
export { type ApiOptions, createApp } from "./app.ts";
export { ApiServer, type ApiServerOptions } from "./server.ts";
export { API_CERT_TTL_MS, AutoTls, serveAutoTls } from "./auto_tls.ts";
export { checkTlsMaterial, readCaFile, readTlsFiles, type TlsMaterial } from "./tls_files.ts";
export { BLOCKED_READS_MAX } from "./blocker.ts";
export { redact } from "./agent_routes.ts";
export type { ClusterAdmin, RoutesView } from "./deps.ts";
export type { MemberInfo as ExplainMember } from "./explain.ts";
export { READ_BARRIER_TIMEOUT_MS } from "./deps.ts";
export { JSON_BODY_BYTES_MAX } from "./http_error.ts";
export { WAIT_DEFAULT_MS, WAIT_MAX_MS } from "./query.ts";
export {
  ApiClient,
  type ApiClientOptions,
  ApiHttpError,
  ApiUnreachableError,
  CLIENT_TIMEOUT_MS,
  DEFAULT_HTTP_ADDR,
  type KvItem,
} from "./client.ts";
