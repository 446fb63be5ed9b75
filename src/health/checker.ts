/**
 * HealthChecker: runs the active checks of this node's instances and proposes a `check` command
 * when an instance's status (or the reason shown) really changes.
 *
 * It follows the store: on start it reads this node's instances, then it applies the rows of this
 * node that each change wrote (node_items.ts: O(rows written), no rescan; a reset reads them all
 * again), starting, restarting and stopping only the checks of those rows. Each instance with a
 * runnable check gets one timer: the first run starts after a random delay of up to
 * START_JITTER_MS_MAX (capped by the interval), each next run `intervalMs` after the previous one
 * finished, so runs of one check never overlap. A changed address, port or definition restarts the
 * check (fresh streak, new jitter); a removed instance or check stops it and aborts a run in flight.
 * At most `concurrencyMax` runs are in flight; due checks beyond that wait in a FIFO. UDP checks
 * have their own slots (`udpConcurrencyMax`) and FIFO: a healthy UDP service is often silent, so
 * its run lasts its whole timeout, and 32 of them would hold every slot while HTTP and TCP runs
 * take milliseconds. Their wait is cheap: one fd, and a poll(2) on one of Deno's blocking-pool
 * threads (at most 512, which file I/O and host lookups share: hence a cap, below it).
 *
 * The checker writes one health source only, the instance's check result; the Docker verdict
 * and node liveness are other writers' fields, combined with it by the store's instanceHealth.
 *
 * A failed proposal (no leader, cluster closing) is logged once per distinct reason and retried on
 * the next run: the result is judged against the store again, which still holds the old status.
 *
 * About 540 lines: following the store's rows, the timers and the run slots all act on the same
 * entries; split apart, each would reach into the others' state.
 *
 * @module
 */
import type { Proposed } from "../cluster/types.ts";
import type { Change, Command, Instance, NodeInfo, RegisteredCheck, Store } from "../store/mod.ts";
import {
  FAILURES_BEFORE_CRITICAL_DEFAULT,
  judge,
  NEW_STREAK,
  type Streak,
  STREAK_MAX,
  SUCCESSES_BEFORE_PASSING_DEFAULT,
} from "./hysteresis.ts";
import {
  describeTarget,
  type HttpGet,
  probe,
  type ProbeResult,
  type ProbeTarget,
  REAL_TIMERS,
  targetOf,
  targetOfRegistered,
  type TcpConnect,
  type Timers,
} from "./probe.ts";
import type { GrpcHealthCall } from "./grpc_health.ts";
import { defaultUdpProber, type UdpProber } from "./udp_check.ts";
import { errorText } from "../lib/error_text.ts";
import { type ItemsChanged, NodeItems } from "./node_items.ts";

/** Start of the entry ids of registered checks (instance ids never contain a NUL). */
const REGISTERED = "\u0000";

/** Most check runs in flight at once (UDP checks apart). */
export const CONCURRENCY_MAX_DEFAULT = 32;
/** Most UDP check runs in flight at once (module comment). */
export const UDP_CONCURRENCY_MAX_DEFAULT = 128;
/** Most checks one node runs; instances beyond this (in id order) are not checked. */
export const CHECKS_MAX = 4096;
/** Longest wait for the cluster to commit a proposed status change (retried on the next run). */
export const PROPOSE_WAIT_MS_MAX = 10_000;
/** Upper bound of the random delay before a check's first run. */
export const START_JITTER_MS_MAX = 1000;

export interface HealthOptions {
  store: Store;
  /** Commits a command through the cluster (`Cluster.propose`). */
  propose: (cmd: Command) => Promise<Proposed>;
  /** Only instances with `instance.node === node` are checked. */
  node: string;
  /** Where one-line notices go (default: console.error). */
  log?: (line: string) => void;
  /** Most runs in flight at once, UDP checks apart (default CONCURRENCY_MAX_DEFAULT = 32). */
  concurrencyMax?: number;
  /** Most UDP check runs in flight at once (default UDP_CONCURRENCY_MAX_DEFAULT = 128). */
  udpConcurrencyMax?: number;
  /** Most checks this node runs (default CHECKS_MAX); the first ones in id order run. */
  checksMax?: number;
  /** Consecutive passes before a failing instance turns passing (default 1). */
  successesBeforePassing?: number;
  /** Consecutive failures before a passing instance turns warning/critical (default 2). */
  failuresBeforeCritical?: number;
  /** Timer functions (default: the global setTimeout/clearTimeout). */
  timers?: Timers;
  /** Random numbers in [0, 1) for the start jitter (default Math.random). */
  random?: () => number;
  /** HTTP GET used by http checks (default: node:http, no keep-alive, body unread). */
  httpGet?: HttpGet;
  /** TCP connect used by tcp checks (default: node:net). */
  tcpConnect?: TcpConnect;
  /** gRPC health call used by grpc checks (default: node:http2, one session per run). */
  grpcHealth?: GrpcHealthCall;
  /** How udp checks send (default: a kernel-connected FFI socket, else node:dgram). */
  udp?: UdpProber;
}

/** What the checker is doing for one instance, for status pages and tests. */
export interface CheckInfo {
  id: string;
  /** `HTTP GET /health` or `TCP connect 10.0.0.5:80`. */
  check: string;
  intervalMs: number;
  timeoutMs: number;
  successes: number;
  failures: number;
  /** A run is in flight (or waiting for a concurrency slot). */
  running: boolean;
}

/** One check this node should run. */
interface Wanted {
  id: string;
  checkId: string | null;
  target: ProbeTarget | null;
  check: { intervalMs: number; timeoutMs: number };
  /** A registered check as stored (its last result); null for an instance's own check. */
  registered: RegisteredCheck | null;
}

/** An instance's own check, then its registered HTTP/TCP/gRPC/UDP checks, targets as registered. */
function wantedOfInstance(i: Instance): Wanted[] {
  const out: Wanted[] = [];
  if (i.check !== null) {
    out.push({
      id: i.id,
      checkId: null,
      target: targetOf(i, i.check),
      check: i.check,
      registered: null,
    });
  }
  for (const c of i.checks ?? []) pushRegistered(out, c);
  return out;
}

/** The node's registered HTTP/TCP/gRPC/UDP checks. */
function wantedOfNode(n: NodeInfo): Wanted[] {
  const out: Wanted[] = [];
  for (const c of n.checks ?? []) pushRegistered(out, c);
  return out;
}

function pushRegistered(out: Wanted[], c: RegisteredCheck): void {
  const target = targetOfRegistered(c);
  if (target !== null) {
    out.push({ id: REGISTERED + c.id, checkId: c.id, target, check: c, registered: c });
  }
}

interface Entry {
  /** The instance id (its own check), or REGISTERED + the CheckID (a registered check). */
  id: string;
  /** The CheckID of a registered check; null for an instance's own check. */
  checkId: string | null;
  /** Address, port and definition; a different key restarts the check. */
  key: string;
  /** The item it was last wanted as (the same object: nothing of it changed since). */
  wanted: Wanted;
  target: ProbeTarget;
  intervalMs: number;
  timeoutMs: number;
  streak: Streak;
  timer: unknown;
  /** The run slots it takes (UDP checks have their own). */
  slots: Slots;
  queued: boolean;
  run: AbortController | null;
  stopped: boolean;
  /** Last proposal problem logged, so a persistent one is logged once. */
  lastProblem: string | null;
}

/** Runs in flight, at most `max`, and the FIFO of due checks waiting for one. */
interface Slots {
  readonly max: number;
  running: number;
  readonly queue: Entry[];
}

function clampInt(v: number | undefined, def: number, min: number, max: number, what: string) {
  const n = v ?? def;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`health: ${what} must be an integer in ${min}..${max}, got ${n}`);
  }
  return n;
}

export class HealthChecker {
  readonly #store: Store;
  readonly #propose: (cmd: Command) => Promise<Proposed>;
  readonly #node: string;
  readonly #log: (line: string) => void;
  readonly #slots: Slots;
  readonly #udpSlots: Slots;
  readonly #checksMax: number;
  readonly #thresholds: { successesBeforePassing: number; failuresBeforeCritical: number };
  readonly #timers: Timers;
  readonly #random: () => number;
  readonly #httpGet: HttpGet | undefined;
  readonly #tcpConnect: TcpConnect | undefined;
  readonly #grpcHealth: GrpcHealthCall | undefined;
  /** Chosen at the first UDP run unless given (udpProber()). */
  #udp: UdpProber | undefined;
  #udpUnseenLogged = false;

  readonly #entries = new Map<string, Entry>();
  /** Every check this node's rows ask for; `#entries` runs the first `checksMax` of them. */
  readonly #wanted: NodeItems<Wanted>;
  /** The last reconcile ran the first CHECKS_MAX only (more were wanted). */
  #overLimit = false;
  /** Over the limit: the id of the last item run (rows after its owner's change nothing). */
  #boundary: string | null = null;
  readonly #inFlight = new Set<Promise<void>>();
  #unsubscribe: (() => void) | null = null;
  #started = false;
  #closed = false;
  #overLimitLogged = false;
  readonly #skippedLogged = new Set<string>();

  constructor(o: HealthOptions) {
    this.#store = o.store;
    this.#propose = o.propose;
    this.#node = o.node;
    this.#log = o.log ?? ((line) => console.error(line));
    const max = clampInt(
      o.concurrencyMax,
      CONCURRENCY_MAX_DEFAULT,
      1,
      CHECKS_MAX,
      "concurrencyMax",
    );
    const udpMax = clampInt(
      o.udpConcurrencyMax,
      UDP_CONCURRENCY_MAX_DEFAULT,
      1,
      CHECKS_MAX,
      "udpConcurrencyMax",
    );
    this.#slots = { max, running: 0, queue: [] };
    this.#udpSlots = { max: udpMax, running: 0, queue: [] };
    this.#checksMax = clampInt(o.checksMax, CHECKS_MAX, 1, CHECKS_MAX, "checksMax");
    this.#thresholds = {
      successesBeforePassing: clampInt(
        o.successesBeforePassing,
        SUCCESSES_BEFORE_PASSING_DEFAULT,
        1,
        STREAK_MAX,
        "successesBeforePassing",
      ),
      failuresBeforeCritical: clampInt(
        o.failuresBeforeCritical,
        FAILURES_BEFORE_CRITICAL_DEFAULT,
        1,
        STREAK_MAX,
        "failuresBeforeCritical",
      ),
    };
    this.#timers = o.timers ?? REAL_TIMERS;
    this.#random = o.random ?? Math.random;
    this.#httpGet = o.httpGet;
    this.#tcpConnect = o.tcpConnect;
    this.#grpcHealth = o.grpcHealth;
    this.#udp = o.udp;
    this.#wanted = new NodeItems({
      node: o.node,
      ofInstance: wantedOfInstance,
      ofNode: wantedOfNode,
    });
  }

  /** Scans the store and follows its changes from now on. Calling it again does nothing. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#unsubscribe = this.#store.subscribe((c) => this.#onChange(c));
    this.#sync(null);
  }

  /** Stops every timer, aborts runs in flight and waits for them to settle. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    for (const e of this.#entries.values()) this.#stop(e);
    this.#entries.clear();
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** The checks this node runs now, in id order. */
  checks(): CheckInfo[] {
    return [...this.#entries.values()].sort((a, b) => a.id < b.id ? -1 : 1).map((e) => ({
      id: e.checkId === null ? e.id : `check:${e.checkId}`,
      check: describeTarget(e.target),
      intervalMs: e.intervalMs,
      timeoutMs: e.timeoutMs,
      successes: e.streak.successes,
      failures: e.streak.failures,
      running: e.run !== null || e.queued,
    }));
  }

  #onChange(c: Change): void {
    if (c.reset || c.instances.length > 0 || c.nodes.length > 0) this.#sync(c);
  }

  /**
   * Brings the timers in line with this node's rows: all of them (`c` null: start), or those
   * `c` wrote.
   */
  #sync(c: Change | null): void {
    if (this.#closed) return;
    let delta: ItemsChanged<Wanted>;
    try {
      delta = c === null ? this.#wanted.load(this.#store) : this.#wanted.apply(c, this.#store);
    } catch (e) {
      this.#log(`health: cannot read instances: ${errorText(e)}`);
      return;
    }
    const incremental = c !== null && !c.reset;
    if (incremental && delta.changed.length === 0 && delta.gone.length === 0) return;
    const max = this.#checksMax;
    const over = this.#wanted.size > max;
    if (over && !this.#overLimitLogged) {
      this.#log(
        `health: ${this.#wanted.size} instances have checks; only the first ${max} are checked`,
      );
      this.#overLimitLogged = true;
    }
    if (over || this.#overLimit) {
      const boundary = this.#boundary;
      this.#overLimit = over;
      if (
        incremental && boundary !== null &&
        delta.owners.every((o) => this.#wanted.ownerAfter(o, boundary))
      ) {
        // Only rows after the last item run changed: the first `max` are the same items. (Back
        // under the limit so, there are exactly `max` left.)
        if (!over) this.#boundary = null;
        return;
      }
      // Which checks are in the first `max` may have moved: look at all of those (bounded); an
      // item that is the same object as when its check started changed nothing.
      const first = this.#wanted.first(max);
      this.#boundary = over ? first.at(-1)?.id ?? null : null;
      const kept = new Set<string>();
      for (const w of first) {
        if (this.#entries.get(w.id)?.wanted === w || this.#want(w)) kept.add(w.id);
      }
      for (const id of [...this.#entries.keys()]) if (!kept.has(id)) this.#drop(id);
      const skipped = new Set(first.filter((w) => w.target === null).map((w) => w.id));
      for (const id of this.#skippedLogged) if (!skipped.has(id)) this.#skippedLogged.delete(id);
      return;
    }
    for (const id of delta.gone) {
      this.#drop(id);
      this.#skippedLogged.delete(id);
    }
    for (const w of delta.changed) this.#want(w);
  }

  /** Runs `w` (started, or restarted when its target or timing changed); false when skipped. */
  #want(w: Wanted): boolean {
    const { id, checkId, target, check } = w;
    if (target === null) {
      this.#drop(id);
      if (!this.#skippedLogged.has(id)) {
        this.#log(`health: ${id}: check has neither http, grpc, tcp nor udp; nothing to run`);
        this.#skippedLogged.add(id);
      }
      return false;
    }
    this.#skippedLogged.delete(id);
    const key = JSON.stringify([target, check.intervalMs, check.timeoutMs]);
    const old = this.#entries.get(id);
    if (old !== undefined && old.key === key) {
      old.wanted = w;
      return true;
    }
    if (old !== undefined) this.#stop(old);
    const entry: Entry = {
      id,
      checkId,
      key,
      wanted: w,
      target,
      intervalMs: check.intervalMs,
      timeoutMs: check.timeoutMs,
      streak: NEW_STREAK,
      timer: null,
      slots: target.kind === "udp" ? this.#udpSlots : this.#slots,
      queued: false,
      run: null,
      stopped: false,
      lastProblem: null,
    };
    this.#entries.set(id, entry);
    const jitterMs = Math.floor(this.#random() * Math.min(entry.intervalMs, START_JITTER_MS_MAX));
    this.#arm(entry, jitterMs);
    return true;
  }

  /** Stops and forgets the check `id` runs, if any. */
  #drop(id: string): void {
    const e = this.#entries.get(id);
    if (e === undefined) return;
    this.#stop(e);
    this.#entries.delete(id);
  }

  #arm(e: Entry, delayMs: number): void {
    e.timer = this.#timers.setTimeout(() => {
      e.timer = null;
      if (e.stopped) return;
      if (e.slots.running < e.slots.max) this.#run(e);
      else {
        e.queued = true;
        e.slots.queue.push(e);
      }
    }, delayMs);
  }

  #stop(e: Entry): void {
    e.stopped = true;
    if (e.timer !== null) this.#timers.clearTimeout(e.timer);
    e.timer = null;
    if (e.queued) {
      const i = e.slots.queue.indexOf(e);
      if (i >= 0) e.slots.queue.splice(i, 1);
      e.queued = false;
    }
    e.run?.abort();
  }

  #run(e: Entry): void {
    e.slots.running++;
    const ac = new AbortController();
    e.run = ac;
    const p = this.#runOnce(e, ac.signal)
      .catch((err) => this.#log(`health: ${e.id}: check run failed: ${(err as Error).message}`))
      .finally(() => {
        e.slots.running--;
        this.#inFlight.delete(p);
        e.run = null;
        if (!e.stopped && !this.#closed) this.#arm(e, e.intervalMs);
        this.#drain(e.slots);
      });
    this.#inFlight.add(p);
  }

  /** How UDP checks send; says once why they see no ICMP refusals, if they do not. */
  #udpProber(): UdpProber {
    const p = this.#udp ??= defaultUdpProber();
    if (!p.seesRefusals && !this.#udpUnseenLogged) {
      this.#udpUnseenLogged = true;
      this.#log(
        `health: UDP checks see no ICMP port unreachable (a closed port passes as silence): ` +
          (p.why ?? "FFI unavailable"),
      );
    }
    return p;
  }

  #drain(slots: Slots): void {
    while (slots.running < slots.max && !this.#closed) {
      const next = slots.queue.shift();
      if (next === undefined) return;
      next.queued = false;
      if (!next.stopped) this.#run(next);
    }
  }

  async #runOnce(e: Entry, signal: AbortSignal): Promise<void> {
    const result = await probe(e.target, {
      timeoutMs: e.timeoutMs,
      signal,
      timers: this.#timers,
      ...(this.#httpGet ? { httpGet: this.#httpGet } : {}),
      ...(this.#tcpConnect ? { tcpConnect: this.#tcpConnect } : {}),
      ...(this.#grpcHealth ? { grpcHealth: this.#grpcHealth } : {}),
      ...(e.target.kind === "udp" ? { udp: this.#udpProber() } : {}),
    });
    if (e.stopped || this.#closed) return;
    const stored = e.checkId === null
      ? this.#store.instance(e.id)?.checkResult
      : this.#wanted.get(e.id)?.registered ?? undefined;
    if (stored === undefined) return; // deregistered; the next sync stops the entry
    const { streak, propose } = judge(e.streak, result, stored, this.#thresholds);
    e.streak = streak;
    if (propose !== null) await this.#record(e, propose, signal);
  }

  async #record(e: Entry, r: ProbeResult, signal: AbortSignal): Promise<void> {
    let problem: string | null = null;
    try {
      const cmd: Command = e.checkId === null
        ? { type: "check", id: e.id, status: r.status, output: r.output }
        : { type: "check.update", node: this.#node, id: e.checkId, ...r };
      const p = await this.#bounded(this.#propose(cmd), signal);
      if (p === null) return; // stopped while waiting: the result no longer matters
      if (!p.result.ok) problem = `rejected: ${p.result.error ?? "not applied"}`;
    } catch (err) {
      problem = `${(err as Error).message}; retrying on the next run`;
    }
    if (problem !== null && problem !== e.lastProblem) {
      this.#log(`health: ${e.id}: cannot record ${r.status} (${r.output}): ${problem}`);
    }
    e.lastProblem = problem;
  }

  /**
   * Waits for a proposal at most PROPOSE_WAIT_MS_MAX and no longer than the run lives (null when
   * `signal` aborts first), so a cluster that never answers cannot wedge a check or close().
   * A late answer is dropped: the next run judges against the store again.
   */
  #bounded(p: Promise<Proposed>, signal: AbortSignal): Promise<Proposed | null> {
    p.catch(() => {}); // a rejection after we stopped waiting is not an unhandled one
    return new Promise((resolve, reject) => {
      const finish = () => {
        this.#timers.clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        finish();
        resolve(null);
      };
      const timer = this.#timers.setTimeout(() => {
        finish();
        reject(new Error(`no answer within ${PROPOSE_WAIT_MS_MAX}ms`));
      }, PROPOSE_WAIT_MS_MAX);
      signal.addEventListener("abort", onAbort, { once: true });
      if (signal.aborted) onAbort();
      p.then((v) => {
        finish();
        resolve(v);
      }, (err) => {
        finish();
        reject(err);
      });
    });
  }
}
