/**
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
 * - A session still connecting after `connectTimeoutMs` is destroyed with
 *   `TimeoutError("ECONNECTTIMEOUT")`; a session without streams for `idleTimeoutMs` is closed
 *   (one sweep over the sessions every quarter of it, no timer per request).
 * - `retain(live)` closes (gracefully: streams under way finish) the sessions of targets no
 *   longer routed and destroys what is left of them after `drainMs`.
 *
 * Passive health (ejection) is the UpstreamPool's, shared with HTTP/1.1 targets: see
 * h2c_upstream.ts.
 *
 * @module
 */
import http2 from "node:http2";
import type { Target } from "./balancer.ts";
import { TimeoutError } from "./exchange.ts";

export const H2C_STREAMS_PER_SESSION_MAX = 100;
export const H2C_SESSIONS_PER_TARGET_MAX = 16;
export const H2C_IDLE_TIMEOUT_MS = 30_000;
/** Idle sweeps per `idleTimeoutMs`. */
const IDLE_SWEEPS = 4;

export interface H2cSessionsOptions {
  connectTimeoutMs: number;
  /** Streams at once on one session (the instance's own limit also applies). Default 100. */
  streamsPerSessionMax?: number;
  /** Sessions per target; requests beyond their streams wait. Default 16. */
  sessionsPerTargetMax?: number;
  /** A session without streams this long is closed. Default 30000. */
  idleTimeoutMs?: number;
  /** How long a removed target's sessions may finish their streams. Default 30000. */
  drainMs?: number;
  /** Clock in ms. Default Date.now. */
  now?: () => number;
  /** Told once per session that failed before it connected (the pool's `connectFailed`). */
  onConnectFailed?: (t: Target) => void;
}

/** One HTTP/2 connection to a target. */
export class H2cSession {
  readonly session: http2.ClientHttp2Session;
  /** Streams open on it now. */
  streams = 0;
  /** Streams ever opened on it (more than 1: it carried requests before the current one). */
  started = 0;
  connected = false;
  /** Takes no new streams (failed, closing, GOAWAY received). */
  retired = false;
  /** When its last stream ended (ms). */
  idleSince: number;

  constructor(session: http2.ClientHttp2Session, now: number) {
    this.session = session;
    this.idleSince = now;
  }

  /** Whether it can take one more stream now. */
  hasRoom(streamsMax: number): boolean {
    if (this.retired) return false;
    const remote = this.connected ? this.session.remoteSettings.maxConcurrentStreams : undefined;
    return this.streams < Math.min(streamsMax, remote ?? streamsMax);
  }
}

/** The sessions of one target and the requests waiting for a stream on one. */
class TargetSessions {
  readonly target: Target;
  readonly sessions: H2cSession[] = [];
  readonly waiting: ((s: H2cSession) => void)[] = [];
  drainTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(target: Target) {
    this.target = target;
  }
}

const noop = () => {};

/** The h2c session pool of the proxy (module doc). */
export class H2cSessions {
  readonly #byKey = new Map<string, TargetSessions>();
  readonly #connectTimeoutMs: number;
  readonly #streamsMax: number;
  readonly #sessionsMax: number;
  readonly #idleTimeoutMs: number;
  readonly #drainMs: number;
  readonly #now: () => number;
  readonly #onConnectFailed: ((t: Target) => void) | undefined;
  #idleSweep: ReturnType<typeof setInterval> | null = null;

  constructor(opts: H2cSessionsOptions) {
    this.#connectTimeoutMs = opts.connectTimeoutMs;
    this.#streamsMax = opts.streamsPerSessionMax ?? H2C_STREAMS_PER_SESSION_MAX;
    this.#sessionsMax = opts.sessionsPerTargetMax ?? H2C_SESSIONS_PER_TARGET_MAX;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? H2C_IDLE_TIMEOUT_MS;
    this.#drainMs = opts.drainMs ?? 30_000;
    this.#now = opts.now ?? Date.now;
    this.#onConnectFailed = opts.onConnectFailed;
  }

  /**
   * Gives `use` a session with room for one stream, now or when one frees up; the caller opens
   * its stream at once and calls `release` when the stream has closed. Returns a function that
   * withdraws a request still waiting (a no-op once it got a session).
   */
  acquire(t: Target, use: (s: H2cSession) => void): () => void {
    let ts = this.#byKey.get(t.key);
    if (ts === undefined) this.#byKey.set(t.key, ts = new TargetSessions(t));
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

  /** A stream taken with `acquire` has closed: its slot goes to the next waiting request. */
  release(t: Target, s: H2cSession): void {
    s.streams--;
    if (s.streams === 0) s.idleSince = this.#now();
    const ts = this.#byKey.get(t.key);
    if (ts !== undefined) this.#serveWaiting(ts);
  }

  /** Takes a session out of the pool at once (found closed, or refusing streams after GOAWAY). */
  retire(t: Target, s: H2cSession): void {
    const ts = this.#byKey.get(t.key);
    if (ts !== undefined) this.#retire(ts, s);
    else s.retired = true;
  }

  /** Open sessions to a target (for tests and the routes report). */
  sessionCount(key: string): number {
    return this.#byKey.get(key)?.sessions.length ?? 0;
  }

  /** A session with room: an open one, else a new one while under `sessionsPerTargetMax`. */
  #withRoom(ts: TargetSessions): H2cSession | null {
    for (const s of ts.sessions) if (s.hasRoom(this.#streamsMax)) return s;
    if (ts.sessions.length < this.#sessionsMax) return this.#open(ts);
    return null;
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
    const { address, port } = ts.target;
    const host = address.includes(":") ? `[${address}]` : address;
    const session = http2.connect(`http://${host}:${port}`);
    const s = new H2cSession(session, this.#now());
    ts.sessions.push(s);
    this.#idleSweep ??= setInterval(
      this.sweepIdle,
      Math.max(1, Math.floor(this.#idleTimeoutMs / IDLE_SWEEPS)),
    );
    let connectTimer: ReturnType<typeof setTimeout> | null = setTimeout(() => {
      connectTimer = null;
      session.destroy(new TimeoutError("ECONNECTTIMEOUT"));
    }, this.#connectTimeoutMs);
    const stopTimer = () => {
      if (connectTimer !== null) clearTimeout(connectTimer);
      connectTimer = null;
    };
    session.once("connect", () => {
      stopTimer();
      s.connected = true;
      // The instance's SETTINGS may allow more (or fewer) streams than were assumed.
      this.#serveWaiting(ts);
    });
    // Streams report their own errors; the session's only retires it (and counts a connect).
    session.on("error", () => {
      if (!s.connected && !s.retired) this.#onConnectFailed?.(ts.target);
      this.#retire(ts, s);
    });
    session.on("goaway", () => this.#retire(ts, s));
    session.once("close", () => {
      stopTimer();
      this.#retire(ts, s);
    });
    return s;
  }

  /** Takes a session out of the pool; waiting requests get a new one if there is room. */
  #retire(ts: TargetSessions, s: H2cSession): void {
    if (s.retired) return;
    s.retired = true;
    const i = ts.sessions.indexOf(s);
    if (i >= 0) ts.sessions.splice(i, 1);
    if (!s.session.closed && !s.session.destroyed) s.session.close();
    if (this.#byKey.get(ts.target.key) === ts) this.#serveWaiting(ts);
  }

  /** Closes sessions without streams for `idleTimeoutMs` (never later, up to a quarter sooner). */
  sweepIdle = (): void => {
    const before = this.#now() - this.#idleTimeoutMs +
      Math.floor(this.#idleTimeoutMs / IDLE_SWEEPS);
    for (const ts of this.#byKey.values()) {
      for (const s of [...ts.sessions]) {
        if (s.streams === 0 && s.idleSince <= before) this.#retire(ts, s);
      }
      if (ts.sessions.length === 0 && ts.waiting.length === 0 && ts.drainTimer === null) {
        this.#byKey.delete(ts.target.key);
      }
    }
    if (this.#byKey.size === 0 && this.#idleSweep !== null) {
      clearInterval(this.#idleSweep);
      this.#idleSweep = null;
    }
  };

  /**
   * Keeps the sessions of targets whose keys are in `live`; the others are closed gracefully
   * and destroyed after `drainMs`.
   */
  retain(live: ReadonlySet<string>): void {
    for (const [key, ts] of this.#byKey) {
      if (live.has(key)) this.#keep(ts);
      else this.#drain(key, ts);
    }
  }

  /** `retain` for the keys a route change touched: `gone` drain, `back` are kept. */
  retainChanged(gone: readonly string[], back: readonly string[]): void {
    for (const key of gone) {
      const ts = this.#byKey.get(key);
      if (ts !== undefined) this.#drain(key, ts);
    }
    for (const key of back) {
      const ts = this.#byKey.get(key);
      if (ts !== undefined) this.#keep(ts);
    }
  }

  #keep(ts: TargetSessions): void {
    if (ts.drainTimer !== null) clearTimeout(ts.drainTimer);
    ts.drainTimer = null;
  }

  #drain(key: string, ts: TargetSessions): void {
    if (ts.drainTimer !== null) return;
    const sessions = [...ts.sessions];
    for (const s of sessions) this.#retire(ts, s);
    ts.drainTimer = setTimeout(() => {
      ts.drainTimer = null;
      for (const s of sessions) s.session.destroy();
      if (this.#byKey.get(key) === ts && ts.sessions.length === 0) this.#byKey.delete(key);
    }, this.#drainMs);
  }

  /** Destroys every session now; waiting requests are dropped (their exchanges are aborted). */
  close(): void {
    for (const ts of this.#byKey.values()) {
      if (ts.drainTimer !== null) clearTimeout(ts.drainTimer);
      ts.waiting.length = 0;
      for (const s of [...ts.sessions]) {
        s.retired = true;
        s.session.destroy();
      }
      ts.sessions.length = 0;
    }
    this.#byKey.clear();
    if (this.#idleSweep !== null) clearInterval(this.#idleSweep);
    this.#idleSweep = null;
  }
}
