/**
 * bcrypt password checks for basic auth (basic_auth.ts), bounded in CPU and memory:
 * - verdicts are remembered in two bounded LRU maps (passwords that matched, passwords that did
 *   not), keyed by a SHA-256 of the credential and the hash, never by the password itself; a
 *   client sending its right password again costs one map lookup, and one sending the same wrong
 *   one again costs no bcrypt either. A verdict cannot go stale: the key holds the hash, so a new
 *   hash (a new password) is a new key.
 * - a check not remembered runs on a thread of its own (bcrypt_worker.ts: at cost 10 one takes
 *   tens of milliseconds, which would stall every connection of the proxy thread), at most
 *   `VERIFY_IN_FLIGHT_MAX` per proxy thread at a time; past that the caller gets `"busy"`
 *   (the proxy answers 429) without any bcrypt run: a stream of guessed passwords costs at most
 *   one busy verifier thread per proxy thread. One client (address) has at most
 *   `CLIENT_IN_FLIGHT_MAX` of those checks under way, so a guesser cannot hold every slot and
 *   lock other clients' first logins out.
 * - the same check asked twice while it runs is run once.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import type { BcryptAsk, BcryptVerdict } from "./bcrypt_worker.ts";
import { errorText } from "../../lib/error_text.ts";

/** Checks under way (or queued on the verifier thread) per proxy thread. */
export const VERIFY_IN_FLIGHT_MAX = 4;
/** Checks under way per client address (and per proxy thread). */
export const CLIENT_IN_FLIGHT_MAX = 1;
/** Remembered credentials that matched. */
export const GOOD_VERDICTS_MAX = 4096;
/** Remembered credentials that did not match (apart: guesses never evict good verdicts). */
export const BAD_VERDICTS_MAX = 1024;
/** At most one log line per this long about checks that failed (the verifier thread died). */
export const FAILURE_LOG_INTERVAL_MS = 60_000;

/** A check's outcome: matched, did not, or not checked because too many are under way. */
export type Verdict = boolean | "busy";

/** Checks a password against a bcrypt hash. */
export type VerifyFn = (password: string, hash: string) => Promise<boolean>;

export interface BcryptVerifierOptions {
  /** The check itself. Default: bcryptjs on a verifier thread (`BcryptThread`). */
  verify?: VerifyFn;
  /** Default VERIFY_IN_FLIGHT_MAX. */
  inFlightMax?: number;
  /** Default CLIENT_IN_FLIGHT_MAX. */
  clientInFlightMax?: number;
  /** Default GOOD_VERDICTS_MAX. */
  goodMax?: number;
  /** Default BAD_VERDICTS_MAX. */
  badMax?: number;
  /** Where a failed check is told (at most once a minute). Default console.error. */
  log?: (line: string) => void;
  /** Clock for the log's pace. Default Date.now. */
  now?: () => number;
}

/** A Map used as an LRU: `get` refreshes, `set` evicts the oldest past `max`. */
class Lru {
  readonly #map = new Map<string, true>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  has(key: string): boolean {
    if (!this.#map.delete(key)) return false;
    this.#map.set(key, true);
    return true;
  }

  add(key: string): void {
    this.#map.delete(key);
    this.#map.set(key, true);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }
}

/** Remembered, bounded bcrypt checks; see the module comment. */
export class BcryptVerifier {
  readonly #verify: VerifyFn;
  readonly #inFlightMax: number;
  readonly #good: Lru;
  readonly #bad: Lru;
  readonly #pending = new Map<string, Promise<Verdict>>();
  #inFlight = 0;
  readonly #clientInFlightMax: number;
  /** Checks under way by client address (absent: none). */
  readonly #byClient = new Map<string, number>();
  readonly #log: (line: string) => void;
  readonly #now: () => number;
  #loggedMs = -Infinity;
  /** Checks run (not answered from memory): for tests and figures. */
  runs = 0;

  constructor(opts: BcryptVerifierOptions = {}) {
    this.#verify = opts.verify ?? ((password, hash) => bcryptThread().verify(password, hash));
    this.#inFlightMax = opts.inFlightMax ?? VERIFY_IN_FLIGHT_MAX;
    this.#clientInFlightMax = opts.clientInFlightMax ?? CLIENT_IN_FLIGHT_MAX;
    this.#good = new Lru(opts.goodMax ?? GOOD_VERDICTS_MAX);
    this.#bad = new Lru(opts.badMax ?? BAD_VERDICTS_MAX);
    this.#log = opts.log ?? console.error;
    this.#now = opts.now ?? Date.now;
  }

  /** Checks under way. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Remembered verdicts (good, bad). */
  get remembered(): [number, number] {
    return [this.#good.size, this.#bad.size];
  }

  /**
   * Whether `password` matches `hash`; `credential` (the client's Authorization value, which
   * holds the user and password) keys the memory of verdicts; `client` (its address) counts
   * against the per-client bound. Synchronous when remembered or busy, else a promise (never
   * rejected: a failed check is `"busy"`, not remembered).
   */
  check(
    credential: string,
    password: string,
    hash: string,
    client = "",
  ): Verdict | Promise<Verdict> {
    const key = createHash("sha256").update(credential).update("\n").update(hash).digest(
      "base64",
    );
    if (this.#good.has(key)) return true;
    if (this.#bad.has(key)) return false;
    const pending = this.#pending.get(key);
    if (pending !== undefined) return pending;
    if (this.#inFlight >= this.#inFlightMax) return "busy";
    const mine = this.#byClient.get(client) ?? 0;
    if (mine >= this.#clientInFlightMax) return "busy";
    this.#byClient.set(client, mine + 1);
    this.#inFlight++;
    this.runs++;
    const run = this.#run(key, password, hash, client);
    this.#pending.set(key, run);
    return run;
  }

  async #run(key: string, password: string, hash: string, client: string): Promise<Verdict> {
    try {
      const ok = await this.#verify(password, hash);
      (ok ? this.#good : this.#bad).add(key);
      return ok;
    } catch (e) {
      const now = this.#now();
      if (now - this.#loggedMs >= FAILURE_LOG_INTERVAL_MS) {
        this.#loggedMs = now;
        this.#log(`proxy: basic auth: a password check failed (answered 429): ${errorText(e)}`);
      }
      return "busy";
    } finally {
      this.#inFlight--;
      this.#pending.delete(key);
      const left = this.#byClient.get(client)! - 1;
      if (left > 0) this.#byClient.set(client, left);
      else this.#byClient.delete(client);
    }
  }
}

/**
 * One verifier thread (bcrypt_worker.ts), started at the first check and kept; it holds the
 * process open only while a check is under way (`unref` when idle).
 */
export class BcryptThread {
  #worker: Worker | null = null;
  readonly #waiting = new Map<number, PromiseWithResolvers<boolean>>();
  #nextId = 1;

  /** Whether `password` matches `hash` (false for a hash bcrypt refuses). */
  verify(password: string, hash: string): Promise<boolean> {
    const w = this.#worker ?? this.#start();
    const id = this.#nextId++;
    const p = Promise.withResolvers<boolean>();
    this.#waiting.set(id, p);
    if (this.#waiting.size === 1) w.ref();
    w.postMessage({ id, password, hash } satisfies BcryptAsk);
    return p.promise;
  }

  /** Stops the thread; checks under way fail. */
  close(): void {
    const w = this.#worker;
    this.#worker = null;
    this.#fail(new Error("bcrypt thread closed"));
    void w?.terminate();
  }

  #start(): Worker {
    const w = new Worker(new URL("./bcrypt_worker.ts", import.meta.url));
    w.unref();
    w.on("message", (m: BcryptVerdict) => {
      const p = this.#waiting.get(m.id);
      if (p === undefined) return;
      this.#waiting.delete(m.id);
      if (this.#waiting.size === 0) w.unref();
      p.resolve(m.ok);
    });
    const gone = (why: Error) => {
      if (this.#worker !== w) return;
      this.#worker = null;
      this.#fail(why);
    };
    w.on("error", (e: Error) => gone(e));
    w.on("exit", (code: number) => gone(new Error(`bcrypt thread exited (${code})`)));
    this.#worker = w;
    return w;
  }

  #fail(why: Error): void {
    for (const p of this.#waiting.values()) p.reject(why);
    this.#waiting.clear();
  }
}

let thread: BcryptThread | null = null;

/** This thread's verifier thread (one per proxy thread, started on first use). */
export function bcryptThread(): BcryptThread {
  return thread ??= new BcryptThread();
}

/** This thread's verifier: basic auth on every route of the thread shares its bounds. */
export const sharedVerifier: BcryptVerifier = new BcryptVerifier();
