/**
 * Load-balancing policies over one service's targets. Each table rebuild makes new balancers,
 * seeded from the previous table's (so a round-robin position survives a rebuild); requests in
 * flight keep using the balancer of the table they started on.
 *
 * - `round_robin` (default): smooth weighted round robin as in nginx. With equal weights it is
 *   plain rotation; with weights 5,1,1 it sends a,a,b,a,c,a,a, never a burst to one target.
 * - `least_conn`: the target with the fewest in-flight requests per unit of weight; ties rotate.
 * - `p2c`: power of two choices: two random distinct targets, the less loaded (per weight) wins.
 *
 * @module
 */
import type { LbPolicy } from "../store/mod.ts";
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
}

/** Picks targets for one service. `skip` excludes targets (already tried, ejected). */
export class Balancer {
  readonly policy: LbPolicy;
  readonly targets: readonly Target[];
  readonly #current: Float64Array;
  readonly #load: (key: string) => number;
  readonly #random: () => number;
  #cursor = 0;

  constructor(policy: LbPolicy, targets: readonly Target[], opts: BalancerOptions = {}) {
    this.policy = policy;
    this.targets = targets;
    this.#current = new Float64Array(targets.length);
    this.#load = opts.load ?? (() => 0);
    this.#random = opts.random ?? Math.random;
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
  pick(skip?: (t: Target) => boolean): Target | null {
    const n = this.targets.length;
    if (n === 0) return null;
    if (n === 1) {
      const only = this.targets[0]!;
      return skip?.(only) ? null : only;
    }
    switch (this.policy) {
      case "round_robin":
        return this.#smoothWeighted(skip);
      case "least_conn":
        return this.#leastConn(skip);
      case "p2c":
        return this.#p2c(skip);
    }
  }

  // nginx's smooth weighted round robin: every eligible target gains its weight, the largest
  // current value wins and pays back the round's total. Over sum(weights) picks, each target is
  // chosen exactly `weight` times (when none is skipped).
  #smoothWeighted(skip?: (t: Target) => boolean): Target | null {
    const ts = this.targets;
    const cur = this.#current;
    let best = -1;
    let total = 0;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i]!;
      if (skip !== undefined && skip(t)) continue;
      cur[i]! += t.weight;
      total += t.weight;
      if (best < 0 || cur[i]! > cur[best]!) best = i;
    }
    if (best < 0) return null;
    cur[best]! -= total;
    return ts[best]!;
  }

  #leastConn(skip?: (t: Target) => boolean): Target | null {
    const ts = this.targets;
    const n = ts.length;
    const start = this.#cursor++ % n;
    let best: Target | null = null;
    let bestScore = Infinity;
    for (let k = 0; k < n; k++) {
      const t = ts[(start + k) % n]!;
      if (skip !== undefined && skip(t)) continue;
      const score = this.#load(t.key) / t.weight;
      if (score < bestScore) {
        best = t;
        bestScore = score;
      }
    }
    return best;
  }

  #p2c(skip?: (t: Target) => boolean): Target | null {
    const eligible = skip === undefined ? this.targets : this.targets.filter((t) => !skip(t));
    const n = eligible.length;
    if (n <= 1) return eligible[0] ?? null;
    const i = Math.floor(this.#random() * n) % n;
    let j = Math.floor(this.#random() * (n - 1)) % (n - 1);
    if (j >= i) j++;
    const a = eligible[i]!;
    const b = eligible[j]!;
    return this.#load(b.key) / b.weight < this.#load(a.key) / a.weight ? b : a;
  }
}
