/**
 * Load-balancing policies over one service's targets. Each table rebuild makes new balancers,
 * seeded from the previous table's (so a round-robin position survives a rebuild); requests in
 * flight keep using the balancer of the table they started on.
 *
 * - `round_robin` (default): smooth weighted round robin as in nginx. With equal weights it is
 *   plain rotation; with weights 5,1,1 it sends a,a,b,a,c,a,a, never a burst to one target.
 * - `least_conn`: the target with the fewest in-flight requests per unit of weight; ties rotate.
 * - `p2c`: power of two choices: two random distinct targets, the less loaded (per weight) wins.
 * - `hash`: rendezvous hashing of a request key (rendezvous.ts): the same key goes to the same
 *   target on every member and worker; a request without a key goes round robin.
 * - `sticky_cookie`: the first choice is rendezvous hashing of the client's IP (so members
 *   agree), later ones follow the cookie (`byToken`, http_proxy.ts sets it).
 *
 * Weights are the targets' own, or what `BalancerOptions.weight` makes of them (slow start).
 * `peek` says what `pick` would choose now without changing any state (`berth explain`).
 *
 * @module
 */
import type { LbPolicy } from "../store/mod.ts";
import { type Hash64, idHash, keyHash, score, stickyToken } from "./rendezvous.ts";
// The policy list and its parser live with the store's rules (validated on every registration).
export { LB_META_KEY, LB_POLICIES, type LbPolicy, parseLbPolicy } from "../store/mod.ts";

/** One upstream endpoint in a route table. Weight is ≥ 1 (weight-0 instances are left out). */
export interface Target {
  /** Instance id. */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  /** `id|address|port`: identifies the connection pool and passive-health state. */
  readonly key: string;
  /** The instance's service (route members carry it; metrics count pool events by it). */
  readonly service?: string;
}

export interface BalancerOptions {
  /** In-flight requests to a target, by target key (least_conn, p2c). Default: always 0. */
  load?: (key: string) => number;
  /** Uniform random in [0, 1) (p2c). Default Math.random. */
  random?: () => number;
  /**
   * The same service's balancer from the previous table, to carry rotation state over (per
   * target id; both target lists in id order).
   */
  previous?: Balancer | null;
  /** A target's weight now (slow start ramps it). Default: `Target.weight`. */
  weight?: (t: Target) => number;
}

/** Excludes targets from a pick (already tried, ejected). */
export type Skip = (t: Target) => boolean;

/**
 * Picks targets for one service. `skip` excludes targets (already tried, ejected); `key` is the
 * request's hash key (`hash`, `sticky_cookie`; ignored by the other policies).
 */
export class Balancer {
  readonly policy: LbPolicy;
  readonly targets: readonly Target[];
  readonly #current: Float64Array;
  readonly #load: (key: string) => number;
  readonly #random: () => number;
  readonly #weight: ((t: Target) => number) | null;
  #cursor = 0;
  /** Instance id hashes, in target order (made on the first hashed pick). */
  #ids: Hash64[] | null = null;
  /** Sticky cookie value → target (made on the first lookup). */
  #tokens: Map<string, Target> | null = null;

  constructor(policy: LbPolicy, targets: readonly Target[], opts: BalancerOptions = {}) {
    this.policy = policy;
    this.targets = targets;
    this.#current = new Float64Array(targets.length);
    this.#load = opts.load ?? (() => 0);
    this.#random = opts.random ?? Math.random;
    this.#weight = opts.weight ?? null;
    const prev = opts.previous;
    if (prev) {
      this.#cursor = prev.#cursor;
      // Route tables list targets in id order: one merge walk carries each target's state
      // (no map of 10,000 ids per change of a big service). Ids out of order lose theirs.
      const before = prev.targets;
      let i = 0;
      for (let j = 0; j < targets.length; j++) {
        const id = targets[j]!.id;
        while (i < before.length && before[i]!.id !== id && before[i]!.id < id) i++;
        if (i < before.length && before[i]!.id === id) this.#current[j] = prev.#current[i++]!;
      }
    }
  }

  /** The next target, or null when every target is skipped. */
  pick(skip?: Skip, key?: string): Target | null {
    return this.#choose(skip, key, true);
  }

  /**
   * The target `pick` would return now, with no change to the balancer's state. For `p2c`,
   * whose two candidates are random, the least loaded (per weight) of all.
   */
  peek(skip?: Skip, key?: string): Target | null {
    return this.#choose(skip, key, false);
  }

  /** The sticky cookie's value naming `t` (opaque; the same on every member). */
  static token(t: Target): string {
    return stickyToken(t.id);
  }

  /** The target a sticky cookie's value names, or null (unknown, or gone from the service). */
  byToken(token: string): Target | null {
    if (this.#tokens === null) {
      this.#tokens = new Map();
      for (const t of this.targets) this.#tokens.set(stickyToken(t.id), t);
    }
    return this.#tokens.get(token) ?? null;
  }

  #choose(skip: Skip | undefined, key: string | undefined, commit: boolean): Target | null {
    const n = this.targets.length;
    if (n === 0) return null;
    if (n === 1) {
      const only = this.targets[0]!;
      return skip?.(only) ? null : only;
    }
    switch (this.policy) {
      case "round_robin":
        return this.#smoothWeighted(skip, commit);
      case "least_conn":
        return this.#leastConn(skip, commit);
      case "p2c":
        return commit ? this.#p2c(skip) : this.#leastConn(skip, false);
      case "hash":
      case "sticky_cookie":
        return key === undefined ? this.#smoothWeighted(skip, commit) : this.#rendezvous(skip, key);
    }
  }

  #weightOf(t: Target): number {
    return this.#weight === null ? t.weight : this.#weight(t);
  }

  // nginx's smooth weighted round robin: every eligible target gains its weight, the largest
  // current value wins and pays back the round's total. Over sum(weights) picks, each target is
  // chosen exactly `weight` times (when none is skipped). A peek finds the winner only.
  #smoothWeighted(skip: Skip | undefined, commit: boolean): Target | null {
    const ts = this.targets;
    const cur = this.#current;
    let best = -1;
    let bestValue = -Infinity;
    let total = 0;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i]!;
      if (skip !== undefined && skip(t)) continue;
      const w = this.#weightOf(t);
      const value = cur[i]! + w;
      if (commit) cur[i] = value;
      total += w;
      if (best < 0 || value > bestValue) {
        best = i;
        bestValue = value;
      }
    }
    if (best < 0) return null;
    if (commit) cur[best]! -= total;
    return ts[best]!;
  }

  #leastConn(skip: Skip | undefined, commit: boolean): Target | null {
    const ts = this.targets;
    const n = ts.length;
    const start = (commit ? this.#cursor++ : this.#cursor) % n;
    let best: Target | null = null;
    let bestScore = Infinity;
    for (let k = 0; k < n; k++) {
      const t = ts[(start + k) % n]!;
      if (skip !== undefined && skip(t)) continue;
      const score = this.#load(t.key) / this.#weightOf(t);
      if (score < bestScore) {
        best = t;
        bestScore = score;
      }
    }
    return best;
  }

  #p2c(skip: Skip | undefined): Target | null {
    const eligible = skip === undefined ? this.targets : this.targets.filter((t) => !skip(t));
    const n = eligible.length;
    if (n <= 1) return eligible[0] ?? null;
    const i = Math.floor(this.#random() * n) % n;
    let j = Math.floor(this.#random() * (n - 1)) % (n - 1);
    if (j >= i) j++;
    const a = eligible[i]!;
    const b = eligible[j]!;
    return this.#load(b.key) / this.#weightOf(b) < this.#load(a.key) / this.#weightOf(a) ? b : a;
  }

  /** The target with the highest rendezvous score for `key` among those not skipped. */
  #rendezvous(skip: Skip | undefined, key: string): Target | null {
    const ts = this.targets;
    const ids = this.#ids ??= ts.map((t) => idHash(t.id));
    const k = keyHash(key);
    let best: Target | null = null;
    let bestScore = -Infinity;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i]!;
      if (skip !== undefined && skip(t)) continue;
      const s = score(k, ids[i]!, this.#weightOf(t));
      // Equal scores (never in practice): the lower instance id, as on every member.
      if (s > bestScore) {
        best = t;
        bestScore = s;
      }
    }
    return best;
  }
}
