/**
 * About 520 lines: shared and private (PROXY protocol) sessions go through the same take,
 * retire and serve paths, which the private cap joins; split, each half would reach into the
 * other's groups.
 *
 * Pooled HTTP/2 cleartext sessions to the instances of `h2c` / `grpc` services (`node:http2`
 * `connect("http://host:port")`), shared by every request to a target.
 *
 * - A request takes a stream on the first open session of its target with room: fewer than
 *   `streamsPerSessionMax` streams and fewer than the instance's own SETTINGS_MAX_CONCURRENT_STREAMS.
 *   When every session is full, a new one is opened (up to `sessionsPerTargetMax`); beyond that
 *   requests wait, first come first served, for a stream to end.
 * - A session that fails, is closed or receives a GOAWAY takes no new streams and leaves the
 *   pool at once (streams under way on it finish as the instance allows); the next request opens
 *   a new one.
 * - A session still connecting after `connectTimeoutMs` (no SETTINGS from the instance yet:
 *   h2c_session.ts) is destroyed with `TimeoutError("ECONNECTTIMEOUT")` and its socket reset; a
 *   session without streams for `idleTimeoutMs` is closed (one sweep over the sessions every
 *   quarter of it, no timer per request). `close()` ends every session still open, retired
 *   ones included.
 * - `retain(live)` closes (gracefully: streams under way finish) the sessions of targets no
 *   longer routed and destroys what is left of them after `drainMs`.
 * - Services with `berth.proxy-protocol` (README "PROXY protocol"): a request that names a
 *   private connection (`PrivateH2c`: the PROXY header, proxy_protocol_out.ts, and the client
 *   connection it speaks for) takes a stream only on sessions opened for that client connection
 *   and that header, never on another client's or the shared ones, as HAProxy keeps a server
 *   connection that sent a PROXY header private to its session. Such a session's connection
 *   writes the header before the HTTP/2 preface; it is destroyed when its client connection
 *   closes (its streams are all that client's), else closed like any other (idle, GOAWAY,
 *   `retain`). Private sessions to one target, all clients together, are at most
 *   `privateSessionsPerTargetMax` (the UpstreamPool's connections per instance): at that cap a
 *   request that needs a new one closes the oldest private session without streams, else waits
 *   until one retires (a session that goes idle while others wait closes for them; the
 *   caller's queue timeout ends a wait, h2c_upstream.ts).
 *
 * Passive health (ejection) is the UpstreamPool's, shared with HTTP/1.1 targets: see
 * h2c_upstream.ts.
 *
 * @module
 */
import type net from "node:net";
import type { Target } from "./balancer.ts";
import { TimeoutError } from "./exchange.ts";
import { type H2cSession, openH2cSession } from "./h2c_session.ts";
import type { PrivateConn } from "./proxy_protocol_out.ts";

export type { H2cSession } from "./h2c_session.ts";

export const H2C_STREAMS_PER_SESSION_MAX = 100;
export const H2C_SESSIONS_PER_TARGET_MAX = 16;
export const H2C_IDLE_TIMEOUT_MS = 30_000;
/** Private sessions per target, all clients together: the UpstreamPool's connections per instance. */
export const H2C_PRIVATE_SESSIONS_PER_TARGET_MAX = 256;
/** Idle sweeps per `idleTimeoutMs`. */
const IDLE_SWEEPS = 4;

export interface H2cSessionsOptions {
  connectTimeoutMs: number;
  /** Streams at once on one session (the instance's own limit also applies). Default 100. */
  streamsPerSessionMax?: number;
  /** Sessions per target; requests beyond their streams wait. Default 16. */
  sessionsPerTargetMax?: number;
  /**
   * Private sessions (PROXY protocol) per target, over all client connections (module doc).
   * Default H2C_PRIVATE_SESSIONS_PER_TARGET_MAX.
   */
  privateSessionsPerTargetMax?: number;
  /** A session without streams this long is closed. Default 30000. */
  idleTimeoutMs?: number;
  /** How long a removed target's sessions may finish their streams. Default 30000. */
  drainMs?: number;
  /** Clock in ms. Default Date.now. */
  now?: () => number;
  /** Told once per session that failed before it connected (the pool's `connectFailed`). */
  onConnectFailed?: (t: Target) => void;
}

/**
 * A request's private connection (module doc): the PROXY header its sessions start with, and the
 * client connection they speak for (closed with it when it emits `close`, as a socket does).
 */
export interface PrivateH2c {
  readonly conn: PrivateConn;
  readonly client: object;
}

/** The private sessions of one client connection, by target and header. */
class ClientSessions {
  readonly client: object;
  readonly groups = new Map<string, TargetSessions>();
  unlisten: () => void = noop;

  constructor(client: object) {
    this.client = client;
  }
}

/** The sessions of one target (shared, or one client's) and the requests waiting for a stream. */
class TargetSessions {
  readonly target: Target;
  /** Its key where it is filed: the target's, or target and header in `owner.groups`. */
  readonly key: string;
  /** What each of its connections starts with; null: shared sessions, no header. */
  readonly header: Uint8Array | null;
  /** The client connection its sessions are private to; null: shared. */
  readonly owner: ClientSessions | null;
  readonly sessions: H2cSession[] = [];
  readonly waiting: ((s: H2cSession) => void)[] = [];
  drainTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    target: Target,
    key = target.key,
    header: Uint8Array | null = null,
    owner: ClientSessions | null = null,
  ) {
    this.target = target;
    this.key = key;
    this.header = header;
    this.owner = owner;
  }
}

/** The private sessions of every client connection to one target, counted against its cap. */
class PrivateTarget {
  /** Private sessions open (not retired). */
  open = 0;
  /** Its client connections' groups, filed. */
  readonly groups = new Set<TargetSessions>();
  /** Groups with requests waiting for a session the cap had no room for, first come first. */
  readonly blocked: TargetSessions[] = [];
}

const noop = () => {};

/** Calls `fn` once when `client` emits `close`; returns what stops listening (no-op otherwise). */
function onClientClose(client: object, fn: () => void): () => void {
  const e = client as { once?: unknown; off?: unknown };
  if (typeof e.once !== "function" || typeof e.off !== "function") return noop;
  const c = client as net.Socket;
  c.once("close", fn);
  return () => c.off("close", fn);
}

/** The h2c session pool of the proxy (module doc). */
export class H2cSessions {
  readonly #byKey = new Map<string, TargetSessions>();
  /** Private sessions (PROXY protocol) by the client connection they speak for. */
  readonly #clients = new Map<object, ClientSessions>();
  /** Private sessions by target key (the cap on them). */
  readonly #privateOf = new Map<string, PrivateTarget>();
  /** The group each open session belongs to. */
  readonly #groupOf = new WeakMap<H2cSession, TargetSessions>();
  /** Every session not yet closed, retired ones included. */
  readonly #live = new Set<H2cSession>();
  readonly #connectTimeoutMs: number;
  readonly #streamsMax: number;
  readonly #sessionsMax: number;
  readonly #privateMax: number;
  readonly #idleTimeoutMs: number;
  readonly #drainMs: number;
  readonly #now: () => number;
  readonly #onConnectFailed: ((t: Target) => void) | undefined;
  #idleSweep: ReturnType<typeof setInterval> | null = null;

  constructor(opts: H2cSessionsOptions) {
    this.#connectTimeoutMs = opts.connectTimeoutMs;
    this.#streamsMax = opts.streamsPerSessionMax ?? H2C_STREAMS_PER_SESSION_MAX;
    this.#sessionsMax = opts.sessionsPerTargetMax ?? H2C_SESSIONS_PER_TARGET_MAX;
    this.#privateMax = opts.privateSessionsPerTargetMax ?? H2C_PRIVATE_SESSIONS_PER_TARGET_MAX;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? H2C_IDLE_TIMEOUT_MS;
    this.#drainMs = opts.drainMs ?? 30_000;
    this.#now = opts.now ?? Date.now;
    this.#onConnectFailed = opts.onConnectFailed;
  }

  /**
   * Gives `use` a session with room for one stream, now or when one frees up; the caller opens
   * its stream at once and calls `release` when the stream has closed. Returns a function that
   * withdraws a request still waiting (a no-op once it got a session). With `priv`, only a
   * session private to that client connection and header will do (module doc).
   */
  acquire(t: Target, use: (s: H2cSession) => void, priv?: PrivateH2c): () => void {
    const ts = priv === undefined ? this.#shared(t) : this.#private(t, priv);
    const s = this.#withRoom(ts);
    if (s !== null) {
      this.#take(s, use);
      return noop;
    }
    ts.waiting.push(use);
    const waiting = ts;
    return () => {
      const i = waiting.waiting.indexOf(use);
      if (i >= 0) waiting.waiting.splice(i, 1);
    };
  }

  #shared(t: Target): TargetSessions {
    let ts = this.#byKey.get(t.key);
    if (ts === undefined) this.#byKey.set(t.key, ts = new TargetSessions(t));
    return ts;
  }

  #private(t: Target, priv: PrivateH2c): TargetSessions {
    let cs = this.#clients.get(priv.client);
    if (cs === undefined) {
      const created = cs = new ClientSessions(priv.client);
      this.#clients.set(priv.client, cs);
      cs.unlisten = onClientClose(priv.client, () => this.#clientClosed(created));
    }
    const key = `${t.key}\n${priv.conn.key}`;
    let ts = cs.groups.get(key);
    if (ts === undefined) {
      cs.groups.set(key, ts = new TargetSessions(t, key, priv.conn.header, cs));
      this.#privateTarget(t.key).groups.add(ts);
    }
    return ts;
  }

  #privateTarget(key: string): PrivateTarget {
    let tp = this.#privateOf.get(key);
    if (tp === undefined) this.#privateOf.set(key, tp = new PrivateTarget());
    return tp;
  }

  /** A private group no longer filed: its target forgets it (and is forgotten when unused). */
  #unfilePrivate(ts: TargetSessions): void {
    const tp = this.#privateOf.get(ts.target.key);
    if (tp === undefined) return;
    tp.groups.delete(ts);
    if (tp.groups.size === 0 && tp.open === 0) this.#privateOf.delete(ts.target.key);
  }

  /** Whether a group is still where new requests find it. */
  #filed(ts: TargetSessions): boolean {
    if (ts.owner === null) return this.#byKey.get(ts.key) === ts;
    return ts.owner.groups.get(ts.key) === ts && this.#clients.get(ts.owner.client) === ts.owner;
  }

  /** Takes a group out of its map (a client with no group left is no longer listened to). */
  #unfile(ts: TargetSessions): void {
    if (!this.#filed(ts)) return;
    const owner = ts.owner;
    if (owner === null) return void this.#byKey.delete(ts.key);
    owner.groups.delete(ts.key);
    this.#unfilePrivate(ts);
    if (owner.groups.size > 0) return;
    owner.unlisten();
    this.#clients.delete(owner.client);
  }

  /** Every group: the shared ones, then the private ones. */
  *#groups(): Generator<TargetSessions> {
    yield* this.#byKey.values();
    for (const cs of this.#clients.values()) yield* cs.groups.values();
  }

  /** A stream taken with `acquire` has closed: its slot goes to the next waiting request. */
  release(_t: Target, s: H2cSession): void {
    s.streams--;
    if (s.streams === 0) s.idleSince = this.#now();
    const ts = this.#groupOf.get(s);
    if (ts === undefined || !this.#filed(ts)) return;
    this.#serveWaiting(ts);
    // Idle while another client's requests wait for room under the cap: it makes room.
    if (s.streams === 0 && s.counted && this.#othersBlocked(ts)) this.#retire(ts, s);
  }

  /** Takes a session out of the pool at once (found closed, or refusing streams after GOAWAY). */
  retire(_t: Target, s: H2cSession): void {
    const ts = this.#groupOf.get(s);
    if (ts !== undefined) this.#retire(ts, s);
    else s.retired = true;
  }

  /** Open shared sessions to a target (for tests and the routes report). */
  sessionCount(key: string): number {
    return this.#byKey.get(key)?.sessions.length ?? 0;
  }

  /** Private sessions (PROXY protocol) open to a target, all clients together. */
  privateSessionCount(key: string): number {
    return this.#privateOf.get(key)?.open ?? 0;
  }

  /** Client connections that have private sessions (PROXY protocol) now. */
  get privateClients(): number {
    return this.#clients.size;
  }

  /**
   * A client connection closed: its private sessions close at once (their streams are all its
   * own; a request a session still connecting has already written may reach the instance).
   */
  #clientClosed(cs: ClientSessions): void {
    if (this.#clients.get(cs.client) !== cs) return;
    this.#clients.delete(cs.client);
    for (const ts of cs.groups.values()) {
      if (ts.drainTimer !== null) clearTimeout(ts.drainTimer);
      ts.drainTimer = null;
      ts.waiting.length = 0; // their exchanges are aborted with the client
      for (const s of [...ts.sessions]) this.#retire(ts, s, true);
      this.#unfilePrivate(ts);
    }
    cs.groups.clear();
  }

  /**
   * A session with room: an open one, else a new one while under `sessionsPerTargetMax` (and,
   * private, under `privateSessionsPerTargetMax`).
   */
  #withRoom(ts: TargetSessions): H2cSession | null {
    for (const s of ts.sessions) if (s.hasRoom(this.#streamsMax)) return s;
    if (ts.sessions.length >= this.#sessionsMax) return null;
    if (ts.owner !== null && !this.#privateRoom(ts)) return null;
    return this.#open(ts);
  }

  /**
   * Whether a private group may open one more session: under the target's cap, or once the
   * oldest idle private session of another client has made room (closed). Else the group
   * waits in the target's `blocked` list until a private session of the target retires.
   */
  #privateRoom(ts: TargetSessions): boolean {
    const tp = this.#privateTarget(ts.target.key);
    if (tp.open < this.#privateMax) return true;
    let oldest: H2cSession | null = null;
    let oldestGroup: TargetSessions | null = null;
    for (const g of tp.groups) {
      for (const s of g.sessions) {
        if (s.streams > 0 || (oldest !== null && s.idleSince >= oldest.idleSince)) continue;
        oldest = s;
        oldestGroup = g;
      }
    }
    if (oldest !== null) {
      this.#retire(oldestGroup!, oldest, false, false);
      if (tp.open < this.#privateMax) return true;
    }
    if (!tp.blocked.includes(ts)) tp.blocked.push(ts);
    return false;
  }

  /** Whether a client other than `ts`'s has requests waiting for room under the cap. */
  #othersBlocked(ts: TargetSessions): boolean {
    const tp = this.#privateOf.get(ts.target.key);
    if (tp === undefined) return false;
    return tp.blocked.some((g) => g !== ts && g.waiting.length > 0 && this.#filed(g));
  }

  /** Room under a target's cap: its blocked groups get sessions, first come first. */
  #serveBlocked(tp: PrivateTarget): void {
    while (tp.open < this.#privateMax && tp.blocked.length > 0) {
      const g = tp.blocked.shift()!;
      if (g.waiting.length > 0 && this.#filed(g)) this.#serveWaiting(g);
    }
  }

  #take(s: H2cSession, use: (s: H2cSession) => void): void {
    s.streams++;
    s.started++;
    use(s);
  }

  #serveWaiting(ts: TargetSessions): void {
    while (ts.waiting.length > 0) {
      const s = this.#withRoom(ts);
      if (s === null) return;
      this.#take(s, ts.waiting.shift()!);
    }
  }

  #open(ts: TargetSessions): H2cSession {
    const s = openH2cSession(ts.target, ts.header, this.#now());
    const session = s.session;
    ts.sessions.push(s);
    this.#groupOf.set(s, ts);
    this.#live.add(s);
    if (ts.owner !== null) {
      s.counted = true;
      this.#privateTarget(ts.target.key).open++;
    }
    this.#idleSweep ??= setInterval(
      this.sweepIdle,
      Math.max(1, Math.floor(this.#idleTimeoutMs / IDLE_SWEEPS)),
    );
    // Until the instance's SETTINGS arrive (h2c_session.ts): a silent instance times out too.
    let connectTimer: ReturnType<typeof setTimeout> | null = setTimeout(() => {
      connectTimer = null;
      s.kill(new TimeoutError("ECONNECTTIMEOUT"));
    }, this.#connectTimeoutMs);
    const stopTimer = () => {
      if (connectTimer !== null) clearTimeout(connectTimer);
      connectTimer = null;
    };
    session.once("remoteSettings", () => {
      stopTimer();
      s.connected = true;
      // The instance's SETTINGS may allow more (or fewer) streams than were assumed.
      if (!s.retired) this.#serveWaiting(ts);
    });
    // Streams report their own errors; the session's only retires it (and counts a connect).
    session.on("error", () => {
      if (!s.connected && !s.retired) this.#onConnectFailed?.(ts.target);
      this.#retire(ts, s);
    });
    session.on("goaway", () => this.#retire(ts, s));
    session.once("close", () => {
      stopTimer();
      this.#live.delete(s);
      this.#retire(ts, s);
    });
    return s;
  }

  /**
   * Takes a session out of the pool and closes it (`kill`: at once, else `H2cSession.end`);
   * waiting requests get a new one if there is room (`serve`), its own group's first, then
   * those blocked at the target's cap on private sessions.
   */
  #retire(ts: TargetSessions, s: H2cSession, kill = false, serve = true): void {
    if (kill) s.kill();
    if (s.retired) return;
    s.retired = true;
    const i = ts.sessions.indexOf(s);
    if (i >= 0) ts.sessions.splice(i, 1);
    s.end();
    let tp: PrivateTarget | undefined;
    if (s.counted) {
      s.counted = false;
      tp = this.#privateOf.get(ts.target.key);
      if (tp !== undefined) tp.open--;
    }
    // A private group left with nothing (its connect refused, its session idle or evicted) is
    // forgotten now, not at the next sweep: its client stops being listened to.
    const empty = ts.sessions.length === 0 && ts.waiting.length === 0 && ts.drainTimer === null;
    if (ts.owner !== null && empty) this.#unfile(ts);
    if (!serve) return;
    if (this.#filed(ts)) this.#serveWaiting(ts);
    if (tp !== undefined) this.#serveBlocked(tp);
  }

  /** Closes sessions without streams for `idleTimeoutMs` (never later, up to a quarter sooner). */
  sweepIdle = (): void => {
    const before = this.#now() - this.#idleTimeoutMs +
      Math.floor(this.#idleTimeoutMs / IDLE_SWEEPS);
    for (const ts of [...this.#groups()]) {
      for (const s of [...ts.sessions]) {
        if (s.streams === 0 && s.idleSince <= before) this.#retire(ts, s);
      }
      if (ts.sessions.length === 0 && ts.waiting.length === 0 && ts.drainTimer === null) {
        this.#unfile(ts);
      }
    }
    if (this.#byKey.size === 0 && this.#clients.size === 0 && this.#idleSweep !== null) {
      clearInterval(this.#idleSweep);
      this.#idleSweep = null;
    }
  };

  /**
   * Keeps the sessions of targets whose keys are in `live`; the others are closed gracefully
   * and destroyed after `drainMs`.
   */
  retain(live: ReadonlySet<string>): void {
    for (const ts of [...this.#groups()]) {
      if (live.has(ts.target.key)) this.#keep(ts);
      else this.#drain(ts);
    }
  }

  /** `retain` for the keys a route change touched: `gone` drain, `back` are kept. */
  retainChanged(gone: readonly string[], back: readonly string[]): void {
    for (const key of gone) {
      const ts = this.#byKey.get(key);
      if (ts !== undefined) this.#drain(ts);
    }
    for (const key of back) {
      const ts = this.#byKey.get(key);
      if (ts !== undefined) this.#keep(ts);
    }
    if (this.#clients.size === 0) return;
    const goneSet = new Set(gone);
    const backSet = new Set(back);
    for (const cs of [...this.#clients.values()]) {
      for (const ts of [...cs.groups.values()]) {
        if (goneSet.has(ts.target.key)) this.#drain(ts);
        else if (backSet.has(ts.target.key)) this.#keep(ts);
      }
    }
  }

  #keep(ts: TargetSessions): void {
    if (ts.drainTimer !== null) clearTimeout(ts.drainTimer);
    ts.drainTimer = null;
  }

  #drain(ts: TargetSessions): void {
    if (ts.drainTimer !== null) return;
    const sessions = [...ts.sessions];
    for (const s of sessions) this.#retire(ts, s);
    ts.drainTimer = setTimeout(() => {
      ts.drainTimer = null;
      for (const s of sessions) s.kill();
      if (ts.sessions.length === 0 && ts.waiting.length === 0) this.#unfile(ts);
    }, this.#drainMs);
  }

  /**
   * Destroys every session now, closing or not, and resets their sockets; waiting requests are
   * dropped (their exchanges are aborted).
   */
  close(): void {
    for (const cs of this.#clients.values()) cs.unlisten();
    for (const ts of this.#groups()) {
      if (ts.drainTimer !== null) clearTimeout(ts.drainTimer);
      ts.waiting.length = 0;
      ts.sessions.length = 0;
    }
    // Retired ones still closing too (a silent instance's would stay open: h2c_session.ts).
    for (const s of this.#live) {
      s.retired = true;
      s.kill();
    }
    this.#live.clear();
    this.#byKey.clear();
    this.#clients.clear();
    this.#privateOf.clear();
    if (this.#idleSweep !== null) clearInterval(this.#idleSweep);
    this.#idleSweep = null;
  }
}
