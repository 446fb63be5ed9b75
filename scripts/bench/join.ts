/**
 * `deno task bench join`: how long a new member takes to join a 3-member cluster holding 1000
 * KV entries. Each round starts `berth agent --join ADDR [--join-token T]` on a fresh data dir
 * and times, from the spawn, until it has joined: the leader lists it as a member and the
 * leader's match index for it (its log as replicated) has reached the leader's commit index of
 * the moment of the spawn (polled every 20 ms). The joiner then stops and is removed, so every round joins the same
 * cluster. `--tls both` (the default) alternates rounds between a cluster with mutual TLS (the
 * joiner enrolls with the join token first) and one with `--dev --tls off`.
 *
 * @module
 */
import {
  type AgentProc,
  apiJson,
  joinTokenOf,
  leaderOf,
  startAgent,
  startCluster,
  stopAll,
} from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { waitForVoters } from "../../test/jepsen.ts";
import { type BenchOptions, median, type Side, SIDES_NOTE, sidesOf } from "./_shared.ts";
import { berthStatus } from "./failover.ts";

const JOIN_ROUNDS = 10;
/** KV entries written before the rounds (a joiner replicates them). */
const JOIN_PRELOAD_KEYS = 1000;
const JOIN_PRELOAD_CLIENTS = 16;
const JOIN_VALUE_BYTES = 256;
/** Poll interval of the leader's member list while a joiner catches up. */
const JOIN_POLL_MS = 20;
/** Longest a join may take before the round counts as failed. */
const JOIN_TIMEOUT_MS = 60_000;
/** Where joiners bind (the cluster is on 127.0.0.1-3). */
const JOINER_HOST = "127.0.0.4";

interface MemberRow {
  name: string;
  role: string;
  match?: number;
}

interface JoinSide extends Side {
  agents: AgentProc[];
  /** Time to joined, and to the joiner's API answering, per round (ms). */
  joined: number[];
  api: number[];
}

async function leaderIn(agents: AgentProc[]): Promise<AgentProc> {
  return await waitFor("a leader", async () => {
    const name = await leaderOf(agents[0]!);
    return agents.find((a) => a.node === name);
  });
}

async function joinRound(side: JoinSide, round: number): Promise<void> {
  const leader = await leaderIn(side.agents);
  const target = (await berthStatus(leader)).commitIndex;
  const node = `join-${side.label.toLowerCase()}-${round + 1}`;
  const t0 = performance.now();
  let apiMs = NaN;
  const started = startAgent({
    node,
    host: JOINER_HOST,
    bootstrap: false,
    join: [side.agents[0]!.clusterAddr],
    docker: false,
    args: side.args,
    joinToken: side.label === "TLS" ? joinTokenOf(side.agents[0]!) : null,
  }).then((a) => {
    apiMs = performance.now() - t0;
    return a;
  });
  // Noticed when startAgent() fails (the process exited) while the leader is polled.
  let failed: unknown;
  started.catch((e) => failed = e);
  let joiner: AgentProc | undefined;
  try {
    const ms = await waitFor(`${node} to join`, async () => {
      if (failed !== undefined) throw failed;
      const rows = await apiJson(leader, "/v1/berth/members") as MemberRow[];
      const me = rows.find((m) => m.name === node);
      if (me === undefined || (me.role !== "voter" && me.role !== "learner")) return undefined;
      return (me.match ?? 0) >= target ? performance.now() - t0 : undefined;
    }, { timeoutMs: JOIN_TIMEOUT_MS, intervalMs: JOIN_POLL_MS });
    joiner = await started;
    side.joined.push(ms);
    side.api.push(apiMs);
  } finally {
    joiner ??= await started.catch(() => undefined);
    await joiner?.stop();
    const r = await fetch(`${leader.httpUrl}/v1/berth/raft/peers/${node}`, { method: "DELETE" });
    await r.body?.cancel();
    await waitFor(`${node} to be removed`, async () => {
      const rows = await apiJson(leader, "/v1/berth/members") as MemberRow[];
      return rows.every((m) => m.name !== node);
    });
    if (joiner !== undefined) Deno.removeSync(joiner.dataDir, { recursive: true });
  }
}

export async function benchJoin(o: BenchOptions): Promise<void> {
  const sides: JoinSide[] = [];
  const value = "v".repeat(JOIN_VALUE_BYTES);
  try {
    for (const side of sidesOf(o.tls, ["--proxy-http", "off"])) {
      const agents = await startCluster(3, { args: side.args });
      sides.push({ ...side, agents, joined: [], api: [] });
      await waitForVoters(agents);
      const urls = agents.map((a) => a.httpUrl);
      let next = 0;
      await Promise.all(Array.from({ length: JOIN_PRELOAD_CLIENTS }, async () => {
        while (next < JOIN_PRELOAD_KEYS) {
          const seq = next++;
          const r = await fetch(`${urls[seq % urls.length]}/v1/kv/bench/join/k${seq}`, {
            method: "PUT",
            body: value,
          });
          if (!r.ok || (await r.text()).trim() !== "true") {
            throw new Error(`preload write ${seq}: ${r.status}`);
          }
        }
      }));
    }
    for (let round = 0; round < JOIN_ROUNDS; round++) {
      for (const side of sides) await joinRound(side, round);
    }
    console.log(
      `join  spawn of berth agent --join (a fresh data dir) → the leader lists it and its match ` +
        `index reached the leader's commit index at the spawn; 3-member cluster, ` +
        `${JOIN_PRELOAD_KEYS} KV entries`,
    );
    if (sides.length > 1) console.log(`join  ${SIDES_NOTE}`);
    for (const { label, joined, api } of sides) {
      console.log(
        `join  ${label.padEnd(5)} joined: median ${median(joined).toFixed(0)} ms, worst ` +
          `${Math.max(...joined).toFixed(0)} ms (${JOIN_ROUNDS} rounds: ` +
          `${joined.map((t) => t.toFixed(0)).join(", ")}); its API answering: median ` +
          `${median(api).toFixed(0)} ms`,
      );
    }
    if (sides.length > 1) {
      const [t, p] = [sides[0]!.joined, sides[1]!.joined];
      console.log(
        `join  TLS − plain: median ${(median(t) - median(p)).toFixed(0)} ms, ` +
          `TLS/plain: median ${(median(t) / median(p)).toFixed(2)}`,
      );
    }
  } finally {
    for (const { agents } of sides) {
      await stopAll(agents);
      for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
    }
  }
}
