/**
 * `deno task bench failover`: kill -9 the leader of a 3-member cluster and time the first write
 * that succeeds through a survivor; 10 rounds, the killed member restarting and catching up
 * between rounds. `--tls both` (the default) runs a cluster with mutual TLS and one with
 * `--dev --tls off` side by side, their rounds alternating.
 *
 * @module
 */
import { type AgentProc, leaderOf, portsOf, startAgent, startCluster } from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { waitForVoters } from "../../test/jepsen.ts";
import { type BenchOptions, median, type Side, SIDES_NOTE, sidesOf } from "./_shared.ts";

const FAILOVER_ROUNDS = 10;
/** Pause between two write attempts while there is no leader. */
const FAILOVER_RETRY_MS = 20;
/** Timeout of one write attempt during failover. */
const FAILOVER_WRITE_TIMEOUT_MS = 250;
/** Longest a failover may take before the round counts as failed. */
const FAILOVER_TIMEOUT_MS = 30_000;
/** Longest a restarted member may take to catch up. */
const CATCH_UP_TIMEOUT_MS = 30_000;

/** A member's /v1/berth/status (its leader and Raft indexes). */
export async function berthStatus(
  a: AgentProc,
): Promise<{ leader: string | null; commitIndex: number; appliedIndex: number }> {
  const r = await fetch(`${a.httpUrl}/v1/berth/status`, { signal: AbortSignal.timeout(1000) });
  if (!r.ok) throw new Error(`status: ${r.status} ${await r.text()}`);
  return await r.json();
}

/**
 * One round on `agents` (replaced in place by the restarted member): kill -9 the leader, time
 * the first write through a survivor, restart the victim and wait until it caught up.
 */
async function failoverRound(agents: AgentProc[], args: string[], round: number) {
  const leader = await waitFor("a leader", async () => {
    const name = await leaderOf(agents[0]!);
    const i = agents.findIndex((a) => a.node === name);
    return i >= 0 ? i : undefined;
  });
  const victim = agents[leader]!;
  const survivors = agents.filter((_, i) => i !== leader);
  const t0 = performance.now();
  const killed = victim.kill();
  let attempt = 0;
  for (;;) {
    if (performance.now() - t0 > FAILOVER_TIMEOUT_MS) {
      throw new Error(
        `round ${round + 1}: no write succeeded ${FAILOVER_TIMEOUT_MS} ms after the kill`,
      );
    }
    const a = survivors[attempt++ % survivors.length]!;
    const ok = await fetch(`${a.httpUrl}/v1/kv/bench/failover`, {
      method: "PUT",
      body: `round-${round}-${attempt}`,
      signal: AbortSignal.timeout(FAILOVER_WRITE_TIMEOUT_MS),
    }).then(async (r) => r.ok && (await r.text()).trim() === "true").catch(() => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, FAILOVER_RETRY_MS));
  }
  const ms = performance.now() - t0;
  await killed;
  agents[leader] = await startAgent({
    node: victim.node,
    dataDir: victim.dataDir,
    host: victim.host,
    ports: portsOf(victim),
    bootstrap: false,
    docker: false,
    args,
  });
  const target = (await berthStatus(survivors[0]!)).commitIndex;
  await waitFor(`${victim.node} to catch up`, async () => {
    const s = await berthStatus(agents[leader]!);
    return s.leader !== null && s.appliedIndex >= target;
  }, { timeoutMs: CATCH_UP_TIMEOUT_MS });
  return ms;
}

export async function benchFailover(o: BenchOptions): Promise<void> {
  const sides: (Side & { agents: AgentProc[]; times: number[] })[] = [];
  try {
    for (const side of sidesOf(o.tls, ["--proxy-http", "off"])) {
      const agents = await startCluster(3, { args: side.args });
      sides.push({ ...side, agents, times: [] });
      await waitForVoters(agents);
    }
    // The sides' rounds alternate, so both see the same background load.
    for (let round = 0; round < FAILOVER_ROUNDS; round++) {
      for (const side of sides) side.times.push(await failoverRound(side.agents, side.args, round));
    }
    if (sides.length > 1) console.log(`failover ${SIDES_NOTE}`);
    for (const { label, times } of sides) {
      console.log(
        `failover ${label.padEnd(5)} kill -9 leader → first write via a survivor: median ` +
          `${median(times).toFixed(0)} ms, worst ${Math.max(...times).toFixed(0)} ms ` +
          `(${FAILOVER_ROUNDS} rounds: ${times.map((t) => t.toFixed(0)).join(", ")})`,
      );
    }
    if (sides.length > 1) {
      const [t, p] = [sides[0]!.times, sides[1]!.times];
      console.log(
        `failover TLS/plain: median ${(median(t) / median(p)).toFixed(2)}, ` +
          `worst ${(Math.max(...t) / Math.max(...p)).toFixed(2)}`,
      );
    }
  } finally {
    for (const { agents } of sides) {
      await Promise.all(agents.map((a) => a.kill()));
      for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
    }
  }
}
