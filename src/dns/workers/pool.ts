/**
 * DnsWorkerPool: DNS answered by N worker threads (`--dns-workers N`, N >= 2; README "DNS
 * workers"). The main thread keeps the store's ZoneView (with `--dns-acl`'s filter) and the
 * Forwarder with its response cache, and answers no query itself; each worker (dns_worker.ts)
 * holds a replica of the zone and serves UDP and TCP on the one `--dns` port.
 *
 * - Zone: each worker gets the whole zone (`Zone.rows()`) when it starts, when a rebuilt zone
 *   takes over and when it asks (`resync`: a version gap); every delta applied to the main
 *   thread's zone goes to every worker with the version it follows (`from`).
 * - Port: worker 0 binds first (port 0: any free one), the others bind the port it got, with
 *   SO_REUSEPORT (protocol.ts `UdpPath`: when FFI is not available only worker 0 takes UDP).
 * - Forwarding: a worker relays names outside the zone; the answer (cached here) goes back.
 * - Crashes: an error in a worker (or its end) is logged with one line and the worker started
 *   again after a backoff (RESTART_BACKOFF_MIN_MS doubling to RESTART_BACKOFF_MAX_MS; back to
 *   the minimum after it ran RESTART_STABLE_MS); the other workers keep the port meanwhile.
 * - `drain(timeoutMs)`: every worker stops taking queries and finishes those in flight.
 * - `reconfigure()` (SIGHUP): new TTLs rebuild the main thread's zone, which goes to every
 *   worker with them; new recursors replace the forwarder here, and workers are told whether to
 *   relay at all.
 *
 * @module
 */
import type { HostPort } from "../../lib/host_port.ts";
import { errorText } from "../../lib/error_text.ts";
import { closeUdpFd } from "../../lib/ffi_udp.ts";
import { portProblem } from "../../lib/port_probe.ts";
import { Forwarder } from "../forwarder.ts";
import { dnsChanges, type DnsReload, RetiredForwarders } from "../reload.ts";
import type { DnsOptions } from "../server.ts";
import { parseQuery } from "../wire.ts";
import { ZoneView } from "../zone_view.ts";
import { ZoneFeed } from "./feed.ts";
import { WorkerGather } from "../../lib/worker_gather.ts";
import { addCounts, zeroCounts } from "../dns_metrics.ts";
import type { FromWorker, InitMessage, ToWorker, UdpPath } from "./protocol.ts";

/** First wait before a crashed worker starts again. */
export const RESTART_BACKOFF_MIN_MS = 100;
/** Longest wait before a crashed worker starts again. */
export const RESTART_BACKOFF_MAX_MS = 5000;
/** A worker that ran this long before it crashed starts again after the shortest wait. */
export const RESTART_STABLE_MS = 10_000;
/** Most workers (`--dns-workers`). */
export const DNS_WORKERS_MAX = 64;
/** Longest wait for the workers' query counts (one that does not answer is left out). */
export const METRICS_TIMEOUT_MS = 1000;
/** Relayed queries one worker may have waiting on the forwarder. */
export const WORKER_FORWARD_INFLIGHT_MAX = 1024;

export interface DnsWorkerPoolOptions extends DnsOptions {
  /** Worker threads, 2..DNS_WORKERS_MAX. */
  workers: number;
  /** How workers take UDP (default "ffi", falling back as protocol.ts says). */
  udp?: InitMessage["udp"];
  /** The worker module (default dns_worker.ts; tests may give another). */
  workerUrl?: URL;
}

interface Slot {
  index: number;
  worker: Worker | null;
  /** When it last reported listening (ms, Date.now()). */
  since: number;
  backoffMs: number;
  timer: ReturnType<typeof setTimeout> | null;
  udp: UdpPath | null;
  /** Settles the start under way (listening, or failed). */
  started: ((error: string | null) => void) | null;
  /** Resolves a drain waiting for this worker's `closed`. */
  drained: ((cut: number) => void) | null;
  /**
   * The slot's FFI UDP socket, open across restarts (a worker ended by terminate() cannot close
   * it, and left open it would keep its share of the port's datagrams): the next worker of the
   * slot serves it; close() closes it.
   */
  udpFd: number | null;
  /** The query counts its worker last gave (`queryCounts`); null: none yet. */
  counts: number[] | null;
}

export class DnsWorkerPool {
  #opts: DnsWorkerPoolOptions;
  readonly #view: ZoneView;
  #forwarder: Forwarder | null;
  /** Forwarders replaced by reconfigure(). */
  readonly #retired = new RetiredForwarders();
  readonly #slots: Slot[];
  readonly #url: URL;
  #feed: ZoneFeed | null = null;
  #port = 0;
  #closed = false;
  #restarts = 0;
  /** Why worker 0 could not take UDP through FFI at start (logged once); null: it did. */
  #ffiWhy: string | null = null;
  #address: { udp: HostPort; tcp: HostPort } | null = null;
  readonly #gather = new WorkerGather<Slot, number[]>();
  /** The last counts of workers that stopped: kept in the sums, so that counters never drop. */
  readonly #stoppedCounts = zeroCounts();

  constructor(opts: DnsWorkerPoolOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 2 || opts.workers > DNS_WORKERS_MAX) {
      throw new Error(`dns: workers ${opts.workers}: expected an integer in 2..${DNS_WORKERS_MAX}`);
    }
    this.#opts = opts;
    this.#url = opts.workerUrl ?? new URL("./dns_worker.ts", import.meta.url);
    this.#forwarder = opts.recursors.length === 0
      ? null
      : new Forwarder(opts.recursors, { random: opts.random, ...opts.forward });
    const { store, visible } = opts;
    this.#view = new ZoneView({ store, zone: this.#zoneOptions(), visible });
    this.#slots = Array.from({ length: opts.workers }, (_, index) => ({
      index,
      worker: null,
      since: 0,
      backoffMs: RESTART_BACKOFF_MIN_MS,
      timer: null,
      udp: null,
      started: null,
      drained: null,
      udpFd: null,
      counts: null,
    }));
  }

  /** The main thread's zone view (the workers hold replicas of its zone). */
  get view(): ZoneView {
    return this.#view;
  }

  /** How each worker serves UDP (null while it starts). */
  get udpPaths(): (UdpPath | null)[] {
    return this.#slots.map((s) => s.udp);
  }

  /** Why worker 0 could not take UDP through FFI at start; null: it did (or was not asked to). */
  get udpWhy(): string | null {
    return this.#ffiWhy;
  }

  /** Workers started again after a crash so far. */
  get restarts(): number {
    return this.#restarts;
  }

  /** The bound addresses; throws before start(). */
  get address(): { udp: HostPort; tcp: HostPort } {
    if (this.#address === null) throw new Error("dns: address read before start()");
    return this.#address;
  }

  /** Builds the zone, starts worker 0, then the others on its port. Rejects with one line. */
  async start(): Promise<void> {
    this.#feed = new ZoneFeed(this.#view, (m) => {
      for (const s of this.#slots) this.#post(s, m);
    });
    await this.#view.start();
    const { host, port } = this.#opts.listen;
    try {
      const problem = await portProblem({ host, port }, { udp: true });
      if (problem !== null) throw new Error(`dns: cannot listen on ${host}:${port}: ${problem}`);
      this.#port = port;
      await this.#spawn(this.#slots[0]!);
      await Promise.all(this.#slots.slice(1).map((s) => this.#spawn(s)));
    } catch (e) {
      await this.close();
      throw e;
    }
    this.#address = { udp: { host, port: this.#port }, tcp: { host, port: this.#port } };
    if (this.#ffiWhy !== null) {
      console.error(
        `dns: UDP through FFI not available (${this.#ffiWhy}): worker 0 alone takes UDP, with ` +
          `node:dgram (runtime UDP sockets cannot share a port); all ${this.#slots.length} take TCP`,
      );
    }
  }

  /** Stops every worker at once, the zone view and the forwarder. */
  close(): Promise<void> {
    this.#closed = true;
    this.#feed?.close();
    this.#view.close();
    this.#forwarder?.close();
    this.#retired.close();
    for (const s of this.#slots) {
      this.#stop(s);
      if (s.udpFd !== null) closeUdpFd(s.udpFd);
      s.udpFd = null;
    }
    return Promise.resolve();
  }

  /**
   * Takes over settings a SIGHUP reloaded (README "Shutdown and reload"), as DnsServer does:
   * resolves once the main thread's zone answers with the new TTLs (the workers' follow as
   * their next message arrives).
   */
  reconfigure(o: DnsReload): Promise<void> {
    const opts = this.#opts;
    const changed = dnsChanges(opts, o);
    this.#opts = { ...opts, ttl: o.ttl, serviceTtl: o.serviceTtl, recursors: o.recursors };
    if (changed.recursors) {
      const old = this.#forwarder;
      if (old !== null) this.#retired.retire(old, opts.recursors.length, opts.forward?.timeoutMs);
      this.#forwarder = o.recursors.length === 0
        ? null
        : new Forwarder(o.recursors, { random: opts.random, ...opts.forward });
      const on = this.#forwarder !== null;
      for (const s of this.#slots) this.#post(s, { type: "recursion", on });
    }
    if (!changed.ttls) return Promise.resolve();
    return this.#view.reconfigure(this.#zoneOptions());
  }

  /**
   * Every worker stops taking queries and finishes those in flight for up to `timeoutMs`; then
   * everything closes. Resolves with how many queries the workers cut.
   */
  async drain(timeoutMs: number): Promise<number> {
    const waits = this.#slots.map((s) => {
      if (s.worker === null) return Promise.resolve(0);
      const done = new Promise<number>((r) => s.drained = r);
      this.#post(s, { type: "drain", timeoutMs });
      return done;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A worker that does not report back within the timeout (and a margin) is stopped anyway.
    const late = new Promise<null>((r) => timer = setTimeout(() => r(null), timeoutMs + 1000));
    const cuts = await Promise.race([Promise.all(waits), late]);
    clearTimeout(timer);
    await this.close();
    return cuts === null ? 0 : cuts.reduce((a, b) => a + b, 0);
  }

  /**
   * The queries the workers answered by rcode and type (dns_metrics.ts layout), summed: each
   * running worker is asked; one that does not answer within METRICS_TIMEOUT_MS is named in
   * `missing` and counted with the last counts it gave; workers that stopped count with theirs.
   */
  async queryCounts(): Promise<{ counts: number[]; missing: number[] }> {
    const live = this.#slots.filter((s) => s.worker !== null && s.udp !== null);
    const { missing } = await this.#gather.ask(
      live,
      (s, id) => this.#post(s, { type: "metrics", id }),
      METRICS_TIMEOUT_MS,
    );
    const sum = addCounts(zeroCounts(), this.#stoppedCounts);
    for (const s of this.#slots) if (s.counts !== null) addCounts(sum, s.counts);
    return { counts: sum, missing: missing.map((s) => s.index) };
  }

  /** Ends worker `index` as a crash would (tests: a worker killed while queries flow). */
  terminateWorker(index: number): void {
    const s = this.#slots[index];
    if (s?.worker !== null && s !== undefined) this.#crashed(s, "was terminated");
  }

  #zoneOptions(): InitMessage["zone"] {
    const { domain, datacenter, edgeDomain, ttl, serviceTtl } = this.#opts;
    return { domain, datacenter, edgeDomain, ttl, serviceTtl };
  }

  /** Starts a slot's worker; resolves when it listens, rejects with its start error. */
  #spawn(s: Slot): Promise<void> {
    const worker = new Worker(this.#url, { type: "module", name: `dns-${s.index}` });
    s.worker = worker;
    s.udp = null;
    const started = new Promise<void>((resolve, reject) => {
      s.started = (error) => error === null ? resolve() : reject(new Error(error));
    });
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.#onMessage(s, worker, e.data);
    worker.onerror = (e) => {
      e.preventDefault(); // a worker's error must not end the process
      if (s.worker === worker) this.#crashed(s, `failed: ${e.message}`);
    };
    worker.onmessageerror = () => {
      if (s.worker === worker) this.#crashed(s, "sent a message that could not be read");
    };
    const init: InitMessage = {
      type: "init",
      index: s.index,
      host: this.#opts.listen.host,
      port: this.#port,
      udp: this.#opts.udp ?? "ffi",
      dgramFallback: s.index === 0,
      zone: this.#zoneOptions(),
      recursion: this.#forwarder !== null,
      forwardInflightMax: WORKER_FORWARD_INFLIGHT_MAX,
      udpFd: s.udpFd ?? undefined,
    };
    worker.postMessage(init);
    worker.postMessage(this.#feed!.full());
    return started;
  }

  #onMessage(s: Slot, worker: Worker, m: FromWorker): void {
    if (s.worker !== worker) return;
    switch (m.type) {
      case "listening":
        if (s.index === 0) this.#port = m.port;
        s.udp = m.udp;
        s.udpFd = m.udpFd ?? s.udpFd;
        s.since = Date.now();
        if (s.index === 0 && this.#address === null) this.#ffiWhy = m.why ?? null;
        s.started?.(null);
        s.started = null;
        return;
      case "failed":
        if (s.started !== null) {
          s.started(m.error);
          s.started = null;
          this.#stop(s);
        } else this.#crashed(s, `failed: ${m.error}`);
        return;
      case "resync":
        this.#post(s, this.#feed!.full());
        return;
      case "forward":
        void this.#forward(s, worker, m.id, m.query);
        return;
      case "counts":
        // Kept at once, not after the gather: a worker that crashes meanwhile retires these,
        // its newest, so that no scrape counts it twice or a later one less.
        s.counts = m.counts;
        this.#gather.answer(m.id, s, m.counts);
        return;
      case "closed":
        s.drained?.(m.cut ?? 0);
        s.drained = null;
        return;
    }
  }

  async #forward(s: Slot, worker: Worker, id: number, query: Uint8Array): Promise<void> {
    let response: Uint8Array | null = null;
    try {
      const q = parseQuery(query);
      if (this.#forwarder !== null && q !== null && "name" in q) {
        response = await this.#forwarder.forward(q);
      }
    } catch (e) {
      console.error(`dns: forwarding for worker ${s.index} failed: ${errorText(e)}`);
    }
    if (s.worker === worker) this.#post(s, { type: "forwarded", id, response });
  }

  #post(s: Slot, m: ToWorker): void {
    try {
      s.worker?.postMessage(m);
    } catch (e) {
      console.error(`dns: message to worker ${s.index} failed: ${errorText(e)}`);
    }
  }

  #stop(s: Slot): void {
    if (s.timer !== null) clearTimeout(s.timer);
    s.timer = null;
    s.worker?.terminate();
    s.worker = null;
    s.udp = null;
    this.#gather.gone(s);
    if (s.counts !== null) addCounts(this.#stoppedCounts, s.counts);
    s.counts = null;
    s.drained?.(0);
    s.drained = null;
  }

  /** Logs the crash and starts the worker again after its backoff. */
  #crashed(s: Slot, why: string): void {
    const startup = s.started;
    s.started = null;
    this.#stop(s);
    if (startup !== null) {
      startup(`dns worker ${s.index} ${why}`);
      return;
    }
    if (this.#closed) return;
    if (Date.now() - s.since >= RESTART_STABLE_MS) s.backoffMs = RESTART_BACKOFF_MIN_MS;
    const wait = s.backoffMs;
    s.backoffMs = Math.min(wait * 2, RESTART_BACKOFF_MAX_MS);
    console.error(`dns: worker ${s.index} ${why}; starting it again in ${wait} ms`);
    s.timer = setTimeout(() => {
      s.timer = null;
      if (this.#closed) return;
      this.#restarts++;
      this.#spawn(s).catch((e) => {
        if (!this.#closed && s.worker === null) this.#crashed(s, errorText(e));
      });
    }, wait);
  }
}
