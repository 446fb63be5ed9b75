/**
 * Load-balancing policies over one service's targets. Each table rebuild makes new balancers,
 * seeded from the previous table's (so a round-robin position survives a rebuild); requests in
 * flight keep using the balancer of the table they started on.
 *
 * - `round_robin` (default): smooth weighted round robin as in nginx. With equal weights it is
 *   plain rotation; with weights 5,1,1 it sends a,a,b,a,c,a,a, never a burst to one target.
 * - `least_conn`: the target with the fewest in-flight requests per unit of weight; ties go by
 *   smooth weighted round robin among the tied (as nginx), so that at light load (every target
 *   idle) each gets its weight's share.
 * - `p2c`: power of two choices: two random distinct targets, the less loaded (per weight) wins;
 *   a tie goes to one of them with a chance by weight.
 * - `hash`: rendezvous hashing of a request key (rendezvous.ts): the same key goes to the same
 *   target on every member and worker; a request without a key goes round robin.
 * - `sticky_cookie`: the first choice is the round-robin one (the cookie then carries it to
 *   every member), later ones follow the cookie (`byToken`, http_proxy.ts sets it); TCP and UDP
 *   routes, which have no cookie, pass the client's IP as the key: rendezvous hashing.
 *
 * Weights are the targets' own, or what `BalancerOptions.weight` makes of them (slow start),
 * except in rendezvous hashing: a ramp is local to a member (it starts with that member's route
 * change or ejection), and hashed keys must go to the same target on every member.
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

  /** Per-target scores of the current pick (least_conn), reused. */
  #scores: Float64Array | null = null;

  #weightOf(t: Target): number {
    return this.#weight === null ? t.weight : this.#weight(t);
  }

  // nginx's smooth weighted round robin: every eligible target gains its weight, the largest
  // current value wins and pays back the round's total. Over sum(weights) picks, each target is
  // chosen exactly `weight` times (when none is skipped). A peek finds the winner only. With
  // `scores`, only the targets whose score is `best` are eligible (least_conn's ties).
  #smoothWeighted(
    skip: Skip | undefined,
    commit: boolean,
    scores?: Float64Array,
    best?: number,
  ): Target | null {
    const ts = this.targets;
    const cur = this.#current;
    let winner = -1;
    let winnerValue = -Infinity;
    let total = 0;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i]!;
      if (scores !== undefined ? scores[i] !== best : skip !== undefined && skip(t)) continue;
      const w = this.#weightOf(t);
      const value = cur[i]! + w;
      if (commit) cur[i] = value;
      total += w;
      if (winner < 0 || value > winnerValue) {
        winner = i;
        winnerValue = value;
      }
    }
    if (winner < 0) return null;
    if (commit) cur[winner]! -= total;
    return ts[winner]!;
  }

  #leastConn(skip: Skip | undefined, commit: boolean): Target | null {
    const ts = this.targets;
    const n = ts.length;
    const scores = this.#scores ??= new Float64Array(n);
    let best = Infinity;
    for (let i = 0; i < n; i++) {
      const t = ts[i]!;
      const score = skip !== undefined && skip(t) ? NaN : this.#load(t.key) / this.#weightOf(t);
      scores[i] = score;
      if (score < best) best = score;
    }
    // NaN (skipped) never equals `best`.
    return best === Infinity ? null : this.#smoothWeighted(undefined, commit, scores, best);
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
    const wa = this.#weightOf(a);
    const wb = this.#weightOf(b);
    const sa = this.#load(a.key) / wa;
    const sb = this.#load(b.key) / wb;
    if (sa !== sb) return sb < sa ? b : a;
    // A tie (both idle, at light load): by weight, so a ramping target gets its share only.
    return wa === wb || this.#random() * (wa + wb) < wa ? a : b;
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
      // The target's own weight, never a slow-start ramp's: members must agree.
      const s = score(k, ids[i]!, t.weight);
      // Equal scores (never in practice): the lower instance id, as on every member.
      if (s > bestScore) {
        best = t;
        bestScore = s;
      }
    }
    return best;
  }
}
