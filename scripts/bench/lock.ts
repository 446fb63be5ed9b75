/**
 * `deno task bench lock`: how long a Consul lock stays taken after its holder's member dies. On a
 * 3-member cluster, a holder takes a key with a session made on its member A (TTL 10s, Consul's
 * default LockDelay 15s, default checks: A's `serfHealth`); A is killed (kill -9) and a contender
 * on another member tries `?acquire` every 100 ms. Reported: kill → the contender's successful
 * acquire, median and worst of 10 rounds with A a follower, then 10 with A the leader (A restarts
 * and catches up between rounds), beside the bound README "Sessions and locks" gives: the session
 * ends when the leader marks A down (--node-timeout, 10s; a new leader first gives every member a
 * full timeout) or its TTL passes twice without a renewal, whichever comes first, and the key
 * refuses a new holder for the lock-delay after that. A time below the lock-delay would mean the
 * key was handed over before the lock-delay passed: the run then fails naming the round.
 *
 * @module
 */
import { type AgentProc, leaderOf, portsOf, startAgent, startCluster } from "../../test/harness.ts";
import { sleep, waitFor } from "../../test/wait.ts";
import { waitForVoters } from "../../test/jepsen.ts";
import { berthStatus } from "./failover.ts";
import { median } from "./_shared.ts";

const LOCK_ROUNDS = 10;
/** The holder's and the contender's session TTL (Consul's minimum). */
const LOCK_TTL_S = 10;
/** Consul's default LockDelay (the sessions are created without one). */
const LOCK_DELAY_MS = 15_000;
/** berth's default --node-timeout (the agents run with it). */
const NODE_TIMEOUT_MS = 10_000;
/** Consul's grace: a session ends after twice its TTL without a renewal. */
const TTL_MULTIPLIER = 2;
/** Pause between two acquire attempts of the contender. */
const ACQUIRE_RETRY_MS = 100;
/** How often the clients renew their sessions (half the TTL, as Consul's lock helpers do). */
const RENEW_MS = (LOCK_TTL_S * 1000) / 2;
/** Pause before a failed renewal is tried again. */
const RENEW_RETRY_MS = 500;
/** Timeout of one request. */
const REQUEST_TIMEOUT_MS = 2_000;
/** Longest the lock may stay taken after the kill before the round counts as failed. */
const ACQUIRE_TIMEOUT_MS = 90_000;
/** Longest a restarted member may take to catch up and take a session again. */
const CATCH_UP_TIMEOUT_MS = 60_000;
const AGENT_ARGS = ["--proxy-http", "off"];

async function put(url: string, body?: string): Promise<{ status: number; text: string }> {
  const r = await fetch(url, {
    method: "PUT",
    body,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  return { status: r.status, text: (await r.text()).trim() };
}

/** A session on `a`'s node (default checks: its serfHealth), TTL LOCK_TTL_S, default lock-delay. */
async function createSession(a: AgentProc, name: string): Promise<string> {
  const r = await put(
    `${a.httpUrl}/v1/session/create`,
    JSON.stringify({ Name: name, TTL: `${LOCK_TTL_S}s`, Behavior: "release" }),
  );
  if (r.status !== 200) throw new Error(`session create on ${a.node}: ${r.status} ${r.text}`);
  return (JSON.parse(r.text) as { ID: string }).ID;
}

/**
 * Renews session `id` through `a` every RENEW_MS (a failed renewal, as during an election, is
 * tried again after RENEW_RETRY_MS) until `signal` aborts.
 */
function renewLoop(a: AgentProc, id: string, signal: AbortSignal): Promise<void> {
  return (async () => {
    let wait = RENEW_MS;
    while (!signal.aborted) {
      await sleep(wait);
      if (signal.aborted) return;
      const ok = await put(`${a.httpUrl}/v1/session/renew/${id}`)
        .then((r) => r.status === 200).catch(() => false);
      wait = ok ? RENEW_MS : RENEW_RETRY_MS;
    }
  })();
}

async function acquire(a: AgentProc, key: string, session: string): Promise<boolean> {
  const r = await put(`${a.httpUrl}/v1/kv/${key}?acquire=${session}`, session);
  if (r.status !== 200) throw new Error(`acquire ${key} on ${a.node}: ${r.status} ${r.text}`);
  return r.text === "true";
}

/**
 * Resolves with when (performance.now()) `a` first shows `key` without a holder, waiting on the
 * key with blocking queries; stops when `signal` aborts.
 */
async function watchRelease(a: AgentProc, key: string, signal: AbortSignal): Promise<number> {
  let index = 0;
  while (!signal.aborted) {
    try {
      const r = await fetch(`${a.httpUrl}/v1/kv/${key}?index=${index}&wait=30s`, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(35_000)]),
      });
      const text = await r.text();
      index = Number(r.headers.get("X-Consul-Index") ?? 0);
      if (r.status === 404) return performance.now();
      const [entry] = JSON.parse(text) as { Session?: string }[];
      if (entry?.Session === undefined || entry.Session === "") return performance.now();
    } catch {
      if (!signal.aborted) await sleep(ACQUIRE_RETRY_MS);
    }
  }
  return NaN;
}

interface Round {
  /** Kill → the contender's successful acquire, ms. */
  acquiredMs: number;
  /** Kill → the contender's member showing the key free, ms. */
  releasedMs: number;
}

async function oneRound(
  round: string,
  holderAgent: AgentProc,
  contenderAgent: AgentProc,
): Promise<Round> {
  const key = `bench/lock/round-${round}`;
  const stop = new AbortController();
  try {
    // A restarted member is alive again once the leader heard from it: retry until its
    // serfHealth lets it take a session.
    const holder = await waitFor(
      `a session on ${holderAgent.node}`,
      () => createSession(holderAgent, `bench-holder-${round}`),
      { timeoutMs: CATCH_UP_TIMEOUT_MS },
    );
    if (!await acquire(holderAgent, key, holder)) throw new Error(`holder did not get ${key}`);
    const contender = await createSession(contenderAgent, `bench-contender-${round}`);
    const renewals = [
      renewLoop(holderAgent, holder, stop.signal),
      renewLoop(contenderAgent, contender, stop.signal),
    ];
    // The contender's member sees the holder before the kill.
    await waitFor(`${contenderAgent.node} to see ${key} held`, async () => {
      const r = await fetch(`${contenderAgent.httpUrl}/v1/kv/${key}`);
      const [e] = await r.json() as { Session?: string }[];
      return e?.Session === holder;
    });
    const t0 = performance.now();
    const killed = holderAgent.kill();
    const released = watchRelease(contenderAgent, key, stop.signal);
    for (;;) {
      const elapsed = performance.now() - t0;
      if (elapsed > ACQUIRE_TIMEOUT_MS) {
        throw new Error(
          `round ${round}: ${key} still taken ${ACQUIRE_TIMEOUT_MS} ms after the kill`,
        );
      }
      if (await acquire(contenderAgent, key, contender).catch(() => false)) break;
      await sleep(ACQUIRE_RETRY_MS);
    }
    const acquiredMs = performance.now() - t0;
    // Freed ≥ the lock-delay before the acquire: the watcher has long seen it (NaN otherwise).
    const seen = await Promise.race([released, sleep(REQUEST_TIMEOUT_MS).then(() => NaN)]);
    const releasedMs = seen - t0;
    await killed;
    await put(`${contenderAgent.httpUrl}/v1/kv/${key}?release=${contender}`);
    await put(`${contenderAgent.httpUrl}/v1/session/destroy/${contender}`);
    stop.abort();
    await Promise.all(renewals);
    return { acquiredMs, releasedMs };
  } finally {
    stop.abort();
  }
}

/** Where the holder's member is: a follower (the leader ends the session) or the leader. */
type HolderOn = "follower" | "leader";

/** LOCK_ROUNDS rounds with the holder on a `on` member; the killed member restarts after each. */
async function series(agents: AgentProc[], on: HolderOn): Promise<Round[]> {
  const rounds: Round[] = [];
  for (let round = 0; round < LOCK_ROUNDS; round++) {
    const leader = await waitFor("a leader", async () => {
      const name = await leaderOf(agents[0]!);
      const i = agents.findIndex((a) => a.node === name);
      return i >= 0 ? i : undefined;
    });
    // The contender is on a follower that is not the holder's member.
    const followers = [0, 1, 2].filter((i) => i !== leader) as [number, number];
    const [h, c] = on === "follower" ? followers : [leader, followers[0]];
    const victim = agents[h]!;
    rounds.push(await oneRound(`${on}-${round}`, victim, agents[c]!));
    agents[h] = await startAgent({
      node: victim.node,
      dataDir: victim.dataDir,
      host: victim.host,
      ports: portsOf(victim),
      bootstrap: false,
      docker: false,
      args: AGENT_ARGS,
    });
    const target = (await berthStatus(agents[c]!)).commitIndex;
    await waitFor(`${victim.node} to catch up`, async () => {
      const s = await berthStatus(agents[h]!);
      return s.leader !== null && s.appliedIndex >= target;
    }, { timeoutMs: CATCH_UP_TIMEOUT_MS });
  }
  return rounds;
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

function report(on: HolderOn, rounds: Round[]): void {
  const acquired = rounds.map((r) => r.acquiredMs);
  console.log(
    `lock kill -9 the holder's member (${on === "follower" ? "a follower" : "the leader"}) → ` +
      `a client on another member acquires: median ${s(median(acquired))}, worst ` +
      `${s(Math.max(...acquired))} (${LOCK_ROUNDS} rounds: ${acquired.map(s).join(", ")}); ` +
      `key seen free after ${s(median(rounds.map((r) => r.releasedMs)))}, acquired ` +
      `${s(median(rounds.map((r) => r.acquiredMs - r.releasedMs)))} later (medians)`,
  );
}

export async function benchLock(): Promise<void> {
  const agents = await startCluster(3, { args: AGENT_ARGS });
  const results: [HolderOn, Round[]][] = [];
  try {
    await waitForVoters(agents);
    for (const on of ["follower", "leader"] as const) results.push([on, await series(agents, on)]);
  } finally {
    await Promise.all(agents.map((a) => a.kill()));
    for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
  }
  const invalidateMs = Math.min(NODE_TIMEOUT_MS, LOCK_TTL_S * 1000 * TTL_MULTIPLIER);
  for (const [on, rounds] of results) report(on, rounds);
  console.log(
    `lock   expected ≈ min(node-timeout ${s(NODE_TIMEOUT_MS)}, 2×TTL ` +
      `${s(LOCK_TTL_S * 1000 * TTL_MULTIPLIER)}) + lock-delay ${s(LOCK_DELAY_MS)} = ` +
      `${s(invalidateMs + LOCK_DELAY_MS)} (the leader's death adds an election: the new leader ` +
      `gives every member a full node-timeout), never below the lock-delay ` +
      `${s(LOCK_DELAY_MS)}; session TTL ${LOCK_TTL_S}s, acquire retried every ` +
      `${ACQUIRE_RETRY_MS} ms`,
  );
  const early = results.flatMap(([on, rounds]) =>
    rounds.flatMap((r, i) => r.acquiredMs < LOCK_DELAY_MS ? [`${on} ${i + 1}`] : [])
  );
  if (early.length > 0) {
    throw new Error(
      `LOCK-DELAY VIOLATED: the lock was acquired less than ${s(LOCK_DELAY_MS)} after its ` +
        `holder's member was killed in round(s) ${early.join(", ")}`,
    );
  }
}
