/**
 * Active health checks for this node's instances.
 *
 * The HealthChecker follows the store for instances whose `node` is this node and that carry a
 * `check` (from `berth.check.*` / `SERVICE_CHECK_*` labels or an API registration), runs each
 * check on its own interval and proposes `{type: "check", id, status, output}` only when the
 * stored check result should change. The check result is one of an instance's three health
 * sources (with the Docker verdict and node liveness, which others write); the store's
 * `instanceHealth` derives from them whether the instance is served.
 *
 * - `http: "/path"`: `GET http://address:port/path`; 2xx passing, 429 warning, anything else
 *   (3xx included: redirects are not followed) critical. Output `HTTP GET /health: 200 OK`.
 * - `tcp: true`: a TCP connect to address:port. Output `TCP connect 10.0.0.5:80: success` or
 *   `TCP connect 10.0.0.5:80: connection refused`.
 * - `grpc: true`: the gRPC health protocol over h2c (`grpc.health.v1.Health/Check` for the
 *   whole server, grpc_health.ts): SERVING passes; NOT_SERVING, a gRPC error (12: the server
 *   has no health service) or a failed connection fails. Output `gRPC health 10.0.0.5:80: SERVING`.
 * - `udp: "PAYLOAD"` (a UDP port's instance; "" an empty datagram): Consul's UDP check
 *   (udp_check.ts) from a kernel-connected socket: an ICMP port unreachable fails at once, a
 *   reply or silence passes; with `udpExpect` a reply containing it must come.
 *   Output `UDP 10.0.0.5:53: port unreachable (ICMP)`.
 * - Every run is bounded by the check's `timeoutMs` (`…: timed out after 2000ms`); the response
 *   body is never read; at most `concurrencyMax` runs are in flight.
 * - Hysteresis (Consul's `success_before_passing` / `failures_before_critical`): the first result
 *   after a check starts, or while the store holds no result ("awaiting first check"), applies
 *   at once; later, 1 success turns a failing result passing and 2 consecutive failures turn a
 *   passing one critical (or warning). See hysteresis.ts.
 * - Checks keep running whatever the Docker verdict says (a paused container fails its check;
 *   each source records its own view).
 *
 * Registered checks (src/store/checks.ts, from the Consul API) run here too: an HTTP check
 * requests its URL exactly as given (its own host and port; `https:` with TLS), a TCP check
 * connects to its `host:port` as given, a UDP check sends an empty datagram there, and the result is proposed as `check.update`. TTL
 * checks and `DeregisterCriticalServiceAfter` are CheckTimers' (check_timers.ts): the owner
 * decides that a TTL ran out, from its own clock, and proposes it.
 *
 * Options (HealthOptions): `store`, `propose`, `node`, `log`, `concurrencyMax` (32),
 * `checksMax` (4096), `successesBeforePassing` (1), `failuresBeforeCritical` (2), and for tests
 * `timers`, `random`, `httpGet`, `tcpConnect`, `grpcHealth`, `udp`.
 *
 * @example
 * ```ts
 * const checker = new HealthChecker({ store, propose: (c) => cluster.propose(c), node: "n1" });
 * checker.start();
 * // … later, before closing the cluster and the store:
 * await checker.close();
 * ```
 *
 * @module
 */
export {
  CheckTimers,
  type CheckTimersOptions,
  RETRY_MS,
  TTL_EXPIRED_OUTPUT,
} from "./check_timers.ts";
export {
  type CheckInfo,
  CHECKS_MAX,
  CONCURRENCY_MAX_DEFAULT,
  HealthChecker,
  type HealthOptions,
  PROPOSE_WAIT_MS_MAX,
  START_JITTER_MS_MAX,
} from "./checker.ts";
export {
  FAILURES_BEFORE_CRITICAL_DEFAULT,
  judge,
  type Streak,
  SUCCESSES_BEFORE_PASSING_DEFAULT,
  type Thresholds,
} from "./hysteresis.ts";
export {
  HEADER_BYTES_MAX,
  type HttpGet,
  httpStatus,
  OUTPUT_CHARS_MAX,
  probe,
  type ProbeResult,
  type ProbeTarget,
  targetOf,
  targetOfRegistered,
  type TcpConnect,
  type Timers,
} from "./probe.ts";
export { defaultUdpProber, type UdpExchange, type UdpProber } from "./udp_check.ts";
