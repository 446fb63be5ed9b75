/**
 * Simulated network: every message waits a random delay in an unordered in-flight pool, may be
 * dropped or duplicated, and is blocked by directed link cuts (partitions). Pure data plus the
 * shared PRNG; fault decisions (when to cut, how lossy) come from the fault injector.
 *
 * @module
 */
import type { Message, NodeId } from "../types.ts";
import type { Rng } from "./prng.ts";

interface InFlight {
  m: Message;
  deliverAt: number;
}

/** Loss and latency parameters, changed by the fault injector. */
export interface LinkParams {
  dropRate: number;
  dupRate: number;
  maxDelay: number;
  /** Probability that a message takes a long detour (reordering). */
  slowRate: number;
}

/** The in-flight pool and the link cuts. */
export class SimNetwork {
  #pool: InFlight[] = [];
  /** Directed cuts "from->to". */
  readonly cuts = new Set<string>();
  params: LinkParams = { dropRate: 0, dupRate: 0, maxDelay: 3, slowRate: 0.02 };

  constructor(readonly rng: Rng) {}

  size(): number {
    return this.#pool.length;
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cuts.has(`${from}->${to}`);
  }

  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}->${to}`);
  }

  heal(): void {
    this.cuts.clear();
  }

  /**
   * Queues `m` sent at time `now`. Returns false if the network decided to lose it at once
   * (so the sender may be told, e.g. for a snapshot).
   */
  send(m: Message, now: number): boolean {
    const p = this.params;
    if (this.rng.chance(p.dropRate)) return false;
    const copies = this.rng.chance(p.dupRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = this.rng.int(p.maxDelay + 1);
      if (this.rng.chance(p.slowRate)) delay += 5 + this.rng.int(20);
      this.#pool.push({ m, deliverAt: now + delay });
    }
    return true;
  }

  /**
   * Removes and returns the messages due at `now`, in random order (so equal-time messages are
   * reordered). Messages on cut links are dropped and reported through `onCut`.
   */
  due(now: number, onCut: (m: Message) => void): Message[] {
    const ready: Message[] = [];
    const keep: InFlight[] = [];
    for (const f of this.#pool) {
      if (f.deliverAt <= now) ready.push(f.m);
      else keep.push(f);
    }
    this.#pool = keep;
    // Fisher–Yates shuffle.
    for (let i = ready.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      const t = ready[i] as Message;
      ready[i] = ready[j] as Message;
      ready[j] = t;
    }
    return ready.filter((m) => {
      if (this.isCut(m.from, m.to)) {
        onCut(m);
        return false;
      }
      return true;
    });
  }
}
