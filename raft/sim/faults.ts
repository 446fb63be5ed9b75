/**
 * Fault injection for the simulator: partitions (symmetric, one-way, isolation), lossy and
 * duplicating links, and crashes with restarts. Separate from the checkers; every decision
 * comes from the run's single PRNG.
 *
 * @module
 */
import type { SimNetwork } from "./network.ts";
import type { SimNode } from "./node.ts";
import type { Rng } from "./prng.ts";

/** Fault rates of one run (chosen from the seed). */
export interface FaultRates {
  partition: number;
  crash: number;
  maxDownSteps: number;
  dropRate: number;
  dupRate: number;
}

/** Chooses fault rates for a run. */
export function chooseFaultRates(rng: Rng): FaultRates {
  return {
    partition: rng.pick([0, 0.005, 0.01, 0.02]),
    crash: rng.pick([0, 0.002, 0.005, 0.01]),
    maxDownSteps: rng.pick([20, 80, 200]),
    dropRate: rng.pick([0, 0.01, 0.05, 0.1]),
    dupRate: rng.pick([0, 0.01, 0.05]),
  };
}

/** Injects faults step by step. */
export class FaultInjector {
  #partitionUntil = -1;
  #downUntil = new Map<number, number>();
  log: string[] = [];

  constructor(
    readonly rng: Rng,
    readonly net: SimNetwork,
    readonly nodes: readonly SimNode[],
    readonly rates: FaultRates,
  ) {
    net.params = { ...net.params, dropRate: rates.dropRate, dupRate: rates.dupRate };
  }

  /** One step of faults at time `now`. */
  step(now: number): void {
    const rng = this.rng;
    if (this.#partitionUntil >= 0 && now >= this.#partitionUntil) {
      this.net.heal();
      this.#partitionUntil = -1;
      this.log.push(`${now} heal`);
    }
    if (this.#partitionUntil < 0 && rng.chance(this.rates.partition)) this.#partition(now);
    for (const n of this.nodes) {
      if (n.up || n.decommissioned) continue;
      const until = this.#downUntil.get(n.id) ?? 0;
      if (now >= until) {
        n.start();
        this.log.push(`${now} restart ${n.id}`);
      }
    }
    if (rng.chance(this.rates.crash)) {
      const up = this.nodes.filter((n) => n.up);
      if (up.length > 0) {
        const n = rng.pick(up);
        n.crash(now);
        this.#downUntil.set(n.id, now + 1 + rng.int(this.rates.maxDownSteps));
        this.log.push(`${now} crash ${n.id}`);
      }
    }
  }

  #partition(now: number): void {
    const rng = this.rng;
    const ids = this.nodes.map((n) => n.id);
    const kind = rng.int(3);
    if (kind === 0) {
      // Symmetric split: a minority (or exactly half) is cut from the rest.
      const k = 1 + rng.int(Math.floor(ids.length / 2));
      const shuffled = ids.map((id) => ({ id, r: rng.float() }))
        .sort((a, b) => a.r - b.r).map((x) => x.id);
      const side = new Set(shuffled.slice(0, k));
      for (const a of ids) {
        for (const b of ids) if (side.has(a) !== side.has(b)) this.net.cut(a, b);
      }
      this.log.push(`${now} split [${[...side]}]`);
    } else if (kind === 1) {
      // One-way: a cannot reach b (b still reaches a).
      const a = rng.pick(ids);
      const b = rng.pick(ids.filter((x) => x !== a));
      this.net.cut(a, b);
      this.log.push(`${now} oneway ${a}->${b}`);
    } else {
      // Isolate one node in one direction only for all peers (it hears, but is not heard).
      const a = rng.pick(ids);
      for (const b of ids) if (b !== a) this.net.cut(a, b);
      this.log.push(`${now} mute ${a}`);
    }
    this.#partitionUntil = now + 20 + rng.int(300);
  }

  /** Ends every fault: links healed and lossless, every non-decommissioned node restarted. */
  healAll(now: number): void {
    this.net.heal();
    this.#partitionUntil = -1;
    this.net.params = { ...this.net.params, dropRate: 0, dupRate: 0 };
    for (const n of this.nodes) {
      if (!n.up && !n.decommissioned) n.start();
    }
    this.log.push(`${now} heal all`);
  }
}
