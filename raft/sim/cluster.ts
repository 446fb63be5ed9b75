/**
 * One simulated run: a seeded PRNG builds a 3- or 5-node cluster and drives network, faults,
 * client load, ticks and ready handling step by step; checkers run after every step. Then all
 * faults heal and the cluster must converge.
 *
 * @module
 */
import { RaftInvariantError } from "../types.ts";
import type { ConfState, Message } from "../types.ts";
import { Checkers } from "./checkers.ts";
import { chooseFaultRates, FaultInjector } from "./faults.ts";
import { SimNetwork } from "./network.ts";
import { type NodeOptions, SimNode } from "./node.ts";
import { Rng } from "./prng.ts";
import { chooseWorkloadRates, Workload } from "./workload.ts";

/** Upper bound on steps after healing before non-convergence is reported. */
export const HEAL_STEPS_MAX = 20_000;

/** Parameters of a run. */
export interface RunOptions {
  seed: number;
  nodes: 3 | 5;
  /** Steps with faults and load. */
  steps: number;
  /** Steps after healing, before the convergence check. */
  healSteps?: number;
  /** Collect a per-event trace. */
  trace?: boolean;
}

/** Outcome of a run. */
export interface RunResult {
  seed: number;
  nodes: number;
  violations: string[];
  description: string;
  stats: {
    proposed: number;
    acked: number;
    reads: number;
    readsServed: number;
    confChanges: number;
    transfers: number;
    maxTerm: number;
    crashes: number;
  };
  trace: string[];
}

/** Node count for a seed: explicit, or alternating 3/5 so replays need no extra flag. */
export function nodesFor(seed: number, explicit: number | undefined): 3 | 5 {
  if (explicit === 3 || explicit === 5) return explicit;
  return seed % 2 === 1 ? 5 : 3;
}

/** Runs one seed; deterministic in `opts`. */
export function runSeed(opts: RunOptions): RunResult {
  const rng = new Rng(opts.seed);
  const ids = Array.from({ length: opts.nodes }, (_, i) => i + 1);
  const nodeOpts: NodeOptions = {
    electionTick: 10,
    heartbeatTick: 1 + rng.int(2),
    preVote: rng.chance(0.5),
    checkQuorum: rng.chance(0.5),
    maxSizePerMsg: rng.pick([64, 256, 4096]),
    maxInflightMsgs: rng.pick([1, 4, 64]),
    maxInflightBytes: rng.pick([0, 0, 128]),
    maxUncommittedEntriesSize: rng.pick([0, 0, 256]),
    maxCommittedSizePerReady: rng.pick([64, 1 << 20]),
  };
  const compactEvery = rng.pick([8, 30, 1000]);
  const tickRate = rng.pick([0.3, 0.5, 0.9]);
  const net = new SimNetwork(rng);
  const checkers = new Checkers();
  const nodes = ids.map((id) =>
    new SimNode(id, { voters: ids, learners: [] }, nodeOpts, rng, compactEvery)
  );
  for (const n of nodes) n.start();
  const faults = new FaultInjector(rng, net, nodes, chooseFaultRates(rng));
  const minVoters = Math.ceil(opts.nodes / 2);
  const workload = new Workload(rng, nodes, checkers, chooseWorkloadRates(rng), minVoters);
  const trace: string[] = [];
  const description =
    `nodes=${opts.nodes} ${JSON.stringify(nodeOpts)} compactEvery=${compactEvery} ` +
    `tickRate=${tickRate} faults=${JSON.stringify(faults.rates)} load=${
      JSON.stringify(workload.rates)
    }`;
  const byId = (id: number) => nodes[id - 1];
  let now = 0;

  const send = (m: Message) => net.send(m, now);
  const onCut = (m: Message) => {
    const sender = byId(m.from);
    if (sender?.raw === undefined) return;
    if (m.type === "MsgSnap") sender.raw.reportSnapshot(m.to, "failure");
    else if (rng.chance(0.3)) sender.raw.reportUnreachable(m.to);
  };

  const oneStep = (writes: boolean) => {
    now++;
    checkers.step = now;
    workload.step(writes);
    for (const n of nodes) {
      if (n.raw !== undefined && rng.chance(tickRate)) n.raw.tick();
    }
    for (const m of net.due(now, onCut)) {
      const target = byId(m.to);
      const sender = byId(m.from);
      if (target?.raw === undefined) {
        if (m.type === "MsgSnap") sender?.raw?.reportSnapshot(m.to, "failure");
        continue;
      }
      target.raw.step(m);
      if (m.type === "MsgSnap") sender?.raw?.reportSnapshot(m.to, "finish");
    }
    for (const n of nodes) {
      if (n.pending !== undefined) {
        if (rng.chance(0.7)) n.processReady(checkers, send);
      } else if (rng.chance(0.8)) {
        n.takeReady();
      }
    }
    observeMembership();
    checkers.checkStep(nodes);
    if (opts.trace) {
      const s = nodes.map((n) =>
        n.raw === undefined
          ? `${n.id}:down`
          : `${n.id}:${
            n.raw.raft.state[0]
          }${n.raw.raft.term}/c${n.raw.raft.raftLog.committed}/a${n.appliedIndex}`
      ).join(" ");
      trace.push(`${now} ${s} net=${net.size()}`);
    }
  };

  // The membership at the highest index any node has applied. Applied prefixes are identical
  // (checked), so it only moves forward; a node restarted from an old snapshot re-applies
  // older memberships and must not be taken as the current one.
  let latest: { index: number; confState: ConfState } = {
    index: 0,
    confState: { voters: ids, learners: [] },
  };
  const observeMembership = () => {
    for (const n of nodes) {
      if (n.up && n.appliedIndex > latest.index) {
        latest = { index: n.appliedIndex, confState: n.confState };
      }
    }
  };

  // Nodes not in the latest applied membership are taken out of service.
  const decommission = () => {
    const cs = latest.confState;
    const members = new Set([...cs.voters, ...cs.learners]);
    for (const n of nodes) {
      if (!members.has(n.id) && !n.decommissioned) {
        n.crash(now);
        n.decommissioned = true;
      } else if (members.has(n.id) && n.decommissioned) {
        n.decommissioned = false;
        n.start();
      }
    }
  };

  let crashes = 0;
  try {
    for (let i = 0; i < opts.steps && checkers.violations.length === 0; i++) {
      const before = faults.log.length;
      faults.step(now + 1);
      for (const l of faults.log.slice(before)) {
        if (l.includes("crash")) crashes++;
        if (opts.trace) trace.push(l);
      }
      oneStep(true);
    }
    faults.healAll(now);
    // Heal for at least `healSteps`, then until converged (bounded: a cluster that cannot
    // converge within HEAL_STEPS_MAX is a liveness violation).
    const healSteps = opts.healSteps ?? 600;
    const converged = () =>
      nodes.every((n) => n.decommissioned || (n.up && n.appliedIndex >= checkers.maxAcked));
    for (let i = 0; i < HEAL_STEPS_MAX && checkers.violations.length === 0; i++) {
      if (i % 25 === 0) {
        decommission();
        if (i >= healSteps && converged()) break;
      }
      oneStep(false);
    }
    if (checkers.violations.length === 0) {
      decommission();
      checkers.checkConverged(nodes.filter((n) => !n.decommissioned));
    }
  } catch (e) {
    const err = e as Error;
    const kind = e instanceof RaftInvariantError ? "invariant" : "exception";
    checkers.violation(`${kind}: ${err.message}\n${err.stack ?? ""}`);
  }
  if (opts.trace) {
    for (const n of nodes) {
      if (n.raw === undefined) continue;
      const st = n.raw.status();
      const r = n.raw.raft;
      trace.push(
        `end ${n.id}: ${JSON.stringify({ ...st, progress: st.progress && [...st.progress] })} ` +
          `last=${r.raftLog.lastIndex()} first=${r.raftLog.firstIndex()} pending=${
            n.pending !== undefined
          }`,
      );
    }
  }
  return {
    seed: opts.seed,
    nodes: opts.nodes,
    violations: checkers.violations,
    description,
    stats: {
      proposed: workload.proposed,
      acked: checkers.writesAcked,
      reads: workload.reads,
      readsServed: checkers.readsServed,
      confChanges: workload.confChanges,
      transfers: workload.transfers,
      maxTerm: Math.max(0, ...nodes.map((n) => n.disk.hardState().term)),
      crashes,
    },
    trace,
  };
}
