/**
 * The proxy's request metrics (README "Metrics"): a request counter (`begin`, then `count`
 * once the request is over; `end` takes a whole record when an access log makes them), the TCP
 * route observer and the upstream pool's events, counted
 * per service and route (HTTP: `host/prefix` of the route the request matched; TCP:
 * `tcp:PORT`; UDP: `udp:PORT`), never per path. A proxy worker keeps one of these and sends
 * `snapshot()` (plain data) when the main thread asks; the main thread sums them
 * (`ProxyMetricsMerge`, proxy_metrics_merge.ts) and renders the text (proxy_metrics_text.ts).
 *
 * Cardinality is bounded: at most SERIES_MAX live (service, route) label sets and SERIES_MAX
 * live services; what would need more is counted under `service="<other>"` (and
 * `route="<other>"`), and each request, TCP connection or pool event counted there adds one to
 * `overflow`. Requests no route matched count under `service="<none>"`.
 *
 * Expiry: a series nothing touched for `retentionMs` (RETENTION_MS) and with nothing open (no
 * request under way on its route or service, no TCP connection or UDP flow) leaves at a snapshot, or when a new label
 * set finds the cap full; one that comes back starts from 0. No clock is read per request: each
 * touch writes the snapshot epoch it fell in, and each snapshot turns "touched in the epoch that
 * ends now" into "last seen before now" (`seen`). A series leaves only when it was not touched
 * since the previous snapshot, so that snapshot holds its final counts: the main thread, which
 * merges the workers' snapshots (proxy_metrics_merge.ts), loses nothing when it goes. OTHER
 * never leaves. What opened under OTHER (a request's `begin`, a TCP connection, a UDP flow)
 * closes there, though its own series may have room by then: no gauge goes below 0, none is
 * left up.
 *
 * Per request the cost is two map lookups, a few additions into one Float64Array and the epoch
 * write.
 *
 * @module
 */
import type { Target } from "./balancer.ts";
import type { PoolEvents } from "./upstream_pool.ts";
import type { MetricsRecord, RequestCounter } from "./request_record.ts";
import type { TcpObserver } from "./tcp_proxy.ts";
import type { UdpObserver } from "./udp_proxy.ts";

/** Upper bounds (seconds) of the request duration histogram's buckets (then +Inf). */
export const DURATION_BUCKETS_S: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];
/** Most live (service, route) label sets, and most live services, each; more go to OTHER. */
export const SERIES_MAX = 2000;
/**
 * How long a series nothing touched stays: 10 minutes, ten scrapes at a 1-minute interval (40
 * at 15 s), so that the last counts of a route that went away are scraped many times before its
 * series goes; short enough that routes of containers replaced all day do not fill the cap.
 * A route that leaves the table is not dropped at once: a redeploy takes routes away for
 * seconds, and its series would restart from 0 at every deploy.
 */
export const RETENTION_MS = 10 * 60_000;
/** How often, at most, a full cap looks for series to expire (ms). */
const CAP_SWEEP_MS = 1_000;
/** The service (and route) label of what is over SERIES_MAX (no service name has `<`). */
export const OTHER = "<other>";
/** The service (and route) label of requests no route matched (404, 421, …). */
export const NONE = "<none>";
/** Status class labels: index `floor(status / 100) - 1`. */
export const STATUS_CLASSES: readonly string[] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

// Layout of one (service, route) series: status classes, histogram buckets (one per bound and
// +Inf), then the scalars.
export const CODE = 0;
export const BUCKET = CODE + STATUS_CLASSES.length;
export const SUM = BUCKET + DURATION_BUCKETS_S.length + 1;
export const RECEIVED = SUM + 1;
export const SENT = RECEIVED + 1;
export const RETRIES = SENT + 1;
export const CONNECTIONS = RETRIES + 1;
/** A gauge: TCP connections or UDP flows open now (zeroed when a worker's counts retire). */
export const ACTIVE = CONNECTIONS + 1;
export const SERIES_LENGTH = ACTIVE + 1;
// Kept beside the counts, not in snapshots: the epoch of the last touch, the time by which it
// was last seen (set at snapshots), the series' birth number, HTTP requests under way on the
// route (`begin` to `count`: a WebSocket, SSE or long download keeps its series as ACTIVE does).
const TOUCHED = SERIES_LENGTH;
const SEEN = TOUCHED + 1;
const BORN = SEEN + 1;
const OPEN = BORN + 1;
const STORED_LENGTH = OPEN + 1;

/** What a snapshot says of a series' life (the merge reads it). */
export interface SeriesLife {
  /** It was last touched before this time (ms since the epoch). */
  seen: number;
  /** Its birth number in its ProxyMetrics: another one under the same labels is a new series. */
  born: number;
}

/** One (service, route) series as plain data. */
export interface RouteSeriesData extends Partial<SeriesLife> {
  service: string;
  route: string;
  /** SERIES_LENGTH numbers in this module's layout. */
  counts: number[];
}

/** One service's series as plain data. */
export interface ServiceSeriesData extends Partial<SeriesLife> {
  service: string;
  /** Requests under way (a gauge). */
  active: number;
  connectErrors: number;
  ejections: number;
}

/** Everything one ProxyMetrics counted, as plain data (structured clone). */
export interface ProxyMetricsSnapshot {
  routes: RouteSeriesData[];
  services: ServiceSeriesData[];
  /** Observations counted under OTHER because a cap was reached. */
  overflow: number;
  /** Client connections open now (a gauge; ProxyReadings). */
  clientConnections: number;
}

/** What the metrics read from the proxy at each snapshot. */
export interface ProxyReadings {
  /** Client connections open now (HTTP/1.1, HTTP/2, TLS handshakes). */
  clientConnections(): number;
}

/** A snapshot with nothing counted. */
export function emptySnapshot(): ProxyMetricsSnapshot {
  return { routes: [], services: [], overflow: 0, clientConnections: 0 };
}

interface ServiceSeries {
  active: number;
  connectErrors: number;
  ejections: number;
  touched: number;
  seen: number;
  born: number;
}

/** Index of `seconds` in DURATION_BUCKETS_S (its length: above the last bound). */
export function bucketIndex(seconds: number): number {
  const b = DURATION_BUCKETS_S;
  let i = 0;
  while (i < b.length && seconds > b[i]!) i++;
  return i;
}

/** Index of a status in STATUS_CLASSES; anything outside 100..599 counts as 5xx. */
export function statusClass(status: number): number {
  const c = Math.floor(status / 100) - 1;
  return c >= 0 && c < STATUS_CLASSES.length ? c : STATUS_CLASSES.length - 1;
}

/** See the module comment. The proxy's RequestCounter, TcpObserver and PoolEvents. */
export class ProxyMetrics implements RequestCounter, TcpObserver, UdpObserver, PoolEvents {
  readonly #routes = new Map<string, Map<string, Float64Array>>();
  #routeCount = 0;
  readonly #services = new Map<string, ServiceSeries>();
  /**
   * Opens folded into OTHER and not closed yet, by label set (`service\nroute`; services by
   * name): their closes go to OTHER too.
   */
  readonly #foldedRoutes = new Map<string, number>();
  readonly #foldedServices = new Map<string, number>();
  #overflow = 0;
  readonly #seriesMax: number;
  /** How long a series nothing touched stays (module comment). */
  retentionMs: number;
  readonly #now: () => number;
  /** Snapshots taken: what a touch writes. */
  #epoch = 1;
  #born = 0;
  #sweptAt = -Infinity;
  #readings: Partial<ProxyReadings> = {};

  /**
   * `seriesMax`: the cap on live label sets (default SERIES_MAX; smaller in tests);
   * `retentionMs` (default RETENTION_MS); `now`: the clock (ms, default Date.now).
   */
  constructor(opts: { seriesMax?: number; retentionMs?: number; now?: () => number } = {}) {
    this.#seriesMax = opts.seriesMax ?? SERIES_MAX;
    this.retentionMs = opts.retentionMs ?? RETENTION_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** Where snapshots read the client connections from. */
  read(readings: Partial<ProxyReadings>): void {
    this.#readings = { ...this.#readings, ...readings };
  }

  /**
   * A request was routed (service null: no route matched; `route` null: none, undefined: not
   * told, the route's series is then not kept while the request is under way).
   */
  begin(service: string | null, route?: string | null): void {
    const s = service ?? NONE;
    const v = this.#service(s, false);
    v.active++;
    if (v === this.#services.get(OTHER) && s !== OTHER) more(this.#foldedServices, s);
    if (route === undefined) return;
    const r = route ?? NONE;
    const c = this.#series(s, r, false);
    c[OPEN]!++;
    if (this.#isOther(s, c)) more(this.#foldedRoutes, `${s}\n${r}`);
  }

  /** A request finished (any status, the proxy's own answers and 499 included). */
  end(
    { service, route, status, bytesIn, bytesOut, attempts, durationMs }: MetricsRecord,
  ): void {
    const s = service ?? NONE;
    const r = route ?? NONE;
    const v = less(this.#foldedServices, s) ? this.#service(OTHER, false) : this.#services.get(s);
    if (v !== undefined && v.active > 0) {
      v.active--;
      v.touched = this.#epoch;
    }
    const open = this.#opened(s, r, OPEN, true);
    const c = open ?? this.#series(s, r);
    if (open !== null) c[OPEN]!--;
    c[CODE + statusClass(status)]!++;
    // A tunnel's (101: WebSocket) lifetime is no request duration: left out of the histogram.
    if (status !== 101) {
      const seconds = durationMs / 1000;
      c[BUCKET + bucketIndex(seconds)]!++;
      c[SUM]! += seconds;
    }
    c[RECEIVED]! += bytesIn;
    c[SENT]! += bytesOut;
    if (attempts > 1) c[RETRIES]! += attempts - 1;
  }

  /** A client connected to the TCP route on `port` of `service`. */
  tcpOpened(service: string, port: number): void {
    this.#open(service, `tcp:${port}`);
  }

  /** That connection closed, after `bytesIn` from the client and `bytesOut` to it. */
  tcpClosed(service: string, port: number, bytesIn: number, bytesOut: number): void {
    this.#close(service, `tcp:${port}`, bytesIn, bytesOut);
  }

  /** A client flow began on the UDP route on `port` of `service`. */
  udpFlowOpened(service: string, port: number): void {
    this.#open(service, `udp:${port}`);
  }

  /** That flow ended, after `bytesIn` from the client and `bytesOut` to it. */
  udpFlowClosed(service: string, port: number, bytesIn: number, bytesOut: number): void {
    this.#close(service, `udp:${port}`, bytesIn, bytesOut);
  }

  /** A TCP connection or UDP flow opened on (service, route). */
  #open(service: string, route: string): void {
    const c = this.#series(service, route);
    c[CONNECTIONS]!++;
    c[ACTIVE]!++;
    if (this.#isOther(service, c)) more(this.#foldedRoutes, `${service}\n${route}`);
  }

  /** That connection or flow closed: counted where it opened. */
  #close(service: string, route: string, bytesIn: number, bytesOut: number): void {
    const open = this.#opened(service, route, ACTIVE, false);
    const c = open ?? this.#series(service, route, false);
    if (open !== null) c[ACTIVE]!--;
    c[RECEIVED]! += bytesIn;
    c[SENT]! += bytesOut;
  }

  /**
   * Where an open on (service, route) that closes now was counted: OTHER if it was folded
   * there (`count`: the close is an observation, it adds to overflow), else its own series if
   * `gauge` (ACTIVE or OPEN) says one is open there; null: none (a close without an open).
   */
  #opened(service: string, route: string, gauge: number, count: boolean): Float64Array | null {
    if (less(this.#foldedRoutes, `${service}\n${route}`)) {
      if (count) this.#overflow++;
      return this.#series(OTHER, OTHER, false);
    }
    const c = this.#routes.get(service)?.get(route);
    if (c === undefined || c[gauge]! <= 0) return null;
    c[TOUCHED] = this.#epoch;
    return c;
  }

  /** Whether `c`, asked for under `service`, is OTHER's series (folded). */
  #isOther(service: string, c: Float64Array): boolean {
    return service !== OTHER && c === this.#routes.get(OTHER)?.get(OTHER);
  }

  /** Passive health ejected an instance (upstream_pool.ts PoolEvents). */
  ejected(t: Target): void {
    this.#service(t.service ?? NONE).ejections++;
  }

  /** A new connection to an instance failed before it connected (PoolEvents). */
  connectFailed(t: Target): void {
    this.#service(t.service ?? NONE).connectErrors++;
  }

  /**
   * The live series as plain data, each with when it was last seen and its birth number; series
   * expired now are left out (module comment). Starts a new epoch.
   */
  snapshot(): ProxyMetricsSnapshot {
    const now = this.#now();
    const epoch = this.#epoch++;
    const cutoff = now - this.retentionMs;
    const routes: RouteSeriesData[] = [];
    for (const [service, byRoute] of this.#routes) {
      for (const [route, c] of byRoute) {
        if (c[TOUCHED] === epoch) c[SEEN] = now;
        else if (service !== OTHER && c[SEEN]! <= cutoff && c[ACTIVE] === 0 && c[OPEN] === 0) {
          this.#dropRoute(service, route);
          continue;
        }
        const counts = Array.from(c.subarray(0, SERIES_LENGTH));
        routes.push({ service, route, counts, seen: c[SEEN]!, born: c[BORN]! });
      }
    }
    const services: ServiceSeriesData[] = [];
    for (const [service, s] of this.#services) {
      if (s.touched === epoch) s.seen = now;
      else if (service !== OTHER && s.seen <= cutoff && s.active === 0) {
        this.#services.delete(service);
        continue;
      }
      const { active, connectErrors, ejections, seen, born } = s;
      services.push({ service, active, connectErrors, ejections, seen, born });
    }
    return {
      routes,
      services,
      overflow: this.#overflow,
      clientConnections: this.#readings.clientConnections?.() ?? 0,
    };
  }

  /** Live (service, route) label sets, OTHER left out (tests). */
  get routeCount(): number {
    return this.#routeCount;
  }

  /** `count`: an observation that adds to overflow when folded (a close is not one). */
  #series(service: string, route: string, count = true): Float64Array {
    let byRoute = this.#routes.get(service);
    let c = byRoute?.get(route);
    if (c === undefined) {
      if (service !== OTHER && this.#routeCount >= this.#seriesMax) this.#sweep();
      if (service !== OTHER && this.#routeCount >= this.#seriesMax) {
        if (count) this.#overflow++;
        return this.#series(OTHER, OTHER, false);
      }
      if (byRoute === undefined) this.#routes.set(service, byRoute = new Map());
      byRoute.set(route, c = new Float64Array(STORED_LENGTH));
      c[SEEN] = Infinity; // touched now: set at the next snapshot
      c[BORN] = ++this.#born;
      if (service !== OTHER) this.#routeCount++;
    }
    c[TOUCHED] = this.#epoch;
    return c;
  }

  /** `count`: an observation (not a gauge's move) that adds to overflow when folded. */
  #service(service: string, count = true): ServiceSeries {
    let s = this.#services.get(service);
    if (s === undefined) {
      if (service !== OTHER && this.#services.size >= this.#seriesMax) this.#sweep();
      if (service !== OTHER && this.#services.size >= this.#seriesMax) {
        if (count) this.#overflow++;
        return this.#service(OTHER, false);
      }
      s = { active: 0, connectErrors: 0, ejections: 0, touched: 0, seen: Infinity, born: 0 };
      s.born = ++this.#born;
      this.#services.set(service, s);
    }
    s.touched = this.#epoch;
    return s;
  }

  /**
   * A full cap: expires what a snapshot would (untouched since the last one, so that it holds
   * their final counts), at most every CAP_SWEEP_MS.
   */
  #sweep(): void {
    const now = this.#now();
    if (now - this.#sweptAt < CAP_SWEEP_MS) return;
    this.#sweptAt = now;
    const cutoff = now - this.retentionMs;
    const epoch = this.#epoch;
    for (const [service, byRoute] of this.#routes) {
      if (service === OTHER) continue;
      for (const [route, c] of byRoute) {
        if (c[TOUCHED]! < epoch && c[SEEN]! <= cutoff && c[ACTIVE] === 0 && c[OPEN] === 0) {
          this.#dropRoute(service, route);
        }
      }
    }
    for (const [service, s] of this.#services) {
      if (service !== OTHER && s.touched < epoch && s.seen <= cutoff && s.active === 0) {
        this.#services.delete(service);
      }
    }
  }

  #dropRoute(service: string, route: string): void {
    const byRoute = this.#routes.get(service)!;
    byRoute.delete(route);
    if (byRoute.size === 0) this.#routes.delete(service);
    this.#routeCount--;
  }
}

/** Adds one to `key`'s number in `m`. */
function more(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

/** Takes one from `key`'s number in `m` (gone at 0); false: it had none. */
function less(m: Map<string, number>, key: string): boolean {
  const n = m.get(key);
  if (n === undefined) return false;
  if (n > 1) m.set(key, n - 1);
  else m.delete(key);
  return true;
}

/** Requests (every status class) in a series' counts. */
export function requestsOf(counts: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < STATUS_CLASSES.length; i++) n += counts[CODE + i]!;
  return n;
}
