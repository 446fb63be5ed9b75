/**
 * The proxy on N worker threads (`--proxy-workers N`, N >= 2; README "Proxy workers"): each
 * worker (proxy_worker.ts) runs a whole HttpProxy whose listeners bind with SO_REUSEPORT, so
 * the kernel spreads connections over them; the main thread serves no proxy traffic. This is
 * the main thread's side:
 *
 * - Start: every worker binds the same addresses (with a port 0, the first binds first and the
 *   others the port it got). Each gets the whole route table, the certificates and the ACME
 *   challenges with its `start`; then route deltas from the store's change feed
 *   (route_replica.ts), new certificates (`reloadCertificates`, and on `edge_certs` changes)
 *   and challenge rows (on `acme` changes). A worker that missed a delta asks for a full table.
 * - Passive health: an ejection in one worker is sent to every other one (and to workers that
 *   start while it lasts); `report()` merges the workers' reports (routes, TCP listeners,
 *   ejections) for `/v1/berth/routes`; `metrics()` sums the workers' request metrics (a worker
 *   that does not answer in time counts with the last ones it gave; one that stopped, with its
 *   last counters, so that no counter goes back).
 * - A worker that fails (an uncaught error) is logged with one line and started again after
 *   RESTART_MS, doubling up to RESTART_MS_MAX while it keeps failing; the others keep the
 *   ports open meanwhile. `close()` stops them all; `drain(ms)` lets each finish what is under
 *   way first.
 *
 * Over 500 lines: every part above works on the same workers' slots (the worker, when it said
 * ready, its restart wait, its start and close promises) and the route feed; each part is a few
 * methods of the one class.
 *
 * @module
 */
import { formatHostPort } from "../../lib/host_port.ts";
import { portProblem } from "../../lib/port_probe.ts";
import type { Store } from "../../store/mod.ts";
import { errorText } from "../../lib/error_text.ts";
import type { HostPort } from "../../lib/host_port.ts";
import type { RoutesReport } from "../http_proxy.ts";
import type { RouteTable } from "../routes.ts";
import { RouteFeed } from "../route_feed.ts";
import type { ServedCert } from "../sni_index.ts";
import type { FromProxyWorker, ToProxyWorker, WorkerProxyConfig } from "./protocol.ts";
import { RouteSender } from "./route_replica.ts";
import { mergeReports } from "./merge_reports.ts";
import { UdpProxy } from "../udp_proxy.ts";
import { processRateBuckets } from "../middleware/rate_buckets.ts";
import { ConnSlots } from "../conn_slots.ts";
import { WorkerGather } from "../../lib/worker_gather.ts";
import type { ProxyMetrics, ProxyMetricsSnapshot } from "../proxy_metrics.ts";
import { ProxyMetricsMerge } from "../proxy_metrics_merge.ts";

/** First wait before a failed worker is started again; doubles up to RESTART_MS_MAX. */
export const RESTART_MS = 100;
export const RESTART_MS_MAX = 5_000;
/** A worker up this long has its restart wait start over at RESTART_MS. */
export const RESTART_RESET_MS = 30_000;
/** Longest wait for the workers' reports and metrics (one that does not answer is left out). */
export const REPORT_TIMEOUT_MS = 1_000;
/** Longest wait for a worker to close (then it is terminated). */
export const CLOSE_TIMEOUT_MS = 3_000;

/** What the workers read from the main thread. */
export type WorkersStore = Pick<
  Store,
  "subscribe" | "appliedIndex" | "instances" | "instancesPage" | "nodes" | "acme"
>;

export interface ProxyWorkersOptions {
  /** Worker threads (>= 1; the agent uses this class for 2 and more). */
  count: number;
  store: WorkersStore;
  config: WorkerProxyConfig;
  /** The edge certificates to serve, keys opened (ServedCerts.certs()). */
  certs: () => ServedCert[];
  log: (line: string) => void;
  /** First restart wait. Default RESTART_MS. */
  restartMs?: number;
  /** The main thread's own metrics (its UDP routes' flows), summed with the workers'. */
  metrics?: ProxyMetrics;
}

interface Slot {
  index: number;
  worker: Worker | null;
  /** When it said ready (ms); 0: not yet. */
  readySince: number;
  /** Its next restart wait. */
  restartMs: number;
  timer: ReturnType<typeof setTimeout> | null;
  started: PromiseWithResolvers<void> | null;
  /** Resolves with what the worker's drain cut (0 after a close). */
  closed: PromiseWithResolvers<number> | null;
  /** Access log lines its worker dropped, as it last said. */
  accessLogDropped: number;
}

/** The workers' request metrics, summed, and the workers that did not answer in time. */
export interface WorkersMetrics {
  snapshot: ProxyMetricsSnapshot;
  missing: number[];
  /** Access log lines dropped (buffer full, failed writes); null: no access log. */
  accessLogDropped: number | null;
}

/** See the module comment. */
export class ProxyWorkers {
  readonly #o: ProxyWorkersOptions;
  readonly #slots: Slot[];
  readonly #sender: RouteSender;
  /** The routes on the main thread too: ACME's names and the report when no worker answers. */
  readonly #feed: RouteFeed;
  /**
   * The workers' `berth.http.max-conns` counts (conn_slots.ts), one row each: a worker that
   * stops has its row zeroed, so its slots and queue places go back to the others.
   */
  readonly #connSlots: ConnSlots;
  /** Target key → ejected until (ms), for workers that start meanwhile. */
  readonly #ejections = new Map<string, number>();
  readonly #reports = new WorkerGather<Slot, RoutesReport>();
  readonly #metrics = new WorkerGather<Slot, ProxyMetricsSnapshot>();
  /** Access log reopens: "" (done) or why not. */
  readonly #reopens = new WorkerGather<Slot, string>();
  /** Every worker's last metrics (and those of workers that stopped), summed at each scrape. */
  readonly #merge: ProxyMetricsMerge;
  /** Access log lines dropped by workers that stopped. */
  #stoppedAccessLogDropped = 0;
  #config: WorkerProxyConfig;
  /** UDP routes, served here on the main thread (udp_proxy.ts says why). */
  readonly #udp: UdpProxy | null;
  /** The latest UDP listener update; they run one after another. */
  #udpUpdating: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void) | null = null;
  #closed = false;
  /** start() has not bound the first worker yet. */
  #starting = false;

  constructor(opts: ProxyWorkersOptions) {
    this.#o = opts;
    this.#config = opts.config;
    this.#sender = new RouteSender(opts.store);
    this.#connSlots = new ConnSlots(ConnSlots.create(Math.max(1, opts.count)), 0);
    this.#merge = new ProxyMetricsMerge({ retentionMs: opts.config.metricsRetentionMs });
    this.#slots = Array.from({ length: opts.count }, (_, index) => ({
      index,
      worker: null,
      readySince: 0,
      restartMs: opts.restartMs ?? RESTART_MS,
      timer: null,
      started: null,
      closed: null,
      accessLogDropped: 0,
    }));
    const noop = () => {};
    const udpHost = (opts.config.listen ?? opts.config.https)?.host;
    this.#udp = udpHost === undefined ? null : new UdpProxy({
      host: udpHost,
      log: opts.log,
      reserved: opts.config.reserved,
      observer: opts.metrics,
    });
    this.#feed = new RouteFeed({
      source: opts.store,
      edgeDomain: opts.config.edgeDomain,
      targetsChanged: noop,
      targetsReset: noop,
      tcpChanged: noop,
      udpChanged: (ports) => {
        const udp = this.#udp;
        if (udp === null) return;
        this.#udpUpdating = this.#udpUpdating.then(() =>
          this.#closed ? undefined : udp.update(this.#feed.table, ports)
        );
      },
      log: noop, // worker 0 logs route conflicts
    });
  }

  /** The route table (the main thread's copy). */
  get table(): RouteTable {
    return this.#feed.table;
  }

  /** The bound plain HTTP address (after start()); null when off. */
  get address(): HostPort | null {
    return this.#config.listen;
  }

  /** The bound HTTPS address (after start()); null when off. */
  get httpsAddress(): HostPort | null {
    return this.#config.https;
  }

  /** Workers running now. */
  get running(): number {
    return this.#slots.filter((s) => s.worker !== null && s.readySince > 0).length;
  }

  /**
   * Starts the workers, all at once (with a port 0, the first binds first and the others then
   * bind the port it got). Rejects (all stopped) when one cannot start, with its error.
   */
  async start(): Promise<void> {
    this.#feed.start();
    this.#unsubscribe = this.#o.store.subscribe((c) => {
      const m = this.#sender.onChange(c);
      if (m !== null) this.#broadcast(m);
      if (c.tables.has("acme") || c.reset) {
        this.#broadcast({ type: "acme", challenges: this.#o.store.acme.challenges() });
      }
      if (c.tables.has("edge_certs") || c.reset) this.reloadCertificates();
    });
    const [first, ...rest] = this.#slots;
    const { listen, https } = this.#config;
    try {
      this.#starting = true;
      // Before the reusePort listeners: another process's would be joined silently.
      for (const [flag, at] of [["proxy-http", listen], ["proxy-https", https]] as const) {
        const problem = at ? await portProblem(at) : null;
        if (problem !== null) {
          throw new Error(
            `proxy: cannot listen on ${formatHostPort(at!)}: ${problem} ` +
              `(pick another address with --${flag}, or off)`,
          );
        }
      }
      if (listen?.port === 0 || https?.port === 0) {
        await this.#spawn(first!); // the port it binds is the one the others bind
        await Promise.all(rest.map((s) => this.#spawn(s)));
      } else await Promise.all(this.#slots.map((s) => this.#spawn(s)));
      this.#starting = false;
    } catch (e) {
      this.#starting = false;
      await this.close();
      throw e;
    }
    const on = [this.#config.listen, this.#config.https].filter((a) => a !== null)
      .map((a) => `${a.host}:${a.port}`).join(", ");
    this.#o.log(`proxy: ${this.#slots.length} worker threads listening on ${on}`);
  }

  /**
   * SIGUSR1: every running worker opens its access log file again. Resolves once all did;
   * rejects with one line naming how many did and why each other one did not.
   */
  async reopenAccessLog(): Promise<void> {
    const live = this.#live();
    const { got, missing } = await this.#reopens.ask(
      live,
      (s, id) => this.#post(s, { type: "access-log.reopen", id }),
      REPORT_TIMEOUT_MS,
    );
    const target = this.#config.accessLog?.target;
    /** Why → the workers it holds for (one entry per reason, to keep the line short). */
    const failures = new Map<string, number[]>();
    const fail = (s: Slot, why: string) => {
      const short = why.startsWith(`access log ${target}: `)
        ? why.slice(`access log ${target}: `.length)
        : why;
      failures.set(short, [...failures.get(short) ?? [], s.index]);
    };
    let ok = 0;
    for (const s of this.#slots) {
      const error = got.get(s);
      if (error === "") ok++;
      else if (error !== undefined) fail(s, error);
      else if (missing.includes(s)) fail(s, "no answer");
      else fail(s, "not running (opens it when it starts)");
    }
    if (failures.size === 0) return;
    const why = [...failures].map(([w, ix]) =>
      `${ix.length === 1 ? "worker" : "workers"} ${ix.join(", ")}: ${w}`
    );
    throw new Error(
      `access log ${target}: reopened by ${ok} of ${this.#slots.length} proxy threads; ` +
        why.join("; "),
    );
  }

  /** Sends the certificates again (they changed, or keys can be opened now). */
  reloadCertificates(): void {
    let certs: ServedCert[];
    try {
      certs = this.#o.certs();
    } catch (e) {
      this.#o.log(`proxy: keeping the old certificates, reading them failed: ${errorText(e)}`);
      return;
    }
    this.#broadcast({ type: "certs", certs });
  }

  /** The workers' reports, merged (routes, TCP listeners, ejections of every worker). */
  async report(): Promise<RoutesReport> {
    const fmt = (a: HostPort | null) => a === null ? null : `${a.host}:${a.port}`;
    const merged = mergeReports(await this.reports(), {
      listen: fmt(this.#config.listen),
      https: fmt(this.#config.https),
      http: this.#feed.table.httpRoutes(),
      tcp: [],
      conflicts: this.#feed.table.conflicts,
      ejected: [],
    });
    if (this.#udp === null) return merged;
    return { ...merged, udp: this.#udp.report(this.#feed.table.udpClashes) };
  }

  /** The report of each running worker that answers within REPORT_TIMEOUT_MS. */
  async reports(): Promise<RoutesReport[]> {
    const { got } = await this.#reports.ask(
      this.#live(),
      (s, id) => this.#post(s, { type: "report", id }),
      REPORT_TIMEOUT_MS,
    );
    return [...got.values()];
  }

  /**
   * The request metrics of every worker, summed: those that answer within REPORT_TIMEOUT_MS,
   * the last ones of those that do not (named in `missing`), and those of workers that stopped.
   */
  async metrics(): Promise<WorkersMetrics> {
    const { missing } = await this.#metrics.ask(
      this.#live(),
      (s, id) => this.#post(s, { type: "metrics", id }),
      REPORT_TIMEOUT_MS,
    );
    if (this.#o.metrics !== undefined) this.#merge.update("main", this.#o.metrics.snapshot());
    let dropped = this.#stoppedAccessLogDropped;
    for (const s of this.#slots) dropped += s.accessLogDropped;
    return {
      snapshot: this.#merge.merged(),
      missing: missing.map((s) => s.index),
      accessLogDropped: this.#config.accessLog ? dropped : null,
    };
  }

  #live(): Slot[] {
    return this.#slots.filter((s) => s.worker !== null && s.readySince > 0);
  }

  /**
   * Has each worker drain (stop accepting, finish what is under way within `timeoutMs`).
   * Resolves with how many requests, streams and connections the workers cut.
   */
  drain(timeoutMs: number): Promise<number> {
    return this.#stop({ type: "drain", timeoutMs }, timeoutMs + CLOSE_TIMEOUT_MS);
  }

  /** Stops every worker (their connections close). */
  async close(): Promise<void> {
    await this.#stop({ type: "close" }, CLOSE_TIMEOUT_MS);
  }

  /** Ends worker `index` at once, as a crash would (tests): it is logged and started again. */
  kill(index: number): void {
    const s = this.#slots[index];
    if (s?.worker) this.#failed(s, "killed");
  }

  async #stop(m: ToProxyWorker, waitMs: number): Promise<number> {
    if (this.#closed) return 0;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#feed.close();
    this.#udp?.close();
    const closing = this.#slots.map(async (s) => {
      if (s.timer !== null) clearTimeout(s.timer);
      s.timer = null;
      const w = s.worker;
      if (w === null) return 0;
      s.closed = Promise.withResolvers();
      w.postMessage(m);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const cut = await Promise.race([
        s.closed.promise,
        new Promise<number>((resolve) => timer = setTimeout(() => resolve(0), waitMs)),
      ]);
      clearTimeout(timer);
      w.terminate();
      s.worker = null;
      s.started?.reject(new Error("proxy: closed while starting"));
      return cut;
    });
    const cuts = await Promise.all(closing);
    this.#reports.endAll();
    this.#metrics.endAll();
    this.#reopens.endAll();
    return cuts.reduce((a, b) => a + b, 0);
  }

  /** Starts the worker of a slot; resolves once it listens. */
  #spawn(s: Slot): Promise<void> {
    const w = new Worker(new URL("./proxy_worker.ts", import.meta.url), {
      type: "module",
      name: `proxy-${s.index}`,
    });
    s.worker = w;
    s.readySince = 0;
    const started = s.started = Promise.withResolvers<void>();
    started.promise.catch(() => {}); // a restart nobody awaits
    w.onmessage = (e: MessageEvent<FromProxyWorker>) => {
      if (s.worker === w) this.#onMessage(s, e.data); // not a stopped one's late messages
    };
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault(); // a worker's error must not end the agent
      this.#failed(s, e.message || "uncaught error");
    };
    w.onmessageerror = () => this.#failed(s, "a message could not be read");
    const now = Date.now();
    const ejections = [...this.#ejections].filter(([, until]) => until > now)
      .map(([key, until]) => ({ key, ms: until - now }));
    let certs: ServedCert[] = [];
    try {
      certs = this.#o.certs();
    } catch (e) {
      this.#o.log(`proxy: worker ${s.index} starts without certificates: ${errorText(e)}`);
    }
    // Again before the new worker counts in the row: whatever its predecessor wrote after its
    // failure was seen (it ran on until terminated) goes too.
    this.#connSlots.reclaim(s.index);
    this.#post(s, {
      type: "start",
      config: this.#config,
      workers: this.#slots.length,
      index: s.index,
      routes: this.#sender.full(),
      certs,
      challenges: this.#o.store.acme.challenges(),
      ejections,
      rateBuckets: processRateBuckets().buffer,
      connSlots: this.#connSlots.buffer,
    });
    return started.promise;
  }

  #onMessage(s: Slot, m: FromProxyWorker): void {
    switch (m.type) {
      case "ready":
        s.readySince = Date.now();
        // Port 0 became a real port: the other workers (and restarts) bind that one.
        this.#config = { ...this.#config, listen: m.listen, https: m.https };
        s.started?.resolve();
        s.started = null;
        return;
      case "failed":
        return this.#failed(s, m.error);
      case "resync":
        return this.#post(s, this.#sender.full());
      case "ejected": {
        const now = Date.now();
        const until = now + m.ms;
        // The other workers already know an ejection that lasts as long: nothing to tell them.
        if ((this.#ejections.get(m.key) ?? 0) >= until) return;
        this.#ejections.set(m.key, until);
        for (const [k, u] of this.#ejections) {
          if (u <= now) this.#ejections.delete(k);
        }
        for (const other of this.#slots) {
          if (other !== s) this.#post(other, { type: "eject", key: m.key, ms: m.ms });
        }
        return;
      }
      case "report":
        return this.#reports.answer(m.id, s, m.report);
      case "metrics":
        // Kept at once, not after the gather: a worker that fails meanwhile retires these, its
        // newest, so that no scrape counts it twice or a later one less.
        this.#merge.update(s.index, m.snapshot);
        s.accessLogDropped = m.accessLogDropped ?? 0;
        return this.#metrics.answer(m.id, s, m.snapshot);
      case "access-log.reopened":
        return this.#reopens.answer(m.id, s, m.error ?? "");
      case "log":
        return this.#o.log(m.line);
      case "closed":
        return s.closed?.resolve(m.cut ?? 0);
    }
  }

  /** A worker failed: one log line, then it is started again after its wait. */
  #failed(s: Slot, why: string): void {
    const w = s.worker;
    if (w === null || this.#closed) return;
    w.terminate();
    s.worker = null;
    this.#connSlots.reclaim(s.index); // its requests are gone: their slots serve the other workers
    const started = s.started;
    s.started = null;
    if (started !== null && this.#starting) {
      // At start: the proxy cannot start (a port taken, say); start() says why.
      return started.reject(new Error(why));
    }
    started?.resolve(); // the ports are open in the other workers
    this.#reports.gone(s);
    this.#metrics.gone(s);
    this.#reopens.gone(s);
    this.#merge.stopped(s.index); // its last counts stay in the sums
    this.#stoppedAccessLogDropped += s.accessLogDropped;
    s.accessLogDropped = 0;
    if (s.readySince > 0 && Date.now() - s.readySince >= RESTART_RESET_MS) {
      s.restartMs = this.#o.restartMs ?? RESTART_MS;
    }
    s.readySince = 0;
    const ms = s.restartMs;
    s.restartMs = Math.min(ms * 2, RESTART_MS_MAX);
    this.#o.log(`proxy: worker ${s.index} stopped (${why}); starting it again in ${ms} ms`);
    s.timer = setTimeout(() => {
      s.timer = null;
      if (!this.#closed) void this.#spawn(s).catch(() => {});
    }, ms);
  }

  #broadcast(m: ToProxyWorker): void {
    for (const s of this.#slots) this.#post(s, m);
  }

  #post(s: Slot, m: ToProxyWorker): void {
    try {
      s.worker?.postMessage(m);
    } catch (e) {
      this.#failed(s, `a message could not be sent: ${errorText(e)}`);
    }
  }
}
