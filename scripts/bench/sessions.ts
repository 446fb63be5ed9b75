/**
 * `deno task bench sessions`: Consul sessions on a 3-member berth cluster (127.0.0.1-3): sessions
 * created per second (`PUT /v1/session/create`, one Raft entry each) and renewed per second
 * (`PUT /v1/session/renew/:id`, answered by the leader, forwarded from the other members, no
 * entry), 16 closed-loop clients round-robin over all members.
 *
 * @module
 */
import { type AgentProc, startCluster, stopAll } from "../../test/harness.ts";
import { waitForVoters } from "../../test/jepsen.ts";
import { SECONDS } from "./_shared.ts";
import { closedLoop, type KvBenchResult } from "./kv.ts";

/** Client concurrency of the session benchmark. */
const SESSION_CLIENTS = 16;
/** Timeout of one request. */
const SESSION_REQUEST_TIMEOUT_MS = 10_000;

export async function benchSessions(): Promise<void> {
  let agents: AgentProc[] = [];
  try {
    agents = await startCluster(3, { args: ["--proxy-http", "off"] });
    await waitForVoters(agents);
    const urls = agents.map((a) => a.httpUrl);
    const ids: string[] = [];
    const create = async (seq: number) => {
      const r = await fetch(`${urls[seq % urls.length]}/v1/session/create`, {
        method: "PUT",
        body: JSON.stringify({ TTL: "60s", NodeChecks: [], Behavior: "release" }),
        signal: AbortSignal.timeout(SESSION_REQUEST_TIMEOUT_MS),
      });
      if (!r.ok) {
        await r.body?.cancel();
        return false;
      }
      const { ID } = await r.json() as { ID: string };
      ids.push(ID);
      return true;
    };
    const renew = async (seq: number) => {
      const r = await fetch(
        `${urls[seq % urls.length]}/v1/session/renew/${ids[seq % ids.length]}`,
        { method: "PUT", signal: AbortSignal.timeout(SESSION_REQUEST_TIMEOUT_MS) },
      );
      await r.body?.cancel();
      return r.ok;
    };
    if (!await create(0)) throw new Error("berth does not create a session");
    const fmt = (what: string, r: KvBenchResult) =>
      `sessions ${what} ${r.writesPerSecond.toFixed(0).padStart(6)}/s p50 ` +
      `${r.p50Ms.toFixed(1).padStart(6)} ms p99 ${r.p99Ms.toFixed(1).padStart(6)} ms` +
      (r.errors > 0 ? ` (${r.errors} errors)` : "");
    console.log(
      `sessions 3 members on 127.0.0.1-3, ${SESSION_CLIENTS} clients round-robin over all ` +
        `members, ${SECONDS}s each`,
    );
    console.log(fmt("created", await closedLoop(SESSION_CLIENTS, SECONDS * 1000, create)));
    console.log(fmt("renewed", await closedLoop(SESSION_CLIENTS, SECONDS * 1000, renew)));
  } finally {
    await stopAll(agents);
    for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
  }
}
