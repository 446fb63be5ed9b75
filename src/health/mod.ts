/**
 * Active health checks for this node's instances.
 *
 * The HealthChecker follows the store for instances whose `node` is this node and that carry a
 * `check` (from `berth.check.*` / `SERVICE_CHECK_*` labels or an API registration), runs each
 * check on its own interval and proposes `{type: "check", id, status, output}` only when the
 * stored status or output should change:
 *
 * - `http: "/path"`: `GET http://address:port/path`; 2xx passing, 429 warning, anything else
 *   (3xx included: redirects are not followed) critical. Output `HTTP GET /health: 200 OK`.
 * - `tcp: true`: a TCP connect to address:port. Output `TCP connect 10.0.0.5:80: success` or
 *   `TCP connect 10.0.0.5:80: connection refused`.
 * - Every run is bounded by the check's `timeoutMs` (`…: timed out after 2000ms`); the response
 *   body is never read; at most `concurrencyMax` runs are in flight.
 * - Hysteresis (Consul's `success_before_passing` / `failures_before_critical`): the first result
 *   after a check starts applies at once (an instance registered critical "awaiting first check"
 *   turns passing on its first success); later, 1 success turns a failing instance passing and 2
 *   consecutive failures turn a passing one critical (or warning). See hysteresis.ts.
 * - Docker rows: while the Docker watcher's verdict holds (output like `container being stopped`
 *   or `docker health: unhealthy`), the checker proposes nothing for that row. See ownership.ts.
 *
 * Options (HealthOptions): `store`, `propose`, `node`, `log`, `concurrencyMax` (32),
 * `successesBeforePassing` (1), `failuresBeforeCritical` (2), and for tests `timers`, `random`,
 * `httpGet`, `tcpConnect`.
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
  type CheckInfo,
  CHECKS_MAX,
  CONCURRENCY_MAX_DEFAULT,
  HealthChecker,
  type HealthOptions,
  PROPOSE_WAIT_MS_MAX,
  START_JITTER_MS_MAX,
} from "./checker.ts";
export { AWAITING_CHECK_OUTPUT, checkerOwns } from "./ownership.ts";
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
  type TcpConnect,
  type Timers,
} from "./probe.ts";
