/**
 * End to end, sessions and locks: real `berth agent` processes on 127.0.0.1 … 127.0.0.3 and
 *
 * - leader election as Consul's guide describes it (a session per candidate, `?acquire` on one
 *   key, renewals, a fenced write per round: a /v1/txn whose `check-session` makes it fail for
 *   anyone not holding the key), through npm `consul` (a third-party client), while the Raft
 *   leader's process is killed with SIGKILL and, later, the election winner's member is cut off
 *   from the cluster with iptables;
 * - `berth lock` around a command: two processes on one prefix run one after the other, and a
 *   holder whose agent is killed has its command stopped, after which another takes the lock;
 * - a short run of the chaos suite's lock workload (test/jepsen_lock.ts) and its check that no
 *   two holders' critical sections overlapped.
 *
 * Each candidate runs in this process, so the times at which candidates believe they lead are on
 * one clock: no two such intervals may overlap (the session's lock-delay, 15 s, is longer than
 * the TTL after which a candidate that cannot renew steps down, 10 s).
 */
import assert from "node:assert/strict";
import Consul from "consul";
import {
  type AgentProc,
  apiJson,
  iptables,
  leaderOf,
  partitionRules,
  portsOf,
  startAgent,
  startCluster,
  stopAll,
} from "./harness.ts";
import { waitFor } from "./wait.ts";
import { checkMutualExclusion, runLockWorkload } from "./jepsen_lock.ts";
import { stopMembers } from "./jepsen_nemesis.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../", import.meta.url).pathname;

/** Cluster flags: a member silent for 5 s is down, and its sessions end (serfHealth). */
const CLUSTER_ARGS = ["--node-timeout", "5s"];
const ELECTION_KEY = "service/db/leader";
/** Session TTL of a candidate; it steps down when it could not renew for this long. */
const TTL_S = 10;
/** Every client request gives up after this (a partitioned member answers nothing). */
const REQUEST_TIMEOUT_MS = 3000;

interface Term {
  candidate: string;
  session: string;
  start: number;
  end: number | null;
}

function isNotFound(e: unknown): boolean {
  const status = (e as { statusCode?: number; response?: { statusCode?: number } })?.statusCode;
  return status === 404 || /\b404\b|not found/i.test(String((e as Error)?.message));
}

/** One election candidate speaking Consul's API to one agent through npm `consul`. */
class Candidate {
  readonly terms: Term[] = [];
  readonly #consul: Consul;
  #session: string | null = null;
  #leader = false;
  #lastRenew = 0;
  #stopped = false;
  #rounds = 0;
  readonly done: Promise<void>;

  constructor(readonly name: string, agent: AgentProc) {
    const url = new URL(agent.httpUrl);
    // The typings leave `timeout` out of the defaults the library accepts (its DEFAULT_OPTIONS).
    const options = {
      host: url.hostname,
      port: Number(url.port),
      defaults: { timeout: REQUEST_TIMEOUT_MS },
    };
    this.#consul = new Consul(options as ConstructorParameters<typeof Consul>[0]);
    this.done = this.#run();
  }

  get leader(): boolean {
    return this.#leader;
  }

  #stepDown(): void {
    if (!this.#leader) return;
    this.#leader = false;
    const t = this.terms.at(-1)!;
    t.end = performance.now();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.#round();
      } catch (e) {
        if (isNotFound(e)) {
          this.#stepDown(); // the session is gone: renew answered 404
          this.#session = null;
        }
      }
      if (this.#leader && performance.now() - this.#lastRenew >= TTL_S * 1000) this.#stepDown();
      await new Promise((r) => setTimeout(r, this.#leader ? 500 : 250));
    }
    this.#stepDown();
  }

  async #round(): Promise<void> {
    const c = this.#consul;
    if (this.#session === null) {
      const s = await c.session.create({ name: this.name, ttl: `${TTL_S}s`, behavior: "release" });
      this.#session = (s as { ID: string }).ID;
      this.#lastRenew = performance.now();
    }
    const session = this.#session;
    if (!this.#leader) {
      const got = await c.kv.set({ key: ELECTION_KEY, value: this.name, acquire: session });
      if (got !== true) {
        await c.session.renew(session);
        this.#lastRenew = performance.now();
        return;
      }
      this.#leader = true;
      this.#lastRenew = performance.now();
      this.terms.push({ candidate: this.name, session, start: performance.now(), end: null });
    }
    await c.session.renew(session);
    this.#lastRenew = performance.now();
    const entry = await c.kv.get(ELECTION_KEY) as { Session?: string } | undefined;
    if (entry?.Session !== session) {
      this.#stepDown();
      return;
    }
    // The fenced write: applied only while this session holds the key.
    const round = ++this.#rounds;
    const operations = [
      { KV: { Verb: "check-session", Key: ELECTION_KEY, Session: session } },
      {
        KV: {
          Verb: "set",
          Key: `service/db/log/${this.name}-${String(round).padStart(5, "0")}`,
          Value: btoa(`${this.name} ${session}`),
        },
      },
    ];
    // Its typings describe operations of another shape; it sends the list as given
    // (create(operations, options) in lib/transaction.js), here in Consul's shape.
    await c.transaction.create(operations as never, {} as never);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.done;
    if (this.#session !== null) {
      await this.#consul.session.destroy(this.#session).catch(() => {});
    }
  }
}

function leaders(cs: Candidate[]): Candidate[] {
  return cs.filter((c) => c.leader);
}

/** No two candidates' believed terms overlap on the one clock they share. */
function assertNoOverlap(terms: Term[], now: number): void {
  const sorted = [...terms].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const next = sorted[i]!;
    assert.ok(
      (prev.end ?? now) <= next.start,
      `${prev.candidate} led until ${
        prev.end ?? "the end"
      } but ${next.candidate} from ${next.start}`,
    );
  }
}

Deno.test({
  name:
    "e2e sessions: leader election with npm consul keeps one leader through a kill -9 of the Raft leader and a partition",
  ...e2e,
  async fn() {
    const agents = await startCluster(3, { args: CLUSTER_ARGS });
    const applied: string[][] = [];
    const candidates: Candidate[] = [];
    try {
      // The first candidate speaks to the Raft leader and wins; the others join afterwards.
      const raftLeaderName = await waitFor("a raft leader", async () => {
        return (await leaderOf(agents[0]!)) ?? undefined;
      });
      const order = [...agents].sort((a, b) =>
        (a.node === raftLeaderName ? 0 : 1) - (b.node === raftLeaderName ? 0 : 1)
      );
      const byAgent = new Map<AgentProc, Candidate>();
      const first = new Candidate(`c-${order[0]!.node}`, order[0]!);
      candidates.push(first);
      byAgent.set(order[0]!, first);
      await waitFor("the first candidate to lead", () => first.leader, { timeoutMs: 20_000 });
      for (const a of order.slice(1)) {
        const c = new Candidate(`c-${a.node}`, a);
        candidates.push(c);
        byAgent.set(a, c);
      }
      await new Promise((r) => setTimeout(r, 2000));
      assert.deepEqual(leaders(candidates), [first], "one leader, the first");

      // 1. The Raft leader (and the election winner's agent) is killed with SIGKILL.
      const killed = order[0]!;
      const ports = portsOf(killed);
      await killed.kill();
      const second = await waitFor("a new election winner", () => {
        const l = leaders(candidates).filter((c) => c !== first);
        return l.length === 1 ? l[0] : undefined;
      }, { timeoutMs: 60_000 });
      assert.ok(!first.leader, "the candidate of the killed member still believes it leads");
      const back = await startAgent({
        node: killed.node,
        dataDir: killed.dataDir,
        host: killed.host,
        ports,
        bootstrap: false,
        docker: false,
        args: CLUSTER_ARGS,
      });
      agents[agents.indexOf(killed)] = back;

      // 2. The winner's member is cut off from the other two (its API still answers).
      const winnerAgent = [...byAgent].find(([, c]) => c === second)![0];
      const others = agents.filter((a) => a.node !== winnerAgent.node);
      await waitFor("the restarted member back in the cluster", async () => {
        const st = await apiJson(back, "/v1/berth/status") as { leader: string | null };
        return st.leader !== null;
      }, { timeoutMs: 30_000 });
      for (const r of partitionRules(winnerAgent, others)) {
        await iptables("-I", ...r);
        applied.push(r);
      }
      const third = await waitFor("a winner on the majority side", () => {
        const l = leaders(candidates).filter((c) => c !== second);
        return l.length === 1 ? l[0] : undefined;
      }, { timeoutMs: 60_000 });
      assert.ok(!second.leader, "the partitioned winner still believes it leads");
      for (const r of applied.splice(0)) await iptables("-D", ...r);
      await new Promise((r) => setTimeout(r, 2000));
      assert.deepEqual(leaders(candidates), [third], "one leader after healing");

      for (const c of candidates) await c.stop();
      const now = performance.now();
      const terms = candidates.flatMap((c) => c.terms);
      assertNoOverlap(terms, now);
      assert.ok(terms.length >= 3, `${terms.length} terms`);

      // The fenced log: once a session's writes stop, they never resume after another's.
      const log = await apiJson(others[0]!, "/v1/kv/service/db/log/?recurse") as {
        Value: string;
        CreateIndex: number;
      }[];
      const sessions = log.sort((a, b) => a.CreateIndex - b.CreateIndex)
        .map((e) => atob(e.Value).split(" ")[1]!);
      const blocks = sessions.filter((s, i) => i === 0 || sessions[i - 1] !== s);
      assert.equal(new Set(blocks).size, blocks.length, `interleaved holders: ${blocks}`);
      const known = new Set(terms.map((t) => t.session));
      assert.ok(blocks.every((s) => known.has(s)), "a write by a session that never led");
      assert.ok(blocks.length >= 3, `writes from ${blocks.length} terms`);
      console.log(
        `election: ${terms.length} terms, ${log.length} fenced writes, ` +
          `winners ${first.name} → ${second.name} → ${third.name}`,
      );
    } finally {
      for (const r of applied) await iptables("-D", ...r).catch(() => {});
      await Promise.all(candidates.map((c) => c.stop().catch(() => {})));
      await stopAll(agents);
    }
  },
});

interface LockRun {
  child: Deno.ChildProcess;
  stderr: Promise<string>;
}

/** `berth lock PREFIX -- sh -c SCRIPT` against one agent, as a real process. */
function berthLock(a: AgentProc, prefix: string, script: string): LockRun {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}src/main.ts`, "lock", prefix, "--", "sh", "-c", script],
    env: { BERTH_HTTP_ADDR: a.httpUrl, NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  return { child, stderr };
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test({
  name:
    "e2e sessions: berth lock runs commands one at a time; a holder whose agent dies is stopped and another takes over",
  ...e2e,
  async fn() {
    const agents = await startCluster(3, { args: CLUSTER_ARGS });
    const dir = await Deno.makeTempDir({ prefix: "berth-e2e-lock-" });
    const runs: LockRun[] = [];
    try {
      const leaderName = await waitFor("a leader", async () => {
        return (await leaderOf(agents[0]!)) ?? undefined;
      });
      const [m1, m2] = agents.filter((a) => a.node !== leaderName) as [AgentProc, AgentProc];
      // Each command records its start and end in one log, holding the lock in between.
      const log = `${dir}/log`;
      const hold = (name: string) =>
        `echo start ${name} >> ${log}; while [ ! -e ${dir}/${name}.go ]; do sleep 0.05; done; ` +
        `echo end ${name} >> ${log}; exit 7`;
      const a = berthLock(m1, "jobs/nightly", hold("a"));
      runs.push(a);
      await waitFor("a to start", async () => (await exists(log)));
      const b = berthLock(m2, "jobs/nightly", hold("b"));
      runs.push(b);
      await waitFor("b's session", async () => {
        return ((await apiJson(m2, "/v1/session/list")) as unknown[]).length === 2;
      });
      await Deno.writeTextFile(`${dir}/a.go`, "");
      assert.equal((await a.child.status).code, 7, await a.stderr);
      await waitFor("b to start", async () => (await Deno.readTextFile(log)).includes("start b"));
      await Deno.writeTextFile(`${dir}/b.go`, "");
      assert.equal((await b.child.status).code, 7, await b.stderr);
      assert.equal(await Deno.readTextFile(log), "start a\nend a\nstart b\nend b\n");

      // A holder on m1; m1 is killed: the command is stopped, and a waiter on m2 gets the lock,
      // only after c has ended (c's shell logs its end on SIGTERM).
      const c = berthLock(
        m1,
        "jobs/nightly",
        `trap 'echo end c >> ${log}; kill $p; exit 0' TERM; echo start c >> ${log}; ` +
          `sleep 300 & p=$!; wait $p`,
      );
      runs.push(c);
      await waitFor("c to start", async () => (await Deno.readTextFile(log)).includes("start c"));
      const d = berthLock(m2, "jobs/nightly", `echo start d >> ${log}; exit 0`);
      runs.push(d);
      await m1.kill();
      const status = await c.child.status;
      assert.equal(status.code, 1, await c.stderr);
      assert.match(await c.stderr, /^berth lock: lock lost \(/);
      assert.equal((await d.child.status).code, 0, await d.stderr);
      const tail = (await Deno.readTextFile(log)).split("start c\n")[1];
      assert.equal(tail, "end c\nstart d\n", "c must have ended before d started");
    } finally {
      for (const r of runs) {
        try {
          r.child.kill("SIGKILL");
        } catch { /* exited */ }
        await r.child.status;
      }
      await stopAll(agents);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "e2e sessions: lock holders never overlap under kill -9, SIGSTOP and partitions (a short chaos --workload lock)",
  ...e2e,
  async fn() {
    const args = ["--voters", "3", "--node-timeout", "3s"];
    const members = await startCluster(3, { args });
    try {
      const run = await runLockWorkload(members, {
        durationMs: 20_000,
        clients: 4,
        seed: 11,
        args,
      });
      const result = checkMutualExclusion(run.sections);
      assert.ok(result.ok, result.ok ? "" : `${result.explanation}\n${run.events.join("\n")}`);
      assert.ok(result.acquisitions > 0, "no acquisition to check");
      assert.ok(run.converged, run.events.join("\n"));
      console.log(
        `lock: ${result.acquisitions} acquisitions, ${result.sections} sections checked; ` +
          `events: ${run.events.filter((e) => !e.includes("workload")).length}`,
      );
    } finally {
      await stopMembers(members);
    }
  },
});
