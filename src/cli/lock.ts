/**
 * Consul's lock and semaphore recipes over the agent's HTTP API, in `consul lock`'s key layout,
 * for `berth lock` (lock_command.ts):
 *
 * - lock (limit 1): a session (Behavior `release`) acquires `PREFIX/.lock`; held while the key's
 *   Session is ours. Release: `?release=`, then the key is deleted when nobody holds it.
 * - semaphore (limit N): a session (Behavior `delete`) acquires its contender key
 *   `PREFIX/<session>`; `PREFIX/.lock` holds `{"Limit": N, "Holders": {"<session>": true}}`,
 *   changed only by check-and-set. A contender joins the holders when fewer than N live
 *   contenders (keys still held by a session) are in it, pruning the dead ones; held while it is
 *   in the holders. Release: leave the holders (CAS), delete the contender key.
 *
 * Consul also marks these keys with magic `Flags` values; they exceed what a berth flag can hold
 * exactly (2^53), so berth writes 0 and recognises a foreign `.lock` by its value instead.
 *
 * While waiting and while held the session is renewed. The lock counts as lost when its key says
 * so (a blocking query watches it), when a renewal finds the session gone, or by a local
 * deadline: the session may be invalidated at any moment after the last renewal the agent
 * accepted was sent, and another holder can take the lock LockDelay after that (sooner, TTL
 * after, once the session expires). So `lost` resolves at `sent + min(TTL, LockDelay) −
 * killGraceMs` of the last successful renewal (the lock command's SIGTERM, SIGKILL after the
 * grace), whether or not a request is still pending; a blocking read's answer is no proof the
 * session lives (it may have passed its barrier before a partition). Renewals go out every half
 * of that window.
 *
 * @module
 */
import { type ApiClient, ApiHttpError } from "../api/mod.ts";

/** Session TTL of a lock, seconds (Consul's DefaultLockSessionTTL). */
export const LOCK_SESSION_TTL_S = 15;
/** Session LockDelay of a lock, seconds (Consul's default). */
export const LOCK_DELAY_S = 15;
/** Time the locked command has to exit after SIGTERM before it gets SIGKILL. */
export const LOCK_KILL_GRACE_MS = 5000;
/** Longest wait of one blocking query, seconds. */
export const LOCK_WAIT_S = 10;
/** Pause before trying again after a refused acquire (lock-delay) or a failed request. */
export const LOCK_RETRY_MS = 1000;
/** Name of the key that is the lock (or holds the semaphore's state) under the prefix. */
export const LOCK_KEY = ".lock";
/** Largest semaphore limit. */
export const LOCK_LIMIT_MAX = 1024;

export class LockError extends Error {
  override name = "LockError";
}

export interface LockOptions {
  /** 1: a lock; more: a semaphore of that many holders. */
  limit: number;
  /** Session name (shown by `berth session list`). */
  name: string;
  /** Session TTL, seconds (default LOCK_SESSION_TTL_S). */
  ttlS?: number;
  /** Session LockDelay, seconds (default LOCK_DELAY_S). */
  lockDelayS?: number;
  /** `lost` resolves this long before another holder could take the lock (LOCK_KILL_GRACE_MS). */
  killGraceMs?: number;
  /** Stops waiting: acquire() destroys its session and rejects. */
  signal?: AbortSignal;
  /** Clock and timers, for tests (default: Date.now, setTimeout, clearTimeout). */
  clock?: Clock;
}

/** The clock and timers the recipes use. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

const REAL_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as number),
};

/** A lock or semaphore slot held. */
export interface HeldLock {
  session: string;
  /** Resolves with the reason once the lock is lost; never rejects; pending while held. */
  lost: Promise<string>;
  /** Stops renewing, gives the lock or slot back and destroys the session (best effort). */
  release(): Promise<void>;
}

interface KvPair {
  Key: string;
  Value: string | null;
  Session?: string;
  ModifyIndex: number;
}

interface Semaphore {
  Limit: number;
  Holders: Record<string, boolean>;
}

/** Waits `ms` or until `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal, clock = REAL_CLOCK): Promise<void> {
  return new Promise((resolve) => {
    const t = clock.setTimeout(done, ms);
    function done() {
      clock.clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

function keyPath(key: string): string {
  return `/v1/kv/${key.split("/").map(encodeURIComponent).join("/")}`;
}

function decodeValue(v: string | null): string {
  if (v === null) return "";
  const bin = atob(v);
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

/** The few Consul calls the recipes make. */
class Calls {
  constructor(readonly client: ApiClient) {}

  async createSession(
    opts: { name: string; ttlS: number; lockDelayS: number; behavior: string },
  ): Promise<string> {
    const body = JSON.stringify({
      Name: opts.name,
      TTL: `${opts.ttlS}s`,
      LockDelay: `${opts.lockDelayS}s`,
      Behavior: opts.behavior,
    });
    const r = await this.client.request("PUT", "/v1/session/create", { body });
    const id = ((await r!.json()) as { ID?: unknown }).ID;
    if (typeof id !== "string") throw new LockError("the agent created a session without an ID");
    return id;
  }

  /** false when the session is gone. */
  async renew(id: string, signal?: AbortSignal): Promise<boolean> {
    const r = await this.client.request("PUT", `/v1/session/renew/${id}`, {
      allow: [404],
      signal,
    });
    if (r === null) return false;
    await r.body?.cancel();
    return true;
  }

  async destroy(id: string): Promise<void> {
    const r = await this.client.request("PUT", `/v1/session/destroy/${id}`);
    await r?.body?.cancel();
  }

  /** A blocking read (index > 0 waits up to LOCK_WAIT_S for a change); a missing key: []. */
  async get(
    key: string,
    opts: { index: number; recurse?: boolean; signal?: AbortSignal },
  ): Promise<{ pairs: KvPair[]; index: number }> {
    const query = {
      recurse: opts.recurse,
      index: opts.index > 0 ? opts.index : undefined,
      wait: opts.index > 0 ? `${LOCK_WAIT_S}s` : undefined,
    };
    const r = await this.client.send("GET", keyPath(key), {
      query,
      signal: opts.signal,
      timeoutMs: (LOCK_WAIT_S + 5) * 1000,
    });
    const index = Number(r.headers.get("X-Consul-Index") ?? 0);
    if (r.status === 404) {
      await r.body?.cancel();
      return { pairs: [], index };
    }
    if (!r.ok) {
      throw new ApiHttpError(r.status, keyPath(key), (await r.text()).trim().split("\n")[0]!);
    }
    return { pairs: (await r.json()) as KvPair[], index };
  }

  /** true when written (acquired, released, CAS matched). */
  async put(
    key: string,
    value: string,
    query: { acquire?: string; release?: string; cas?: number },
  ): Promise<boolean> {
    const r = await this.client.request("PUT", keyPath(key), { query, body: value });
    return (await r!.text()).trim() === "true";
  }

  async delete(key: string, cas: number): Promise<void> {
    const r = await this.client.request("DELETE", keyPath(key), { query: { cas } });
    await r?.body?.cancel();
  }
}

/** Acquires the lock (limit 1) or a semaphore slot under `prefix`; waits as long as it takes. */
export async function acquire(
  client: ApiClient,
  prefix: string,
  opts: LockOptions,
): Promise<HeldLock> {
  if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > LOCK_LIMIT_MAX) {
    throw new LockError(`limit ${opts.limit}: expected an integer in 1..${LOCK_LIMIT_MAX}`);
  }
  const calls = new Calls(client);
  const base = prefix.replace(/\/+$/, "");
  const ttlS = opts.ttlS ?? LOCK_SESSION_TTL_S;
  const lockDelayS = opts.lockDelayS ?? LOCK_DELAY_S;
  const windowMs = Math.min(ttlS, lockDelayS) * 1000 - (opts.killGraceMs ?? LOCK_KILL_GRACE_MS);
  if (windowMs <= 0) {
    throw new LockError("the session's TTL and LockDelay must both exceed the kill grace time");
  }
  const semaphore = opts.limit > 1;
  const clock = opts.clock ?? REAL_CLOCK;
  const created = clock.now();
  const session = await calls.createSession({
    name: opts.name,
    ttlS,
    lockDelayS,
    behavior: semaphore ? "delete" : "release",
  });
  const keeper = new Keeper(calls, session, { windowMs, clock, created });
  try {
    if (semaphore) await joinSemaphore(calls, base, session, opts);
    else await takeLock(calls, base, session, opts.signal);
    // The deadline counts from a renewal sent now that the lock is held.
    await keeper.confirm(opts.signal);
  } catch (e) {
    await keeper.stop();
    await calls.destroy(session).catch(() => {});
    if (opts.signal?.aborted) throw new LockError("stopped while waiting for the lock");
    throw e;
  }
  const lockKey = `${base}/${LOCK_KEY}`;
  if (semaphore) {
    // As Consul's semaphore monitor: the whole prefix, so the end of our own contender key
    // (Behavior delete) counts as well as leaving the holders.
    const contender = `${base}/${session}`;
    keeper.watch({ key: `${base}/`, recurse: true, name: lockKey }, (pairs) => {
      const lockPair = pairs.find((p) => p.Key === lockKey);
      const mine = pairs.find((p) => p.Key === contender);
      if (lockPair === undefined || mine?.Session !== session) return false;
      try {
        return holders(lockPair).Holders[session] === true;
      } catch {
        return false; // overwritten with something else
      }
    });
  } else {
    keeper.watch({ key: lockKey, name: lockKey }, (pairs) => pairs[0]?.Session === session);
  }
  return {
    session,
    lost: keeper.lost,
    async release() {
      await keeper.stop();
      try {
        if (semaphore) await leaveSemaphore(calls, base, session);
        else await releaseLock(calls, lockKey, session);
      } finally {
        await calls.destroy(session).catch(() => {});
      }
    },
  };
}

function aborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new LockError("stopped while waiting for the lock");
}

async function takeLock(calls: Calls, base: string, session: string, signal?: AbortSignal) {
  const key = `${base}/${LOCK_KEY}`;
  let index = 0;
  for (;;) {
    aborted(signal);
    const got = await calls.get(key, { index, signal });
    const pair = got.pairs[0];
    if (pair?.Session === session) return;
    if (pair === undefined || pair.Session === undefined || pair.Session === "") {
      if (pair !== undefined && isSemaphoreValue(pair.Value)) {
        throw new LockError(`${key} holds a semaphore (berth lock -n), not a lock`);
      }
      if (await calls.put(key, "", { acquire: session })) return;
      await sleep(LOCK_RETRY_MS, signal); // lock-delay after the last holder's session ended
      index = 0;
      continue;
    }
    index = await nextIndex(index, got.index, signal);
  }
}

/**
 * The index of the next blocking read: the one just seen, or 0 (read at once) when it went
 * backwards (a restored store); an agent that gives no index is read again after a pause.
 */
async function nextIndex(before: number, seen: number, signal?: AbortSignal): Promise<number> {
  if (seen <= 0) await sleep(LOCK_RETRY_MS, signal);
  return seen >= before ? seen : 0;
}

function isSemaphoreValue(v: string | null): boolean {
  try {
    const s = JSON.parse(decodeValue(v));
    return typeof s === "object" && s !== null && "Limit" in s && "Holders" in s;
  } catch {
    return false;
  }
}

function holders(pair: KvPair): Semaphore {
  let s: unknown;
  try {
    s = JSON.parse(decodeValue(pair.Value));
  } catch {
    s = null;
  }
  const ok = typeof s === "object" && s !== null &&
    Number.isInteger((s as Semaphore).Limit) &&
    typeof (s as Semaphore).Holders === "object" && (s as Semaphore).Holders !== null;
  if (!ok) throw new LockError(`${pair.Key} is no semaphore state ({"Limit", "Holders"})`);
  return s as Semaphore;
}

async function joinSemaphore(calls: Calls, base: string, session: string, opts: LockOptions) {
  const lockKey = `${base}/${LOCK_KEY}`;
  if (!await calls.put(`${base}/${session}`, "", { acquire: session })) {
    throw new LockError(`cannot create the contender key ${base}/${session}`);
  }
  let index = 0;
  for (;;) {
    aborted(opts.signal);
    const got = await calls.get(`${base}/`, { index, recurse: true, signal: opts.signal });
    const lockPair = got.pairs.find((p) => p.Key === lockKey);
    const state: Semaphore = lockPair === undefined
      ? { Limit: opts.limit, Holders: {} }
      : holders(lockPair);
    if (state.Limit !== opts.limit) {
      throw new LockError(`${lockKey} has limit ${state.Limit}, not ${opts.limit} (-n)`);
    }
    const alive = new Set(
      got.pairs.filter((p) => p.Key !== lockKey && p.Session).map((p) => p.Session!),
    );
    const live = Object.keys(state.Holders).filter((s) => alive.has(s));
    if (live.includes(session)) return;
    if (live.length < opts.limit) {
      const next: Semaphore = {
        Limit: opts.limit,
        Holders: Object.fromEntries([...live, session].map((s) => [s, true])),
      };
      const cas = lockPair?.ModifyIndex ?? 0;
      if (await calls.put(lockKey, JSON.stringify(next), { cas })) return;
      index = 0; // someone else changed it: read again at once
      continue;
    }
    index = await nextIndex(index, got.index, opts.signal);
  }
}

async function releaseLock(calls: Calls, key: string, session: string): Promise<void> {
  await calls.put(key, "", { release: session });
  // Consul's Lock.Destroy: the key goes when nobody holds it (CAS: not if taken meanwhile).
  const { pairs } = await calls.get(key, { index: 0 });
  const pair = pairs[0];
  if (pair !== undefined && !pair.Session) await calls.delete(key, pair.ModifyIndex);
}

async function leaveSemaphore(calls: Calls, base: string, session: string): Promise<void> {
  const lockKey = `${base}/${LOCK_KEY}`;
  for (let attempt = 0; attempt < 16; attempt++) {
    const { pairs } = await calls.get(lockKey, { index: 0 });
    const pair = pairs[0];
    if (pair === undefined) break;
    const state = holders(pair);
    if (!state.Holders[session]) break;
    delete state.Holders[session];
    if (await calls.put(lockKey, JSON.stringify(state), { cas: pair.ModifyIndex })) break;
  }
  const r = await calls.client.request("DELETE", keyPath(`${base}/${session}`));
  await r?.body?.cancel();
}

/**
 * Renews the session and watches the lock key; resolves `lost` once either says so, or once the
 * deadline after the last successful renewal's send time passes (armed by confirm()).
 */
class Keeper {
  readonly lost: Promise<string>;
  readonly #calls: Calls;
  readonly #session: string;
  readonly #windowMs: number;
  readonly #clock: Clock;
  readonly #stop = new AbortController();
  /** When the last renewal the agent accepted was sent (or the session create). */
  #renewSent: number;
  #deadline: unknown = null;
  #resolve!: (reason: string) => void;
  #done = false;
  #loops: Promise<void>[] = [];

  constructor(
    calls: Calls,
    session: string,
    opts: { windowMs: number; clock: Clock; created: number },
  ) {
    this.#calls = calls;
    this.#session = session;
    this.#windowMs = opts.windowMs;
    this.#clock = opts.clock;
    this.#renewSent = opts.created;
    this.lost = new Promise((r) => this.#resolve = r);
    this.#loops.push(this.#renewLoop());
  }

  #lose(reason: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#disarm();
    this.#resolve(reason);
    this.#stop.abort();
  }

  #disarm(): void {
    if (this.#deadline !== null) this.#clock.clearTimeout(this.#deadline);
    this.#deadline = null;
  }

  /** (Re)sets the local deadline: the window after the last successful renewal was sent. */
  #arm(): void {
    if (this.#done) return;
    this.#disarm();
    const sent = this.#renewSent;
    this.#deadline = this.#clock.setTimeout(() => {
      this.#deadline = null;
      const s = ((this.#clock.now() - sent) / 1000).toFixed(1);
      this.#lose(`no renewal of session ${this.#session} reached the agent for ${s}s`);
    }, Math.max(0, sent + this.#windowMs - this.#clock.now()));
  }

  /** One renewal; true when the agent accepted it. Loses the lock when the session is gone. */
  async #renew(): Promise<boolean> {
    const sent = this.#clock.now();
    if (!await this.#calls.renew(this.#session, this.#stop.signal)) {
      this.#lose(`session ${this.#session} was invalidated`);
      return false;
    }
    if (sent > this.#renewSent) this.#renewSent = sent;
    if (this.#deadline !== null) this.#arm();
    return true;
  }

  /** Renews until the agent accepts (then arms the deadline) or the session is gone. */
  async confirm(signal?: AbortSignal): Promise<void> {
    for (;;) {
      aborted(signal);
      if (this.#done) throw new LockError(`session ${this.#session} ended`);
      try {
        if (await this.#renew()) {
          this.#arm();
          return;
        }
      } catch {
        await sleep(LOCK_RETRY_MS, signal, this.#clock);
      }
    }
  }

  async #renewLoop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      await sleep(this.#windowMs / 2, signal, this.#clock);
      if (signal.aborted) return;
      try {
        if (!await this.#renew()) return;
      } catch {
        // Try again sooner than the period: the deadline says when it is too late.
        await sleep(LOCK_RETRY_MS, signal, this.#clock);
      }
    }
  }

  /** Watches `key` (a prefix with `recurse`) until `stillHeld` says no; `name` is for messages. */
  watch(
    what: { key: string; recurse?: boolean; name: string },
    stillHeld: (pairs: KvPair[]) => boolean,
  ): void {
    this.#loops.push((async () => {
      const signal = this.#stop.signal;
      let index = 0;
      while (!signal.aborted) {
        try {
          const got = await this.#calls.get(what.key, { index, recurse: what.recurse, signal });
          if (signal.aborted) return;
          if (!stillHeld(got.pairs)) {
            this.#lose(`${what.name} is no longer held by session ${this.#session}`);
            return;
          }
          index = await nextIndex(index, got.index, signal);
        } catch {
          if (signal.aborted) return;
          await sleep(LOCK_RETRY_MS, signal, this.#clock);
        }
      }
    })());
  }

  async stop(): Promise<void> {
    this.#done = true;
    this.#disarm();
    this.#stop.abort();
    await Promise.allSettled(this.#loops);
  }
}
