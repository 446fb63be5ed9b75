/**
 * End to end, clustered: real `berth agent` processes on 127.0.0.1 … 127.0.0.5 forming one Raft
 * cluster, a real Docker engine watched by one of them.
 */
import assert from "node:assert/strict";
import {
  type AgentProc,
  apiJson,
  berthCli,
  iptables,
  kvGet,
  kvPut,
  leaderOf,
  lookupA,
  lookupSrv,
  partitionRules,
  portsOf,
  proxyGet,
  removeContainers,
  requireDocker,
  runWeb,
  signalAgent,
  startAgent,
  startCluster,
  stopAll,
  uniq,
} from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

interface MemberRow {
  name: string;
  role: "voter" | "learner";
  state: string;
}

async function members(a: AgentProc): Promise<MemberRow[]> {
  return await apiJson(a, "/v1/berth/members?stale") as MemberRow[];
}

/** The agent whose node is the leader, as seen by `from`. */
async function leaderAgent(agents: AgentProc[], from: AgentProc): Promise<AgentProc> {
  const name = await waitFor("a leader", () => leaderOf(from).then((l) => l ?? undefined));
  const a = agents.find((x) => x.node === name);
  assert.ok(a, `leader ${name} is one of the agents`);
  return a;
}

/** Every member's local (stale) view of the KV store, as text. */
async function kvDump(a: AgentProc): Promise<string> {
  const r = await fetch(`${a.httpUrl}/v1/kv/?recurse&stale`);
  if (r.status === 404) {
    await r.body?.cancel();
    return "[]";
  }
  const rows = await r.json() as { Key: string; Value: string | null; ModifyIndex: number }[];
  return JSON.stringify(rows.map((e) => [e.Key, e.Value, e.ModifyIndex]));
}

Deno.test({
  name:
    "e2e cluster: three agents join; a container on agent 1 answers in agent 3's DNS and is proxied by agent 2",
  ...e2e,
  async fn() {
    await requireDocker();
    const svc = uniq("cl");
    const names: string[] = [];
    const agents = await startCluster(3, { docker: [0] });
    try {
      const [a1, a2, a3] = agents as [AgentProc, AgentProc, AgentProc];
      const roles = (await members(a1)).map((m) => m.role).sort();
      await waitFor(
        "three voters",
        async () => (await members(a1)).every((m) => m.role === "voter"),
      );
      assert.equal(roles.length, 3);
      names.push(
        await runWeb({
          body: "hi-cluster",
          env: { SERVICE_NAME: svc },
          labels: { "berth.http.host": `${svc}.test` },
        }),
      );
      await waitFor(
        "agent 3 DNS answer",
        async () => (await lookupA(a3.dnsPort, `${svc}.service.berth`, a3.host)).length === 1,
      );
      const srv = await lookupSrv(a3.dnsPort, `${svc}.service.berth`, a3.host);
      assert.equal(srv.length, 1);
      const r = await waitFor("agent 2 proxies it", async () => {
        const got = await proxyGet(a2.proxyPort, `${svc}.test`, "/", a2.host);
        return got.status === 200 ? got : undefined;
      });
      assert.equal(r.body, "hi-cluster");
      // Writes through a follower are forwarded; reads anywhere see them.
      assert.equal(await kvPut(a3, "cluster/x", "one"), true);
      assert.equal((await kvGet(a2, "cluster/x"))?.value, "one");
      const peers = await apiJson(a1, "/v1/status/peers") as string[];
      assert.equal(peers.length, 3);
    } finally {
      await removeContainers(names);
      await stopAll(agents);
    }
  },
});

Deno.test({
  name: "e2e cluster: berth join adds a running agent to the cluster",
  ...e2e,
  async fn() {
    const first = await startAgent({ host: "127.0.0.1", docker: false });
    let second: AgentProc | undefined;
    try {
      second = await startAgent({ host: "127.0.0.2", bootstrap: false, docker: false });
      assert.equal((await members(second)).length, 0);
      const joined = await berthCli(second, "join", first.clusterAddr);
      assert.equal(joined.code, 0, joined.out);
      await waitFor("two members", async () => (await members(first)).length === 2);
      assert.equal(await kvPut(second, "joined", "yes"), true);
      assert.equal((await kvGet(first, "joined"))?.value, "yes");
      // Joining again is refused with a clear line.
      const again = await berthCli(second, "join", first.clusterAddr);
      assert.notEqual(again.code, 0);
      assert.match(again.out, /already a member/);
      const table = await berthCli(first, "members");
      assert.match(table.out, new RegExp(second.node));
    } finally {
      await stopAll([first, ...(second ? [second] : [])]);
    }
  },
});

Deno.test({
  name:
    "e2e cluster: kill -9 of the leader: a new leader, writes through survivors, DNS answers throughout, the killed member catches up by snapshot",
  ...e2e,
  async fn() {
    // A small snapshot threshold so the restarted member falls behind a compaction.
    const agents = await startCluster(3, { args: ["--snapshot-entries", "32"] });
    try {
      await waitFor(
        "three voters",
        async () => (await members(agents[0]!)).every((m) => m.role === "voter"),
      );
      const reg = await fetch(`${agents[0]!.httpUrl}/v1/agent/service/register`, {
        method: "PUT",
        body: JSON.stringify({ Name: "steady", Address: "127.0.0.77", Port: 80 }),
      });
      assert.equal(reg.status, 200, await reg.text());
      for (const a of agents) {
        await waitFor(
          "replicated service",
          async () => (await lookupA(a.dnsPort, "steady.service.berth", a.host)).length === 1,
        );
      }
      const leader = await leaderAgent(agents, agents[0]!);
      const survivors = agents.filter((a) => a !== leader);
      const ports = portsOf(leader);

      // DNS on the survivors answers every query while the leader dies and is replaced.
      let dnsQueries = 0;
      let stopDns = false;
      const dnsLoop = (async () => {
        while (!stopDns) {
          for (const s of survivors) {
            const got = await lookupA(s.dnsPort, "steady.service.berth", s.host);
            assert.deepEqual(got, ["127.0.0.77"], `DNS on ${s.node} during failover`);
            dnsQueries++;
          }
        }
      })();

      const killedAt = performance.now();
      await leader.kill();
      const newLeader = await waitFor("a new leader", async () => {
        const l = await leaderOf(survivors[0]!);
        return l !== null && l !== leader.node ? l : undefined;
      }, { timeoutMs: 15_000 });
      console.log(`new leader ${newLeader} after ${(performance.now() - killedAt).toFixed(0)} ms`);

      // Writes through either survivor; enough of them to force a snapshot and compaction.
      for (let i = 0; i < 120; i++) {
        assert.equal(await kvPut(survivors[i % 2]!, `fail/k${i}`, `v${i}`), true);
      }
      stopDns = true;
      await dnsLoop;
      assert.ok(dnsQueries > 0);

      const back = await startAgent({
        node: leader.node,
        dataDir: leader.dataDir,
        host: leader.host,
        ports,
        bootstrap: false,
        docker: false,
        args: ["--snapshot-entries", "32"],
      });
      agents[agents.indexOf(leader)] = back;
      await waitFor(
        "the restarted member caught up",
        async () => (await kvGet(back, "fail/k119", { mode: "stale" }))?.value === "v119",
      );
      await waitFor("the snapshot install logged", () => back.log().includes("installed snapshot"));
      const dumps = await Promise.all(agents.map(kvDump));
      assert.equal(new Set(dumps).size, 1, "every replica holds the same KV");
    } finally {
      await stopAll(agents);
    }
  },
});

Deno.test({
  name:
    "e2e cluster: a frozen leader cannot commit while the majority can; after it thaws every replica converges",
  ...e2e,
  async fn() {
    const agents = await startCluster(3);
    try {
      await waitFor(
        "three voters",
        async () => (await members(agents[0]!)).every((m) => m.role === "voter"),
      );
      assert.equal(await kvPut(agents[0]!, "p/before", "1"), true);
      const leader = await leaderAgent(agents, agents[0]!);
      const others = agents.filter((a) => a !== leader);
      signalAgent(leader, "SIGSTOP");
      try {
        await waitFor("the majority elects a new leader", async () => {
          const l = await leaderOf(others[0]!);
          return l !== null && l !== leader.node;
        }, { timeoutMs: 15_000 });
        for (let i = 0; i < 10; i++) {
          assert.equal(await kvPut(others[i % 2]!, `p/during${i}`, `${i}`), true);
        }
      } finally {
        signalAgent(leader, "SIGCONT");
      }
      // The old leader wakes up in an old term: it must not have committed anything alone, and a
      // write sent through it now goes to the new leader.
      assert.equal(await kvPut(leader, "p/after", "3"), true);
      await waitFor("convergence", async () => {
        const dumps = await Promise.all(agents.map(kvDump));
        return new Set(dumps).size === 1 && dumps[0]!.includes("p/after");
      });
      const got = await kvGet(leader, "p/during9", { mode: "consistent" });
      assert.equal(got?.value, "9");
    } finally {
      await stopAll(agents);
    }
  },
});

Deno.test({
  name:
    "e2e cluster: five members with --voters 3: two stay learners; a learner is promoted when a voter leaves",
  ...e2e,
  async fn() {
    const agents = await startCluster(5, { args: ["--voters", "3"] });
    try {
      const count = async (from: AgentProc) => {
        const m = await members(from);
        return {
          voters: m.filter((x) => x.role === "voter").length,
          learners: m.filter((x) => x.role === "learner").length,
          names: m.map((x) => x.name),
        };
      };
      await waitFor("3 voters and 2 learners", async () => {
        const c = await count(agents[0]!);
        return c.voters === 3 && c.learners === 2;
      });
      // Learners hold full replicas.
      assert.equal(await kvPut(agents[4]!, "learner/write", "ok"), true);
      assert.equal((await kvGet(agents[3]!, "learner/write", { mode: "consistent" }))?.value, "ok");

      const before = await members(agents[0]!);
      const voter = agents.find((a) =>
        before.some((m) => m.name === a.node && m.role === "voter")
      )!;
      const left = await berthCli(voter, "leave");
      assert.equal(left.code, 0, left.out);
      const rest = agents.filter((a) => a !== voter);
      await waitFor("a learner promoted after the voter left", async () => {
        const c = await count(rest[0]!);
        return c.voters === 3 && c.learners === 1 && !c.names.includes(voter.node);
      }, { timeoutMs: 30_000 });
      assert.equal(await kvPut(rest[0]!, "after/leave", "ok"), true);
    } finally {
      await stopAll(agents);
    }
  },
});

Deno.test({
  name:
    "e2e cluster: a leader cut off from the cluster cannot commit while the majority can; after healing every replica converges",
  ...e2e,
  async fn() {
    const agents = await startCluster(3);
    const applied: string[][] = [];
    try {
      await waitFor(
        "three voters",
        async () => (await members(agents[0]!)).every((m) => m.role === "voter"),
      );
      assert.equal(await kvPut(agents[0]!, "cut/before", "1"), true);
      const leader = await leaderAgent(agents, agents[0]!);
      const others = agents.filter((a) => a !== leader);
      for (const r of partitionRules(leader, others)) {
        await iptables("-I", ...r);
        applied.push(r);
      }
      // The cut-off leader accepts the request but can never commit it.
      await assert.rejects(kvPut(leader, "cut/isolated", "x", { timeoutMs: 3000 }));
      await waitFor("the majority elects a new leader", async () => {
        const l = await leaderOf(others[0]!);
        return l !== null && l !== leader.node;
      }, { timeoutMs: 15_000 });
      for (let i = 0; i < 5; i++) {
        assert.equal(await kvPut(others[i % 2]!, `cut/majority${i}`, `${i}`), true);
      }
      for (const o of others) assert.equal(await kvGet(o, "cut/isolated", { mode: "stale" }), null);
      assert.equal(await kvGet(leader, "cut/majority4", { mode: "stale" }), null);
      for (const r of applied.splice(0)) await iptables("-D", ...r);
      await waitFor("convergence after healing", async () => {
        const dumps = await Promise.all(agents.map(kvDump));
        return new Set(dumps).size === 1 && dumps[0]!.includes("cut/majority4");
      }, { timeoutMs: 20_000 });
      assert.equal((await kvGet(leader, "cut/majority4", { mode: "consistent" }))?.value, "4");
    } finally {
      for (const r of applied) await iptables("-D", ...r).catch(() => {});
      await stopAll(agents);
    }
  },
});

Deno.test({
  name:
    "e2e cluster: a member silent past --node-timeout has its instances taken out of DNS until it is back",
  ...e2e,
  async fn() {
    const agents = await startCluster(3, { args: ["--node-timeout", "2s"] });
    try {
      await waitFor(
        "three voters",
        async () => (await members(agents[0]!)).every((m) => m.role === "voter"),
      );
      const leader = await leaderAgent(agents, agents[0]!);
      const quiet = agents.find((a) => a !== leader)!;
      const watcher = agents.find((a) => a !== leader && a !== quiet)!;
      const reg = await fetch(`${quiet.httpUrl}/v1/agent/service/register`, {
        method: "PUT",
        body: JSON.stringify({ Name: "onquiet", Address: "127.0.0.66", Port: 80 }),
      });
      assert.equal(reg.status, 200, await reg.text());
      await waitFor(
        "served",
        async () =>
          (await lookupA(watcher.dnsPort, "onquiet.service.berth", watcher.host)).length === 1,
      );
      await waitFor(
        "the quiet member's node registered",
        async () =>
          (await apiJson(watcher, "/v1/catalog/nodes?stale") as { Node: string }[])
            .some((n) => n.Node === quiet.node),
      );
      signalAgent(quiet, "SIGSTOP");
      try {
        await waitFor(
          "out of DNS while silent",
          async () =>
            (await lookupA(watcher.dnsPort, "onquiet.service.berth", watcher.host)).length === 0,
        );
        const health = await apiJson(watcher, "/v1/health/service/onquiet?stale") as {
          Checks: { CheckID: string; Status: string }[];
        }[];
        assert.equal(health[0]?.Checks.find((c) => c.CheckID === "serfHealth")?.Status, "critical");
      } finally {
        signalAgent(quiet, "SIGCONT");
      }
      await waitFor(
        "back in DNS",
        async () =>
          (await lookupA(watcher.dnsPort, "onquiet.service.berth", watcher.host)).length === 1,
      );
    } finally {
      await stopAll(agents);
    }
  },
});
