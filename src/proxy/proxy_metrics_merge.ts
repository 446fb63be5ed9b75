/**
 * The sum of several ProxyMetrics snapshots (README "Metrics"): the main thread keeps the last
 * snapshot of each source (a proxy worker, its own UDP routes' metrics) and sums them for each
 * scrape, with the caps applied again to the union of their label sets.
 *
 * A shown counter never goes back, though sources drop series (expiry, proxy_metrics.ts) and
 * stop (a worker that failed and is started again):
 * - a series that leaves a source (missing from its next snapshot, or there again with another
 *   birth number) is carried here with its counts in the source's previous snapshot, its final
 *   ones (a source drops only series untouched since its previous snapshot); a stopped source's
 *   series are all carried, their gauges zeroed;
 * - a carried series stays while a source still has it, or until `retentionMs` after it was
 *   last seen; then it goes, as it went in the sources (and starts from 0 if it comes back);
 * - which label sets get their own series is decided when they appear (in label order when more
 *   come together than there is room for) and kept while they live: a series never moves into
 *   OTHER or out of it while it is shown; the counts of one folded into OTHER that goes stay in
 *   OTHER (and in `overflow`), which never go back.
 *
 * @module
 */
import {
  ACTIVE,
  CONNECTIONS,
  OTHER,
  type ProxyMetricsSnapshot,
  requestsOf,
  RETENTION_MS,
  type RouteSeriesData,
  SERIES_LENGTH,
  SERIES_MAX,
} from "./proxy_metrics.ts";

/** A source: a worker's slot index, or a name. */
export type MetricsSource = number | string;

export interface ProxyMetricsMergeOptions {
  /** The cap on label sets with their own series (default SERIES_MAX). */
  seriesMax?: number;
  /** As the sources' (default RETENTION_MS). */
  retentionMs?: number;
  now?: () => number;
}

/** One series of either family, in a family-neutral form. */
interface Series {
  key: string;
  counts: readonly number[];
  seen?: number;
  born?: number;
}

/** Counts carried for a label set that left a source. */
interface Carried {
  counts: number[];
  seen: number;
}

/** One family (routes or services): what is carried, and each label set's place. */
class Family {
  readonly carried = new Map<string, Carried>();
  /** Label set → own series (true) or folded into OTHER (false), while it lives. */
  readonly place = new Map<string, boolean>();
  own = 0;

  constructor(
    readonly other: string,
    readonly length: number,
    /** The gauge's index in counts (zeroed when carried). */
    readonly gauge: number,
    /** What folding these counts into OTHER adds to `overflow`. */
    readonly weight: (counts: readonly number[]) => number,
  ) {}

  carry(s: Series, seen: number): void {
    let c = this.carried.get(s.key);
    if (c === undefined) {
      this.carried.set(s.key, c = { counts: new Array(this.length).fill(0), seen });
    }
    for (let i = 0; i < this.length; i++) {
      if (i !== this.gauge) c.counts[i]! += s.counts[i] ?? 0;
    }
    c.seen = Math.max(c.seen, seen);
  }

  /**
   * Drops carried label sets no source has that were last seen by `cutoff`, and places new
   * ones. Returns what the dropped ones folded into OTHER added to `overflow`.
   */
  settle(live: ReadonlySet<string>, cutoff: number, max: number): number {
    let overflow = 0;
    for (const [key, c] of this.carried) {
      if (key === this.other || live.has(key) || c.seen > cutoff) continue;
      this.carried.delete(key);
      if (this.place.get(key) === false) {
        // Its counts stay in OTHER, which never goes back.
        overflow += this.weight(c.counts);
        this.carry({ key: this.other, counts: c.counts }, c.seen);
      }
    }
    for (const [key, own] of this.place) {
      if (live.has(key) || this.carried.has(key)) continue;
      this.place.delete(key);
      if (own) this.own--;
    }
    const fresh = new Set<string>();
    for (const key of live) if (!this.place.has(key)) fresh.add(key);
    for (const key of this.carried.keys()) if (!this.place.has(key)) fresh.add(key);
    fresh.delete(this.other);
    for (const key of [...fresh].sort()) {
      const own = this.own < max;
      this.place.set(key, own);
      if (own) this.own++;
    }
    return overflow;
  }

  /** The sum of `series` and what is carried, by label set; and what went into OTHER. */
  sum(series: Iterable<Series>): { sums: Map<string, number[]>; overflow: number } {
    const sums = new Map<string, number[]>();
    let overflow = 0;
    const add = (key: string, counts: readonly number[]) => {
      let into = key;
      if (key !== this.other && this.place.get(key) !== true) {
        into = this.other;
        overflow += this.weight(counts);
      }
      let s = sums.get(into);
      if (s === undefined) sums.set(into, s = new Array(this.length).fill(0));
      for (let i = 0; i < this.length; i++) s[i]! += counts[i] ?? 0;
    };
    for (const s of series) add(s.key, s.counts);
    for (const [key, c] of this.carried) add(key, c.counts);
    return { sums, overflow };
  }
}

const ROUTE_OTHER = `${OTHER}\n${OTHER}`;
const routeKey = (r: RouteSeriesData) => `${r.service}\n${r.route}`;

function routeSeries(s: ProxyMetricsSnapshot): Series[] {
  return s.routes.map((r) => ({ key: routeKey(r), counts: r.counts, seen: r.seen, born: r.born }));
}

function serviceSeries(s: ProxyMetricsSnapshot): Series[] {
  return s.services.map((v) => ({
    key: v.service,
    counts: [v.active, v.connectErrors, v.ejections],
    seen: v.seen,
    born: v.born,
  }));
}

/** See the module comment. */
export class ProxyMetricsMerge {
  readonly #seriesMax: number;
  readonly #retentionMs: number;
  readonly #now: () => number;
  readonly #sources = new Map<MetricsSource, ProxyMetricsSnapshot>();
  readonly #routes = new Family(
    ROUTE_OTHER,
    SERIES_LENGTH,
    ACTIVE,
    (c) => requestsOf(c) + c[CONNECTIONS]!,
  );
  readonly #services = new Family(OTHER, 3, 0, (c) => c[1]! + c[2]!);
  /** Overflow of stopped sources and of label sets folded into OTHER that went. */
  #overflow = 0;

  constructor(opts: ProxyMetricsMergeOptions = {}) {
    this.#seriesMax = opts.seriesMax ?? SERIES_MAX;
    this.#retentionMs = opts.retentionMs ?? RETENTION_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** The newest snapshot of `source`: what left it since its previous one is carried. */
  update(source: MetricsSource, snap: ProxyMetricsSnapshot): void {
    const prev = this.#sources.get(source);
    this.#sources.set(source, snap);
    if (prev === undefined) return;
    const now = this.#now();
    const left = (family: Family, before: Series[], after: Series[]) => {
      const born = new Map(after.map((s) => [s.key, s.born]));
      for (const s of before) {
        if (!born.has(s.key) || born.get(s.key) !== s.born) family.carry(s, s.seen ?? now);
      }
    };
    left(this.#routes, routeSeries(prev), routeSeries(snap));
    left(this.#services, serviceSeries(prev), serviceSeries(snap));
  }

  /** `source` stopped: its last counts are carried, gauges zeroed. */
  stopped(source: MetricsSource): void {
    const prev = this.#sources.get(source);
    if (prev === undefined) return;
    this.#sources.delete(source);
    const now = this.#now();
    for (const s of routeSeries(prev)) this.#routes.carry(s, s.seen ?? now);
    for (const s of serviceSeries(prev)) this.#services.carry(s, s.seen ?? now);
    this.#overflow += prev.overflow;
  }

  /** The sum for a scrape. */
  merged(): ProxyMetricsSnapshot {
    const cutoff = this.#now() - this.#retentionMs;
    const snaps = [...this.#sources.values()];
    const routes = snaps.flatMap(routeSeries);
    const services = snaps.flatMap(serviceSeries);
    this.#overflow += this.#routes.settle(
      new Set(routes.map((s) => s.key)),
      cutoff,
      this.#seriesMax,
    );
    this.#overflow += this.#services.settle(
      new Set(services.map((s) => s.key)),
      cutoff,
      this.#seriesMax,
    );
    const r = this.#routes.sum(routes);
    const v = this.#services.sum(services);
    let overflow = this.#overflow + r.overflow + v.overflow;
    let clientConnections = 0;
    for (const s of snaps) {
      overflow += s.overflow;
      clientConnections += s.clientConnections;
    }
    return {
      routes: [...r.sums].map(([key, counts]) => {
        const [service, route] = key.split("\n") as [string, string];
        return { service, route, counts };
      }),
      services: [...v.sums].map(([service, [active, connectErrors, ejections]]) => ({
        service,
        active: active!,
        connectErrors: connectErrors!,
        ejections: ejections!,
      })),
      overflow,
      clientConnections,
    };
  }
}
