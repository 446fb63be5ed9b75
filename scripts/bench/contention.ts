/**
 * `deno task bench contention`: what a saturated HTTP proxy costs the other work of the same
 * member. On the leader of a 3-member cluster (127.0.0.1-3), with an nginx backend registered
 * behind its proxy, two probes run idle and while wrk (-t 1 -c 32) saturates that proxy:
 *
 * - DNS: dnsperf paced at 500 queries/s (`-c 1 -Q 500 -v`: each answer's latency), p50/p99;
 * - KV: `PUT /v1/kv/<key>` on one connection (wrk -c 1, as `bench kv`), writes/s, p50/p99.
 *
 * Measured in halves idle, loaded, loaded, idle (drifting background load hits both alike),
 * with the worst lateness of the member's 1 ms loop probe (`BERTH_LOOP_PROBE=1`,
 * `GET /v1/berth/loop`) in each. The goal: DNS p99 under proxy load ≤ 1.5× idle.
 *
 * @module
 */
import {
  type AgentProc,
  freePort,
  leaderOf,
  lookupA,
  proxyGet,
  startCluster,
  stopAll,
} from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { nginxBenchConfig } from "../_nginx.ts";
import { type BenchOptions, register, run, SECONDS, spawn } from "./_shared.ts";
import { summarizeWrk, writeWrkScript, wrk, type WrkRun } from "./_wrk.ts";
import { quantile } from "./_tls_load.ts";
import { loopOf } from "./_measure.ts";

/** DNS queries per second of the probe (paced: the probe itself is no load). */
const DNS_PROBE_QPS = 500;
/** Connections wrk keeps to the proxy (as `bench http`). */
const PROXY_CONNECTIONS = 32;
/** The DNS p99 ratio (loaded / idle) the issue asks for. */
const DNS_P99_RATIO_GOAL = 1.5;

/** The latencies (ms) of a dnsperf -v run's answered queries, and how many were lost. */
export function parseDnsperfVerbose(out: string): { latenciesMs: number[]; lost: number } {
  const latenciesMs: number[] = [];
  let lost = 0;
  for (const line of out.split("\n")) {
    if (!line.startsWith("> ")) continue;
    const f = line.slice(2).trim().split(/\s+/);
    if (f[0] === "T") {
      lost++;
      continue;
    }
    const s = Number(f[f.length - 1]);
    if (f[0] === "NOERROR" && Number.isFinite(s)) latenciesMs.push(s * 1000);
    else lost++;
  }
  return { latenciesMs, lost };
}

interface Phase {
  dnsMs: number[];
  dnsLost: number;
  kv: WrkRun[];
  worstPauseMs: number;
  proxyRps: number[];
}

async function loopWorst(a: AgentProc, reset: boolean): Promise<number> {
  return (await loopOf(a, reset)).worstPauseMs;
}

export async function benchContention(o: BenchOptions): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-contention-" });
  const backendPort = await freePort();
  Deno.writeTextFileSync(
    `${dir}/nginx.conf`,
    nginxBenchConfig({ dir, host: "127.0.0.1", backendPort, proxyPort: await freePort() }),
  );
  const nginx = spawn("nginx", ["-c", `${dir}/nginx.conf`, "-g", "daemon off;"]);
  // The agents inherit this process's environment: the loop probe runs on every member.
  Deno.env.set("BERTH_LOOP_PROBE", "1");
  const plain = o.tls === "off" ? ["--dev", "--tls", "off"] : [];
  let agents: AgentProc[] = [];
  try {
    agents = await startCluster(3, { args: plain });
    const name = await leaderOf(agents[0]!);
    const a = agents.find((x) => x.node === name);
    if (a === undefined) throw new Error(`leader ${name} is not one of the members`);
    await register(a.httpUrl, {
      Name: "web",
      ID: "web-1",
      Address: "127.0.0.1",
      Port: backendPort,
      Meta: { "berth.http.host": "bench.test" },
    });
    await waitFor(
      "the leader to answer web.service.berth",
      async () => (await lookupA(a.dnsPort, "web.service.berth", a.host)).length === 1,
    );
    await waitFor(
      "the leader's proxy to reach the backend",
      async () => (await proxyGet(a.proxyPort, "bench.test", "/", a.host)).status === 200,
    );
    Deno.writeTextFileSync(`${dir}/queries`, "web.service.berth A\n");
    const kvScript = writeWrkScript(dir, "kv", {
      method: "PUT",
      paths: Array.from({ length: 1000 }, (_, i) => `/v1/kv/contention/k${i}`),
      bodies: "v".repeat(256),
    });
    const half = Math.max(2, Math.round(SECONDS / 2));
    const dnsProbe = async () =>
      parseDnsperfVerbose(
        await run("dnsperf", [
          ...["-s", a.host, "-p", String(a.dnsPort), "-d", `${dir}/queries`],
          ...["-l", String(half), "-c", "1", "-Q", String(DNS_PROBE_QPS), "-t", "2", "-v"],
        ]),
      );
    const kvProbe = () => wrk(a.httpUrl, { script: kvScript, connections: 1, seconds: half });
    const phases = { idle: newPhase(), loaded: newPhase() };
    await kvProbe(); // warm-up: connections, the first writes
    for (const loaded of [false, true, true, false]) {
      const p = loaded ? phases.loaded : phases.idle;
      await loopWorst(a, true);
      // The load runs across both probes: from a second before the first to after the second.
      const load = loaded
        ? run("wrk", [
          ...["-t", "1", "-c", String(PROXY_CONNECTIONS), "-d", `${2 * half + 2}s`],
          ...["-H", "Host: bench.test", `http://${a.host}:${a.proxyPort}/`],
        ])
        : undefined;
      if (loaded) await new Promise((r) => setTimeout(r, 1000));
      const dns = await dnsProbe();
      p.dnsMs.push(...dns.latenciesMs);
      p.dnsLost += dns.lost;
      p.kv.push(await kvProbe());
      p.worstPauseMs = Math.max(p.worstPauseMs, await loopWorst(a, false));
      if (load !== undefined) {
        const rps = /Requests\/sec:\s+([\d.]+)/.exec(await load);
        p.proxyRps.push(Number(rps?.[1] ?? NaN));
      }
    }
    report(phases);
  } finally {
    await stopAll(agents);
    for (const x of agents) Deno.removeSync(x.dataDir, { recursive: true });
    nginx.kill("SIGTERM");
    await nginx.status;
    Deno.removeSync(dir, { recursive: true });
  }
}

function newPhase(): Phase {
  return { dnsMs: [], dnsLost: 0, kv: [], worstPauseMs: 0, proxyRps: [] };
}

function report({ idle, loaded }: { idle: Phase; loaded: Phase }): void {
  const dns = (p: Phase) => {
    const s = [...p.dnsMs].sort((x, y) => x - y);
    return { p50: quantile(s, 0.5), p99: quantile(s, 0.99), n: s.length, lost: p.dnsLost };
  };
  const di = dns(idle);
  const dl = dns(loaded);
  const ki = summarizeWrk(idle.kv);
  const kl = summarizeWrk(loaded.kv);
  const rps = loaded.proxyRps.reduce((s, x) => s + x, 0) / loaded.proxyRps.length;
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  console.log(
    `contention  the leader of 3 members; load: wrk -t 1 -c ${PROXY_CONNECTIONS} on its HTTP ` +
      `proxy (nginx backend), ${rps.toFixed(0)} req/s; halves idle, loaded, loaded, idle`,
  );
  console.log(
    `contention  DNS (dnsperf ${DNS_PROBE_QPS} q/s): idle p50 ${ms(di.p50)} p99 ${ms(di.p99)} ` +
      `(${di.n} answers, ${di.lost} lost) | proxy saturated p50 ${ms(dl.p50)} p99 ` +
      `${ms(dl.p99)} (${dl.n}, ${dl.lost} lost) | p99 ratio ${(dl.p99 / di.p99).toFixed(2)} ` +
      `(goal <= ${DNS_P99_RATIO_GOAL})`,
  );
  console.log(
    `contention  KV PUT (wrk -c 1): idle ${ki.perSecond.toFixed(0)} w/s p50 ${ms(ki.p50Ms)} ` +
      `p99 ${ms(ki.p99Ms)} | proxy saturated ${kl.perSecond.toFixed(0)} w/s p50 ` +
      `${ms(kl.p50Ms)} p99 ${ms(kl.p99Ms)} | p99 ratio ${(kl.p99Ms / ki.p99Ms).toFixed(2)}`,
  );
  console.log(
    `contention  worst lateness of a 1 ms timer on the leader: idle ${ms(idle.worstPauseMs)}, ` +
      `proxy saturated ${ms(loaded.worstPauseMs)}`,
  );
}
