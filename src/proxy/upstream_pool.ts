/**
 * About 900 lines: the pool, its queue, the per-service caps, passive health and the picks
 * that skip ejected and full targets share every target's state and are read on each request;
 * split, they would reach into each other's fields. Slow-start clocks live in slow_start.ts and
 * the ejections other workers tell of targets without a pool here in remote_ejections.ts.
 *
 * Per-target proxy state that outlives route tables: the keep-alive connection pool, the
 * in-flight count (for least_conn / p2c), passive health and draining.
 *
 * Pool: at most `socketsMax` connections per target (requests beyond it wait, first come first
 * served, at most `queueTimeoutMs` or the request's `queueMs`: then the lease's `onQueueTimeout`
 * answers 503). A service's `berth.http.max-conns` replaces that cap for its targets (`acquire`'s
 * `cap`) and bounds the queue: a request finding it full is answered at once (`onQueueFull`);
 * `pick` prefers a target under its cap. That cap and queue are counted for every proxy worker
 * at once in a shared table (`slots`, conn_slots.ts): each pool counts its busy connections and
 * waiting requests in the target's cell, takes a slot there before it lends a connection, and
 * serves its queue when any worker frees one (only a target the table has no room for is capped
 * per worker: ceil(N / `capShares`)). A request
 * may name its client connection (`owner`, an HTTP/2 connection): one owner holds at most
 * `ownerSocketsMax` connections at once over all targets, its further requests wait for one of
 * them (same deadline), so that a few clients that stop reading cannot take a whole pool. At most `freeSocketsMax` of them idle (default: as many as `socketsMax`). A connection is leased to one request at a
 * time; its listeners are installed once and forward to the current `Lease`, so a pooled request
 * adds and removes none. An idle connection that the instance closes or sends bytes on is
 * dropped.
 *
 * Passive health: `failuresMax` consecutive failures (connect error, reset, timeout) eject a
 * target for `ejectMs`, doubling on each re-ejection up to `ejectMsMax`; any response resets it.
 * An ejected target gets one trial request once the period ends. This state is local: it is
 * never written to the store. With proxy workers each ejection is reported (`onEject`) and the
 * main thread has every other worker apply it (`eject`), so all skip the target alike.
 *
 * Idle keep-alive connections close after `idleTimeoutMs` (never later; up to an eighth of it
 * sooner), found by one sweep over the free connections every eighth of it (no timer per
 * request).
 *
 * Draining: when a table swap drops a target, its pool keeps serving requests already under way
 * for `drainMs`, then its agent and tunnels are destroyed.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import type { Socket } from "node:net";
import type { Target } from "./balancer.ts";
import { lbSettings } from "./lb_settings.ts";
import { SlowStart } from "./slow_start.ts";
import type { ServiceRoute } from "./routes.ts";
import { type EjectedTarget, RemoteEjections } from "./remote_ejections.ts";
import type { PrivateConn } from "./proxy_protocol_out.ts";
import { ConnSlots, GROUP_CELLS } from "./conn_slots.ts";

export type { EjectedTarget } from "./remote_ejections.ts";

export const UPSTREAM_SOCKETS_MAX = 256;
/**
 * Idle connections kept per target: as many as may be open, so that a burst of concurrent
 * requests finds its connections again in the next one (with fewer, each burst over the cap
 * closed and reopened connections: 1 in 8 requests opened one under h2load -c32 -m10);
 * unused ones close after UPSTREAM_IDLE_TIMEOUT_MS.
 */
export const UPSTREAM_FREE_SOCKETS_MAX = UPSTREAM_SOCKETS_MAX;
export const UPSTREAM_IDLE_TIMEOUT_MS = 4_000;
/** How long a request may wait for a connection to a target at `socketsMax` (HAProxy: `timeout queue`). */
export const UPSTREAM_QUEUE_TIMEOUT_MS = 10_000;
/** Connections one client connection (`owner`) may hold at once, over all targets. */
export const UPSTREAM_OWNER_SOCKETS_MAX = 32;
export const FAILURES_MAX = 3;
export const EJECT_MS = 10_000;
export const EJECT_MS_MAX = 120_000;
export const DRAIN_MS = 30_000;
/** Idle sweeps per `idleTimeoutMs`. */
const IDLE_SWEEPS = 8;

/** What the pool tells its observer (the metrics). */
export interface PoolEvents {
  /** Passive health here ejected `t` (not when another proxy worker told of it). */
  ejected(t: Target): void;
  /** A new connection to `t` failed before it connected (refused, unreachable, timeout). */
  connectFailed(t: Target): void;
}

/** What a leased connection's events go to. */
export interface Lease {
  /** The pool lends `conn` to this lease (before any other call). */
  attach(conn: UpstreamConn): void;
  /** The connection is established (at once for a pooled one). */
  onConnect(): void;
  onData(chunk: Buffer): void;
  onDrain(): void;
  /** The connection closed while leased; `error` is what failed it, if anything. */
  onClose(error: Error | null): void;
  /** Waited `queueTimeoutMs` for a connection without getting one (it no longer waits). */
  onQueueTimeout?(): void;
  /** The target is at its `cap` and its queue is full: not queued. */
  onQueueFull?(cap: ConnCap): void;
}

/** A service's cap on one target (`berth.http.max-conns`), for the whole proxy. */
export interface ConnCap {
  /** Requests in flight at once. */
  readonly conns: number;
  /** Requests that may wait for one of them. */
  readonly queue: number;
}

/** A request waiting for a connection to a target at `socketsMax`. */
export interface Waiter {
  lend(conn: UpstreamConn): void;
  readonly lease: Lease;
  readonly owner: object | undefined;
  /** The private connection it needs (PROXY protocol), or undefined. */
  readonly private: PrivateConn | undefined;
  /** When its wait ends (ms, `now`): `queueTimeoutMs`, or the request's shorter `queueMs`. */
  readonly until: number;
}

/** One connection to a target. */
export class UpstreamConn {
  readonly socket: Socket;
  /**
   * The client the connection speaks for (it began with a PROXY header naming it): only requests
   * whose `private.key` is this one may take it. null: any request without one.
   */
  readonly privateKey: string | null;
  lease: Lease | null = null;
  /** Requests it carried before the current one (0: a new connection). */
  uses = 0;
  /** When it last became idle (ms, `now`). */
  idleSince = 0;
  /** The client connection the current lease counts against (`acquire`'s `owner`). */
  owner: object | undefined = undefined;
  error: Error | null = null;

  constructor(socket: Socket, privateKey: string | null = null) {
    this.socket = socket;
    this.privateKey = privateKey;
  }
}

export interface UpstreamPoolOptions {
  /** Open connections per target (requests beyond it queue in the agent). Default 256. */
  socketsMax?: number;
  /** Idle keep-alive connections kept per target. Default 64. */
  freeSocketsMax?: number;
  /** Idle keep-alive connections close after this (below common upstream 5 s). Default 4000. */
  idleTimeoutMs?: number;
  /** Longest wait for a connection at `socketsMax` (checked with the idle sweep). Default 10000. */
  queueTimeoutMs?: number;
  /** Connections one `owner` may hold at once. Default UPSTREAM_OWNER_SOCKETS_MAX. */
  ownerSocketsMax?: number;
  /** Consecutive failures that eject a target. Default 3. */
  failuresMax?: number;
  /** First ejection period; doubles per re-ejection. Default 10000. */
  ejectMs?: number;
  /** Longest ejection period. Default 120000. */
  ejectMsMax?: number;
  /** How long a removed target's connections may finish. Default 30000. */
  drainMs?: number;
  /** Clock in ms. Default Date.now. */
  now?: () => number;
  /** Where ejections are reported. Default console.error. */
  log?: (line: string) => void;
  /** Told of each ejection of a target (by `Target.key`) and its period (proxy workers). */
  onEject?: (key: string, ms: number) => void;
  /**
   * Where the per-service caps (`ConnCap`) are counted for every proxy worker at once
   * (conn_slots.ts; the main thread's table, this worker's row). Default: a table of this
   * pool's own, made on first use.
   */
  slots?: ConnSlots;
  /**
   * Proxy workers sharing the per-service caps: a target the shared table has no cell for
   * (its group full) is capped at 1/N in each pool, rounded up. Default 1.
   */
  capShares?: number;
  /** Told of ejections and failed connects (proxy_metrics.ts counts them). */
  events?: PoolEvents;
}

/** One target's pool and health. */
export class Upstream {
  readonly target: Target;
  /** Every open connection: connecting, leased or idle. */
  readonly conns = new Set<UpstreamConn>();
  /** Idle connections, most recently used last. */
  readonly idle: UpstreamConn[] = [];
  /** Connections allowed: `socketsMax`, or the service's cap (the last `acquire`'s). */
  connsMax = 0;
  /** Requests waiting for a connection (at `connsMax`), first come first served. */
  readonly waiting: Waiter[] = [];
  /** Requests and tunnels in flight. */
  active = 0;
  /** Consecutive failures since the last success. */
  failures = 0;
  /** Ejections since the last success (backoff exponent). */
  ejections = 0;
  /** Ejected while now < ejectedUntil. */
  ejectedUntil = 0;
  readonly tunnels = new Set<Socket>();
  drainTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * Its cell in the shared slot table (claimed on the first capped request, kept until the
   * pool is removed); -1: none.
   */
  cell = -1;
  /** The last request had a cap and the target a cell: its counts are the shared ones. */
  shared = false;
  /** Slots this pool holds in the cell (its leased and connecting connections, when shared). */
  held = 0;
  /** Waiting requests this pool counts in the cell (its `waiting`, when shared). */
  queued = 0;
  /** Waiting for the cell's next change (ConnSlots `wake`). */
  watching = false;
  /**
   * 1 while a leased connection's close is told to its lease: the slot it held in the cell,
   * which a stale retry made from inside `onClose` (`acquire` with `fresh`) takes over.
   */
  slotLeft = 0;
  /** The table had no cell for it since the last idle sweep: not claimed again before the next. */
  cellRefused = false;
  /** Its fallback to a per-worker cap was logged (and its cell, should it get one, is). */
  noCellLogged = false;

  constructor(target: Target) {
    this.target = target;
  }

  destroy(): void {
    if (this.drainTimer !== null) clearTimeout(this.drainTimer);
    this.drainTimer = null;
    this.waiting.length = 0;
    for (const c of this.conns) c.socket.destroy();
    for (const s of this.tunnels) s.destroy();
    this.tunnels.clear();
  }
}

const noop = () => {};

/** Where every upstream connection reads into (see `#open`). */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** One owner's share: connections held (or waited for at a target), requests over its cap. */
interface OwnerShare {
  held: number;
  waiting: { retry(): void; readonly lease: Lease; readonly since: number }[];
}

export class UpstreamPool {
  readonly #upstreams = new Map<string, Upstream>();
  readonly #socketsMax: number;
  readonly #capShares: number;
  readonly #freeSocketsMax: number;
  readonly #idleTimeoutMs: number;
  readonly #queueTimeoutMs: number;
  readonly #ownerSocketsMax: number;
  readonly #owners = new WeakMap<object, OwnerShare>();
  /** Owners with requests waiting over their cap (for the sweep). */
  readonly #ownersWaiting = new Set<OwnerShare>();
  readonly #failuresMax: number;
  readonly #ejectMs: number;
  readonly #ejectMsMax: number;
  readonly #drainMs: number;
  readonly #now: () => number;
  readonly #log: (line: string) => void;
  /** Targets ejected now or recently; lets `isEjected` skip the clock when none is. */
  #ejectedCount = 0;
  /** Ejections told by `eject` before the target has a pool here. */
  readonly #remote = new RemoteEjections();
  readonly #onEject: ((key: string, ms: number) => void) | undefined;
  /** When targets became served again (route changes, ejection ends): slow-start ramps. */
  readonly slowStart: SlowStart;
  readonly #events: PoolEvents | undefined;
  /** The shared per-service caps (conn_slots.ts); made on first use without `slots`. */
  #slots: ConnSlots | null;
  #closed = false;
  #idleSweep: ReturnType<typeof setInterval> | null = null;

  constructor(opts: UpstreamPoolOptions = {}) {
    this.#socketsMax = opts.socketsMax ?? UPSTREAM_SOCKETS_MAX;
    this.#capShares = Math.max(1, Math.floor(opts.capShares ?? 1));
    this.#freeSocketsMax = opts.freeSocketsMax ?? UPSTREAM_FREE_SOCKETS_MAX;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? UPSTREAM_IDLE_TIMEOUT_MS;
    this.#queueTimeoutMs = opts.queueTimeoutMs ?? UPSTREAM_QUEUE_TIMEOUT_MS;
    this.#ownerSocketsMax = opts.ownerSocketsMax ?? UPSTREAM_OWNER_SOCKETS_MAX;
    this.#failuresMax = opts.failuresMax ?? FAILURES_MAX;
    this.#ejectMs = opts.ejectMs ?? EJECT_MS;
    this.#ejectMsMax = opts.ejectMsMax ?? EJECT_MS_MAX;
    this.#drainMs = opts.drainMs ?? DRAIN_MS;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? console.error;
    this.#onEject = opts.onEject;
    // Tests pass one clock for both; otherwise ramps run on the monotonic clock.
    this.slowStart = new SlowStart(opts.now);
    this.#events = opts.events;
    this.#slots = opts.slots ?? null;
  }

  /** The target's upstream, created on first use. */
  get(t: Target): Upstream {
    let u = this.#upstreams.get(t.key);
    if (u === undefined) {
      u = new Upstream(t);
      u.connsMax = this.#socketsMax;
      this.#upstreams.set(t.key, u);
      const until = this.#remote.take(t.key);
      if (until !== undefined && until > this.#now()) this.#ejectUntil(u, until);
      this.#idleSweep ??= setInterval(
        this.sweepIdle,
        Math.max(1, Math.floor(this.#idleTimeoutMs / IDLE_SWEEPS)),
      );
    }
    return u;
  }

  /**
   * Leases a connection to `lease`: an idle one (unless `fresh`), else a new one (still
   * connecting) while under `socketsMax`, else the first one released. With an `owner` at its
   * `ownerSocketsMax`, the request first waits for one of the owner's connections to end.
   * Returns a function that withdraws a request still waiting (a no-op once it got a
   * connection).
   */
  acquire(
    u: Upstream,
    lease: Lease,
    opts: {
      fresh?: boolean;
      owner?: object;
      cap?: ConnCap;
      private?: PrivateConn;
      /** The longest wait, if shorter than `queueTimeoutMs` (the service's timeout). */
      queueMs?: number;
    } = {},
  ): () => void {
    const owner = opts.owner;
    const cap = opts.cap;
    const cell = cap === undefined ? -1 : this.#cellOf(u);
    if (u.shared !== (cell >= 0)) {
      u.shared = cell >= 0;
      this.#sync(u); // the cap came or went: count what is under way (or stop counting it)
    }
    // A service's cap replaces `socketsMax` (even above it: the user asked for that many):
    // counted for every worker in the target's cell, else this worker's share of it.
    const max = u.connsMax = cap === undefined
      ? this.#socketsMax
      : cell >= 0
      ? cap.conns
      : this.#share(cap.conns);
    // Idle connections never hold a slot: while fewer than `max` are busy the request goes on
    // at once (an idle connection of its kind, else a new one, closing another client's idle
    // private connection or the oldest idle one if the slots are all taken), else it queues.
    // With a cell the slot is taken there (none while requests wait anywhere).
    const slots = this.#slots;
    // A stale retry keeps the slot of the connection that just closed under its request (the
    // cell counts it until `#sync`): no new slot, no place behind the others waiting.
    const inherited = opts.fresh === true && cell >= 0 && u.slotLeft > 0;
    if (inherited) u.slotLeft = 0;
    const free = inherited ||
      (cell >= 0 ? slots!.take(cell, max, false) : u.conns.size - u.idle.length < max);
    // A full queue turns the request away before it takes a place of its owner's.
    if (
      cap !== undefined && !free &&
      (cell >= 0 ? !slots!.enqueue(cell, cap.queue) : u.waiting.length >= this.#share(cap.queue))
    ) {
      (lease.onQueueFull ?? lease.onQueueTimeout)?.call(lease, cap);
      return noop;
    }
    if (owner !== undefined) {
      let share = this.#owners.get(owner);
      if (share === undefined) this.#owners.set(owner, share = { held: 0, waiting: [] });
      if (share.held >= this.#ownerSocketsMax) {
        // The slot or queue place taken above is given back: the retry takes its own.
        // (An inherited one goes back with its connection's close, at `#sync`.)
        if (cell >= 0 && !inherited) slots!.adjust(cell, free ? -1 : 0, free ? 0 : -1);
        let inner: (() => void) | null = null;
        const entry = {
          retry: () => inner = this.acquire(u, lease, opts),
          lease,
          since: this.#now(),
        };
        share.waiting.push(entry);
        this.#ownersWaiting.add(share);
        const s = share;
        return () => {
          if (inner !== null) return inner();
          const i = s.waiting.indexOf(entry);
          if (i >= 0) s.waiting.splice(i, 1);
        };
      }
      share.held++;
    }
    const priv = opts.private;
    if (free) {
      // The slot taken in the cell: the connection lent now (an inherited one is counted).
      if (cell >= 0 && !inherited) u.held++;
      this.#lend(this.#connFor(u, priv, opts.fresh === true), lease, owner);
      return noop;
    }
    const waiter: Waiter = {
      lend: (c) => this.#lend(c, lease, owner),
      lease,
      owner,
      private: priv,
      until: this.#now() + Math.min(this.#queueTimeoutMs, opts.queueMs ?? Infinity),
    };
    if (cell >= 0) u.queued++; // the place taken in the cell
    u.waiting.push(waiter);
    if (cell >= 0) this.#serveQueue(u); // and woken when any worker frees a slot
    return () => {
      const i = u.waiting.indexOf(waiter);
      if (i < 0) return;
      u.waiting.splice(i, 1);
      this.#sync(u);
      this.#unown(owner);
    };
  }

  /**
   * A connection for a request that holds a slot: the most recently used idle one of its kind
   * (shared, or private to its client connection; unless `fresh`), else a new one, closing the
   * oldest idle ones first while the target is at `connsMax` connections.
   */
  #connFor(u: Upstream, priv: PrivateConn | undefined, fresh = false): UpstreamConn {
    if (!fresh) {
      // One destroyed since it went idle stays listed until its close event: skip it.
      const key = priv?.key ?? null;
      for (let i = u.idle.length - 1; i >= 0; i--) {
        const idle = u.idle[i]!;
        if (idle.privateKey !== key) continue;
        if (i === u.idle.length - 1) u.idle.pop();
        else u.idle.splice(i, 1);
        if (idle.socket.writable) return idle;
        u.conns.delete(idle); // not counted as busy until its close event (which finds it gone)
        idle.socket.destroy();
      }
    }
    while (u.conns.size >= u.connsMax && u.idle.length > 0) this.#evict(u, u.idle[0]!);
    return this.#open(u, priv);
  }

  /**
   * The target's cell in the shared table, claimed on first use; -1: none (its group is full:
   * claimed again after the next idle sweep, not on every request). Its first fallback to a
   * per-worker cap is logged, and the cell it gets later.
   */
  #cellOf(u: Upstream): number {
    if (u.cell >= 0 || u.cellRefused || this.#closed) return u.cell;
    const slots = this.#slots ??= new ConnSlots(ConnSlots.create(1), 0);
    u.cell = slots.claim(u.target.key);
    const t = u.target;
    if (u.cell < 0) {
      u.cellRefused = true;
      if (u.noCellLogged) return -1;
      u.noCellLogged = true;
      this.#log(
        `proxy: no shared slot for instance ${t.id} (${t.address}:${t.port}; the ` +
          `${GROUP_CELLS} cells of its group in the table of ${slots.cells} are taken): its ` +
          `berth.http.max-conns is counted per proxy worker, ceil(N/${this.#capShares}) in ` +
          `each, until a cell of its group is free (logged once per instance and worker)`,
      );
    } else if (u.noCellLogged) {
      u.noCellLogged = false;
      this.#log(
        `proxy: instance ${t.id} (${t.address}:${t.port}) has a shared slot now: its ` +
          `berth.http.max-conns is counted for every proxy worker together from now on`,
      );
    }
    return u.cell;
  }

  /**
   * Counts in the target's cell what this pool has now: its leased and connecting connections
   * and its waiting requests while `shared`, else nothing. Called after each change of them
   * (a slot taken in the cell is counted there before the connection is lent).
   */
  #sync(u: Upstream): void {
    if (u.cell < 0) return;
    const busy = u.shared ? u.conns.size - u.idle.length : 0;
    const queued = u.shared ? u.waiting.length : 0;
    if (busy === u.held && queued === u.queued) return;
    this.#slots!.adjust(u.cell, busy - u.held, queued - u.queued);
    u.held = busy;
    u.queued = queued;
  }

  /**
   * Serves the target's waiting requests while the cell has slots for them in this worker's
   * turn, then waits for the cell's next change (any worker's freed slot or withdrawn request)
   * to try again.
   */
  #serveQueue(u: Upstream): void {
    const slots = this.#slots;
    if (slots === null || !u.shared || u.watching) return;
    for (let round = 0; round < 3; round++) {
      if (u.cell < 0 || u.waiting.length === 0) return;
      const gen = slots.generation(u.cell);
      while (u.waiting.length > 0 && slots.take(u.cell, u.connsMax, true)) {
        u.held++;
        const w = u.waiting.shift()!;
        w.lend(this.#connFor(u, w.private));
      }
      this.#sync(u);
      if (u.waiting.length === 0) return;
      const woken = slots.wake(u.cell, gen);
      if (woken === null) continue; // changed meanwhile: try again now
      u.watching = true;
      void woken.then(() => {
        u.watching = false;
        if (this.#upstreams.get(u.target.key) === u) this.#serveQueue(u);
      });
      return;
    }
    // The cell keeps changing: try again on the next turn of the event loop.
    u.watching = true;
    setTimeout(() => {
      u.watching = false;
      if (this.#upstreams.get(u.target.key) === u) this.#serveQueue(u);
    }, 1);
  }

  /**
   * Closes an idle connection now and stops counting it (its close event finds it gone), so
   * that a request that cannot use it takes its slot at once.
   */
  #evict(u: Upstream, conn: UpstreamConn): void {
    const i = u.idle.indexOf(conn);
    if (i >= 0) u.idle.splice(i, 1);
    u.conns.delete(conn);
    conn.socket.destroy();
  }

  /** This pool's share of a per-service cap. */
  #share(n: number): number {
    return Math.ceil(n / this.#capShares);
  }

  /** A connection (or a place in a target's queue) counted against `owner` ended. */
  #unown(owner: object | undefined): void {
    if (owner === undefined) return;
    const share = this.#owners.get(owner);
    if (share === undefined) return;
    share.held--;
    const next = share.waiting.shift();
    if (share.waiting.length === 0) this.#ownersWaiting.delete(share);
    next?.retry();
  }

  /**
   * Ends a lease. A `reusable` connection goes to the next waiting request or the idle list;
   * any other is closed.
   */
  release(u: Upstream, conn: UpstreamConn, reusable: boolean): void {
    conn.lease = null;
    conn.uses++;
    const owner = conn.owner;
    conn.owner = undefined;
    this.#handOn(u, conn, reusable);
    if (u.shared) {
      this.#sync(u);
      this.#serveQueue(u);
    }
    this.#unown(owner); // after: a request of the owner's waiting may take this connection
  }

  #handOn(u: Upstream, conn: UpstreamConn, reusable: boolean): void {
    if (!reusable || conn.socket.destroyed || !u.conns.has(conn)) {
      conn.socket.destroy();
      return;
    }
    const next = u.waiting[0];
    // Shared: kept for this worker's next request only in its turn and within the cap (else
    // the slot goes back).
    if (next !== undefined && (!u.shared || this.#slots!.handOn(u.cell, u.connsMax))) {
      const w = u.waiting.shift()!;
      if ((w.private?.key ?? null) === conn.privateKey) return w.lend(conn);
      // Another client's private connection (or a shared one for a private request): it
      // closes, and the waiter gets a connection of its own in its slot.
      conn.lease = null;
      this.#evict(u, conn);
      return w.lend(this.#open(u, w.private));
    }
    if (u.idle.length >= this.#freeSocketsMax) {
      // Full: the oldest idle private connection (PROXY protocol) makes room first. It can
      // serve only its own client connection, most likely gone by now (no other request may
      // take it), while the one released here is in use.
      const old = u.idle.find((c) => c.privateKey !== null);
      if (old === undefined) {
        conn.socket.destroy();
        return;
      }
      this.#evict(u, old);
    }
    conn.idleSince = this.#now();
    u.idle.push(conn);
  }

  #lend(conn: UpstreamConn, lease: Lease, owner: object | undefined): void {
    conn.lease = lease;
    conn.owner = owner;
    lease.attach(conn);
    if (!conn.socket.connecting) lease.onConnect();
  }

  /** A new connection to the target; a private one writes its PROXY header first. */
  #open(u: Upstream, priv?: PrivateConn): UpstreamConn {
    const t = u.target;
    // Reads land in one shared buffer (`onread`): no stream push and 'data' event per read.
    // The callback runs before the next read fills it again; the lease gets a copy.
    const onRead = (n: number, buf: Buffer): boolean => {
      if (conn.lease === null) {
        socket.destroy(); // bytes on an idle connection: not trusted for another request
        return false;
      }
      try {
        const d = Buffer.allocUnsafe(n);
        d.set(buf.subarray(0, n));
        conn.lease.onData(d);
      } catch (e) {
        // A bug must cost this exchange, never the agent.
        socket.destroy(e as Error);
      }
      return true;
    };
    const socket = net.connect({
      host: t.address,
      port: t.port,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: onRead },
    });
    const conn = new UpstreamConn(socket, priv?.key ?? null);
    if (priv !== undefined) socket.write(priv.header);
    u.conns.add(conn);
    let connected = false;
    socket.on("connect", () => {
      connected = true;
      conn.lease?.onConnect();
    });
    socket.on("drain", () => conn.lease?.onDrain());
    socket.on("error", (e: Error) => conn.error ??= e);
    socket.on("end", () => {
      if (conn.lease === null) socket.destroy(); // the instance closed an idle connection
    });
    socket.on("close", () => {
      const counted = u.conns.delete(conn);
      const i = u.idle.indexOf(conn);
      if (i >= 0) u.idle.splice(i, 1);
      const lease = conn.lease;
      conn.lease = null;
      const owner = conn.owner;
      conn.owner = undefined;
      if (!connected && conn.error !== null) this.#events?.connectFailed(t);
      // Its slot, still counted in the cell, is left to a retry made from inside onClose.
      if (u.shared && lease !== null && counted && i < 0) u.slotLeft = 1;
      lease?.onClose(conn.error);
      u.slotLeft = 0;
      // A slot opened: the next waiting request gets a new connection.
      if (u.shared) {
        this.#sync(u);
        this.#serveQueue(u);
      } else if (
        u.waiting.length > 0 && u.conns.size < u.connsMax && this.#upstreams.get(t.key) === u
      ) {
        const w = u.waiting.shift()!;
        w.lend(this.#open(u, w.private));
      }
      this.#unown(owner);
    });
    return conn;
  }

  /**
   * Closes pooled connections idle for `idleTimeoutMs` (less the sweep period, so never
   * later), and ends the wait of requests queued for `queueTimeoutMs` or more. Runs on its own
   * every eighth of `idleTimeoutMs`.
   */
  sweepIdle = (): void => {
    const now = this.#now();
    const before = now - this.#idleTimeoutMs + Math.floor(this.#idleTimeoutMs / IDLE_SWEEPS);
    const queuedBefore = now - this.#queueTimeoutMs;
    for (const u of this.#upstreams.values()) {
      u.cellRefused = false; // a target without a cell tries for one again
      for (const c of u.idle) if (c.idleSince <= before) c.socket.destroy();
      // One target's waiters are one service's requests: their ends come in queue order.
      while (u.waiting.length > 0 && u.waiting[0]!.until <= now) {
        const w = u.waiting.shift()!;
        this.#unown(w.owner);
        w.lease.onQueueTimeout?.();
      }
      if (u.shared) {
        this.#sync(u);
        this.#serveQueue(u); // also a fallback, should a wake-up have been missed
      }
    }
    for (const share of this.#ownersWaiting) {
      while (share.waiting.length > 0 && share.waiting[0]!.since <= queuedBefore) {
        share.waiting.shift()!.lease.onQueueTimeout?.();
      }
      if (share.waiting.length === 0) this.#ownersWaiting.delete(share);
    }
  };

  /** In-flight requests to a target (0 when it has no pool yet). */
  load = (key: string): number => this.#upstreams.get(key)?.active ?? 0;

  /** Whether passive health currently excludes the target. */
  isEjected = (t: Target): boolean => {
    if (this.#ejectedCount === 0 && this.#remote.size === 0) return false;
    const u = this.#upstreams.get(t.key);
    if (u === undefined) return this.#remote.ejected(t.key, this.#now());
    return u.ejectedUntil > this.#now();
  };

  /**
   * Ejects a target for `ms` because another proxy worker did (no log line, no `onEject`): it
   * is skipped until then, failures meanwhile neither re-eject nor report it, and one more
   * failure after the period ejects it again.
   */
  eject(key: string, ms: number): void {
    const until = this.#now() + ms;
    this.slowStart.began(key, ms);
    const u = this.#upstreams.get(key);
    if (u !== undefined) return this.#ejectUntil(u, until);
    this.#remote.set(key, until, this.#now());
  }

  #ejectUntil(u: Upstream, until: number): void {
    if (u.ejectedUntil >= until) return;
    if (u.ejections === 0) {
      this.#ejectedCount++;
      u.ejections = 1;
    }
    u.ejectedUntil = until;
    u.failures = Math.max(u.failures, this.#failuresMax - 1);
    this.slowStart.began(u.target.key, until - this.#now());
  }

  /** The targets ejected now, by instance id. */
  ejected(): EjectedTarget[] {
    const now = this.#now();
    const out: EjectedTarget[] = [];
    for (const u of this.#upstreams.values()) {
      const t = u.target;
      if (u.ejectedUntil > now) {
        out.push({ instance: t.id, address: t.address, port: t.port, untilMs: u.ejectedUntil });
      }
    }
    out.push(...this.#remote.list(now));
    return out.sort((x, y) => x.instance < y.instance ? -1 : x.instance > y.instance ? 1 : 0);
  }

  /**
   * The route's next target not in `tried`, preferring ones not ejected and, with
   * `berth.http.max-conns` and no hash key (a key keeps its instance and queues there), ones
   * under the cap; null if none. `key`: the request's hash key (`hash`, `sticky_cookie`).
   */
  pick(route: ServiceRoute, tried: readonly Target[], key?: string): Target | null {
    const b = route.balancer;
    const isTried = (t: Target) => tried.includes(t);
    const max = key === undefined ? this.#capOf(route) : null;
    if (max !== null) {
      const t = b.pick((t) => isTried(t) || this.isEjected(t) || this.#atCap(t, max));
      if (t !== null) return t;
    }
    return b.pick((t) => isTried(t) || this.isEjected(t), key) ?? b.pick(isTried, key);
  }

  /** The target `pick` would return now for a first try, changing no state (`berth explain`). */
  peek(route: ServiceRoute, key?: string): Target | null {
    const b = route.balancer;
    const max = key === undefined ? this.#capOf(route) : null;
    if (max !== null) {
      const t = b.peek((t) => this.isEjected(t) || this.#atCap(t, max));
      if (t !== null) return t;
    }
    return b.peek(this.isEjected, key) ?? b.peek(undefined, key);
  }

  /** The route's `berth.http.max-conns`, or null without one. */
  #capOf(route: ServiceRoute): number | null {
    if (route.settings.size === 0) return null;
    return lbSettings(route).maxConns;
  }

  /**
   * Whether a new request to `t` would wait under the cap `conns`: every worker's requests in
   * flight (or some waiting) in its cell; without a cell, this worker's share.
   */
  #atCap(t: Target, conns: number): boolean {
    const u = this.#upstreams.get(t.key);
    const slots = this.#slots;
    const cell = u !== undefined && u.cell >= 0 ? u.cell : slots?.find(t.key) ?? -1;
    if (cell >= 0) return slots!.busy(cell) >= conns || slots!.waiting(cell) > 0;
    return u !== undefined && u.conns.size - u.idle.length >= this.#share(conns);
  }

  /** A connection to `t` opened elsewhere (TCP relay, h2c session) failed to connect. */
  connectFailed(t: Target): void {
    this.#events?.connectFailed(t);
  }

  /** Records a failed exchange; ejects after `failuresMax` in a row. */
  failed(u: Upstream, why: string): void {
    u.failures++;
    if (u.failures < this.#failuresMax) return;
    // Already ejected (every target of the route is, so requests fall back to it; or another
    // worker ejected it): the period runs on, with no new log line or `onEject`. One more
    // failure after the period re-ejects at once, with a longer period.
    if (u.ejectedUntil > this.#now()) {
      u.failures = this.#failuresMax - 1;
      return;
    }
    const ms = Math.min(this.#ejectMsMax, this.#ejectMs * 2 ** Math.min(u.ejections, 20));
    if (u.ejections === 0) this.#ejectedCount++;
    u.ejections++;
    u.ejectedUntil = this.#now() + ms;
    this.slowStart.began(u.target.key, ms);
    // One more failure after the period re-ejects at once, with a longer period.
    u.failures = this.#failuresMax - 1;
    const t = u.target;
    this.#log(
      `proxy: instance ${t.id} (${t.address}:${t.port}) ejected for ${ms} ms after ` +
        `${this.#failuresMax} failures in a row (last: ${why})`,
    );
    this.#onEject?.(t.key, ms);
    this.#events?.ejected(t);
  }

  /** Records a response: the target is healthy again. */
  succeeded(u: Upstream): void {
    if (u.ejections > 0) {
      this.#ejectedCount--;
      u.ejections = 0;
      u.ejectedUntil = 0;
    }
    u.failures = 0;
  }

  /**
   * Keeps the upstreams whose keys are in `live`; the others drain for `drainMs` and are then
   * destroyed. A key that comes back before that is kept, with its pool.
   */
  retain(live: ReadonlySet<string>): void {
    for (const [key, u] of this.#upstreams) {
      if (live.has(key)) this.#keep(u);
      else this.#drain(key, u);
    }
  }

  /**
   * `retain` for the keys a route change touched: `gone` drain, `back` are kept (and begin a
   * slow-start ramp).
   */
  retainChanged(gone: readonly string[], back: readonly string[]): void {
    for (const key of back) this.slowStart.began(key);
    for (const key of gone) {
      const u = this.#upstreams.get(key);
      if (u !== undefined) this.#drain(key, u);
    }
    for (const key of back) {
      const u = this.#upstreams.get(key);
      if (u !== undefined) this.#keep(u);
    }
  }

  #keep(u: Upstream): void {
    if (u.drainTimer !== null) {
      clearTimeout(u.drainTimer);
      u.drainTimer = null;
    }
  }

  #drain(key: string, u: Upstream): void {
    if (u.drainTimer !== null) return;
    u.drainTimer = setTimeout(() => {
      u.drainTimer = null;
      this.#remove(key, u);
    }, this.#drainMs);
  }

  #remove(key: string, u: Upstream): void {
    if (u.ejections > 0) this.#ejectedCount--;
    const waiting = u.waiting.splice(0);
    if (u.cell >= 0) {
      // Its connections close now: their slots and the queue places go back at once.
      u.shared = false;
      this.#sync(u);
      this.#slots!.unclaim(u.cell);
      u.cell = -1;
    }
    u.destroy();
    for (const w of waiting) {
      this.#unown(w.owner);
      w.lease.onQueueTimeout?.(); // never to get a connection here: answered now
    }
    if (this.#upstreams.get(key) === u) this.#upstreams.delete(key);
  }

  /** Number of upstream pools, draining ones included. */
  get size(): number {
    return this.#upstreams.size;
  }

  /** Whether a target's pool exists and is draining. */
  isDraining(key: string): boolean {
    return this.#upstreams.get(key)?.drainTimer != null;
  }

  /** Destroys every pool and tunnel now. */
  close(): void {
    this.#closed = true;
    for (const [key, u] of this.#upstreams) this.#remove(key, u);
    this.#upstreams.clear();
    if (this.#idleSweep !== null) clearInterval(this.#idleSweep);
    this.#idleSweep = null;
    this.#ejectedCount = 0;
    this.#remote.clear();
  }
}
