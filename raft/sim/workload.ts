/**
 * Client load for the simulator: proposals, ReadIndex reads, membership changes and leadership
 * transfers, aimed mostly at the current leader.
 *
 * @module
 */
import type { SimNode } from "./node.ts";
import type { Rng } from "./prng.ts";
import type { Checkers } from "./checkers.ts";
import { ProposalDroppedError } from "../types.ts";
import type { ConfChange } from "../types.ts";

/** Operation rates of one run. */
export interface WorkloadRates {
  propose: number;
  read: number;
  confChange: number;
  transfer: number;
}

/** Chooses operation rates for a run. */
export function chooseWorkloadRates(rng: Rng): WorkloadRates {
  return {
    propose: rng.pick([0.1, 0.3, 0.6]),
    read: rng.pick([0, 0.02, 0.05]),
    confChange: rng.pick([0, 0.003, 0.01]),
    transfer: rng.pick([0, 0.002, 0.005]),
  };
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, n);
  return b;
}

/** Issues client operations. */
export class Workload {
  #nextId = 1;
  proposed = 0;
  dropped = 0;
  confChanges = 0;
  transfers = 0;
  reads = 0;

  constructor(
    readonly rng: Rng,
    readonly nodes: readonly SimNode[],
    readonly checkers: Checkers,
    readonly rates: WorkloadRates,
    readonly minVoters: number,
  ) {}

  #leader(): SimNode | undefined {
    return this.nodes.find((n) => n.raw?.raft.state === "leader");
  }

  #target(): SimNode | undefined {
    const up = this.nodes.filter((n) => n.up);
    if (up.length === 0) return undefined;
    const lead = this.#leader();
    if (lead !== undefined && this.rng.chance(0.8)) return lead;
    return this.rng.pick(up);
  }

  /** One step of client operations; `writes` false stops proposals (quiescing). */
  step(writes: boolean): void {
    const rng = this.rng;
    if (writes && rng.chance(this.rates.propose)) {
      const n = this.#target();
      if (n?.raw !== undefined) {
        this.proposed++;
        try {
          n.raw.propose(u64(this.#nextId++));
        } catch (e) {
          if (!(e instanceof ProposalDroppedError)) throw e;
          this.dropped++;
        }
      }
    }
    if (rng.chance(this.rates.read)) {
      const n = this.#target();
      if (n?.raw !== undefined) {
        const ctx = u64(this.#nextId++);
        this.checkers.onReadStart(ctx);
        n.raw.readIndex(ctx);
        this.reads++;
      }
    }
    if (writes && rng.chance(this.rates.confChange)) this.#confChange();
    if (writes && rng.chance(this.rates.transfer)) {
      const lead = this.#leader();
      if (lead?.raw !== undefined) {
        const voters = lead.raw.status().config.voters.filter((v) => v !== lead.id);
        if (voters.length > 0) {
          lead.raw.transferLeader(rng.pick(voters));
          this.transfers++;
        }
      }
    }
  }

  #confChange(): void {
    const lead = this.#leader();
    if (lead?.raw === undefined) return;
    const cfg = lead.raw.status().config;
    const all = this.nodes.map((n) => n.id);
    const members = new Set([...cfg.voters, ...cfg.learners]);
    const options: ConfChange[] = [];
    for (const id of all) {
      if (!members.has(id)) options.push({ type: "addLearner", nodeId: id });
    }
    for (const id of cfg.learners) options.push({ type: "addNode", nodeId: id });
    if (cfg.voters.length > this.minVoters) {
      for (const id of cfg.voters) {
        options.push({ type: "removeNode", nodeId: id });
        options.push({ type: "addLearner", nodeId: id });
      }
    }
    if (options.length === 0) return;
    const cc = this.rng.pick(options);
    try {
      lead.raw.proposeConfChange(cc);
      this.confChanges++;
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
  }
}
