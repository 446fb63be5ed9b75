/**
 * `deno task bench`: berth beside the tools it replaces, in one run on this machine, reported as
 * ratios (machines are noisy; only side-by-side figures mean anything).
 *
 *   dns     dnsperf: berth's DNS vs dnsmasq answering the same name from a hosts file
 *   http    wrk: berth's HTTP proxy vs nginx proxying to the same nginx backend
 *   docker  time from `docker run` returning to the name answering in berth's DNS (20 runs)
 *   raft    raft/ in-process commit throughput (see scripts/raft_bench.ts)
 *   kv      KV writes/s, p50, p99: a 3-member berth cluster vs a 3-member etcd cluster on
 *           127.0.0.1-3, 256-byte values, 1/16/128 clients, writes round-robin over all members
 *   failover  kill -9 the leader of a 3-member cluster: time to the first write through a
 *           survivor (10 rounds, the killed member restarts and catches up between rounds)
 *
 * Usage: deno task bench [dns] [http] [docker] [raft] [kv] [failover]   (default: all)
 * Env: BENCH_SECONDS (default 10) per measured run.
 *
 * @module
 */
import {
  type AgentProc,
  freePort,
  leaderOf,
  lookupA,
  portsOf,
  proxyGet,
  removeContainers,
  requireDocker,
  runWeb,
  startAgent,
  startCluster,
  stopAll,
  uniq,
} from "../test/harness.ts";
import { sleep, waitFor } from "../test/wait.ts";
import { waitForVoters } from "../test/jepsen.ts";

import { nginxBenchConfig } from "./_nginx.ts";
import { errorText } from "../src/lib/error_text.ts";
import { parseFlags } from "../src/lib/flags.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? "10");
const ROOT = new URL("../", import.meta.url).pathname;

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${text}`);
  return text;
}

function spawn(cmd: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
}

async function ensureTools(): Promise<void> {
  const need: [string, string][] = [
    ["dnsperf", "dnsperf"],
    ["dnsmasq", "dnsmasq-base"],
    ["nginx", "nginx-light"],
    ["wrk", "wrk"],
    ["etcd", "etcd-server"],
    ["etcdctl", "etcd-client"],
  ];
  const missing: string[] = [];
  for (const [bin, pkg] of need) {
    const ok = await new Deno.Command("sh", { args: ["-c", `command -v ${bin}`] }).output();
    if (!ok.success) missing.push(pkg);
  }
  if (missing.length > 0) {
    console.log(`installing ${missing.join(" ")}`);
    await run("apt-get", ["install", "-y", ...missing]).catch(async () => {
      await run("apt-get", ["update"]);
      await run("apt-get", ["install", "-y", ...missing]);
    });
  }
}

async function register(httpUrl: string, body: unknown): Promise<void> {
  const r = await fetch(`${httpUrl}/v1/agent/service/register`, {
    method: "PUT",
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`register failed: ${r.status} ${await r.text()}`);
  await r.body?.cancel();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function benchDns(): Promise<void> {
  const agent = await startAgent({ args: ["--docker", "off", "--proxy-http", "off"] });
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-dns-" });
  const dnsmasqPort = await freePort();
  let dnsmasq: Deno.ChildProcess | undefined;
  try {
    await register(agent.httpUrl, { Name: "bench", ID: "bench-1", Address: "127.0.0.1", Port: 80 });
    Deno.writeTextFileSync(`${dir}/hosts`, "127.0.0.1 bench.service.berth\n");
    Deno.writeTextFileSync(`${dir}/queries`, "bench.service.berth A\n");
    dnsmasq = spawn("dnsmasq", [
      "--no-daemon",
      "--conf-file=/dev/null",
      "--no-resolv",
      "--no-hosts",
      `--addn-hosts=${dir}/hosts`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      `--port=${dnsmasqPort}`,
      "--local-ttl=0",
      "--cache-size=1000",
      "--user=root",
    ]);
    await waitFor(
      "berth to answer bench.service.berth",
      async () => (await lookupA(agent.dnsPort, "bench.service.berth")).length === 1,
    );
    await waitFor(
      "dnsmasq to answer bench.service.berth",
      async () => (await lookupA(dnsmasqPort, "bench.service.berth")).length === 1,
    );
    const perf = async (port: number) => {
      const out = await run("dnsperf", [
        "-s",
        "127.0.0.1",
        "-p",
        String(port),
        "-d",
        `${dir}/queries`,
        "-l",
        String(SECONDS),
        "-c",
        "4",
        "-Q",
        "1000000",
      ]);
      const qps = /Queries per second:\s+([\d.]+)/.exec(out);
      const lost = /Queries lost:\s+(\d+)/.exec(out);
      if (!qps) throw new Error(`dnsperf output not understood:\n${out}`);
      return { qps: Number(qps[1]), lost: Number(lost?.[1] ?? 0) };
    };
    // Alternate so both see the same background noise.
    const b1 = await perf(agent.dnsPort);
    const d1 = await perf(dnsmasqPort);
    const b2 = await perf(agent.dnsPort);
    const d2 = await perf(dnsmasqPort);
    const berth = (b1.qps + b2.qps) / 2;
    const mask = (d1.qps + d2.qps) / 2;
    console.log(
      `dns   berth ${berth.toFixed(0)} q/s (lost ${b1.lost + b2.lost}), ` +
        `dnsmasq ${mask.toFixed(0)} q/s (lost ${d1.lost + d2.lost}), ratio ${
          (berth / mask).toFixed(2)
        }`,
    );
  } finally {
    dnsmasq?.kill("SIGTERM");
    await dnsmasq?.status;
    await agent.stop();
    Deno.removeSync(dir, { recursive: true });
  }
}

async function benchHttp(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-http-" });
  const backendPort = await freePort();
  const nginxPort = await freePort();
  const conf = nginxBenchConfig({ dir, host: "127.0.0.1", backendPort, proxyPort: nginxPort });
  Deno.writeTextFileSync(`${dir}/nginx.conf`, conf);
  const nginx = spawn("nginx", ["-c", `${dir}/nginx.conf`, "-g", "daemon off;"]);
  const agent = await startAgent({ args: ["--docker", "off"] });
  try {
    await register(agent.httpUrl, {
      Name: "bench",
      ID: "bench-1",
      Address: "127.0.0.1",
      Port: backendPort,
      Meta: { "berth.http.host": "bench.test" },
    });
    await sleep(500);
    const wrk = async (port: number) => {
      const out = await run("wrk", [
        "-t",
        "1",
        "-c",
        "32",
        "-d",
        `${SECONDS}s`,
        "-H",
        "Host: bench.test",
        `http://127.0.0.1:${port}/`,
      ]);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
      if (!rps) throw new Error(`wrk output not understood:\n${out}`);
      return { rps: Number(rps[1]), bad: Number(non2xx?.[1] ?? 0) };
    };
    const check = await proxyGet(agent.proxyPort, "bench.test");
    if (check.status !== 200) throw new Error(`berth proxy answers ${check.status}: ${check.body}`);
    const b1 = await wrk(agent.proxyPort);
    const n1 = await wrk(nginxPort);
    const b2 = await wrk(agent.proxyPort);
    const n2 = await wrk(nginxPort);
    const berth = (b1.rps + b2.rps) / 2;
    const ngx = (n1.rps + n2.rps) / 2;
    console.log(
      `http  berth ${berth.toFixed(0)} req/s (non-2xx ${b1.bad + b2.bad}), ` +
        `nginx ${ngx.toFixed(0)} req/s (non-2xx ${n1.bad + n2.bad}), ratio ${
          (berth / ngx).toFixed(2)
        }`,
    );
  } finally {
    nginx.kill("SIGTERM");
    await nginx.status;
    await agent.stop();
    Deno.removeSync(dir, { recursive: true });
  }
}

async function benchDocker(): Promise<void> {
  await requireDocker();
  const agent = await startAgent();
  const times: number[] = [];
  const names: string[] = [];
  try {
    // Run 0 warms up (the watcher's first reconcile of the engine and the first proposal run
    // right after the agent starts); it is reported apart from the 20 measured runs.
    for (let i = 0; i <= 20; i++) {
      const svc = uniq("lat");
      const name = await runWeb({ body: "x", env: { SERVICE_NAME: svc } });
      const t0 = performance.now();
      names.push(name);
      await waitFor(
        `${svc}.service.berth to answer`,
        async () => (await lookupA(agent.dnsPort, `${svc}.service.berth`)).length > 0,
        { timeoutMs: 10_000, intervalMs: 2 },
      );
      times.push(performance.now() - t0);
    }
    const warmup = times.shift()!;
    console.log(
      `docker run → DNS answer: median ${median(times).toFixed(0)} ms, ` +
        `worst ${Math.max(...times).toFixed(0)} ms (20 runs: ${
          times.map((t) => t.toFixed(0)).join(", ")
        }; warm-up run right after agent start: ${warmup.toFixed(0)} ms)`,
    );
  } finally {
    await removeContainers(names);
    await agent.stop();
  }
}

async function benchRaft(): Promise<void> {
  console.log(await run(Deno.execPath(), ["run", "--allow-all", `${ROOT}scripts/raft_bench.ts`]));
}

// ---- kv: berth vs etcd writes ----

/** Value size of a KV benchmark write. */
const KV_VALUE_BYTES = 256;
/** Client concurrency levels of the KV benchmark. */
const KV_CONCURRENCY = [1, 16, 128];
/** Distinct keys the KV benchmark cycles through. */
const KV_KEYS_MAX = 1000;
/** Timeout of one benchmark write. */
const KV_WRITE_TIMEOUT_MS = 10_000;
/** Warm-up per system and level before measuring. */
const KV_WARMUP_MS = 1_000;
/** How long a 3-member etcd cluster may take to report healthy. */
const ETCD_START_TIMEOUT_MS = 30_000;

interface KvBenchResult {
  writesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/**
 * `clients` concurrent loops each sending `write(seq)` for `ms`; writes go to members
 * round-robin inside `write`. Each request is awaited before its loop sends the next.
 */
async function closedLoop(
  clients: number,
  ms: number,
  write: (seq: number) => Promise<boolean>,
): Promise<KvBenchResult> {
  const latencies: number[] = [];
  let errors = 0;
  let seq = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      const s = performance.now();
      const ok = await write(seq++).catch(() => false);
      if (ok) latencies.push(performance.now() - s);
      else errors++;
    }
  }));
  const elapsedS = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    writesPerSecond: latencies.length / elapsedS,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    errors,
  };
}

interface EtcdCluster {
  clientUrls: string[];
  stop(): Promise<void>;
}

async function startEtcdCluster(dir: string, n: number): Promise<EtcdCluster> {
  const members = [];
  for (let i = 0; i < n; i++) {
    const host = `127.0.0.${i + 1}`;
    members.push({
      name: `e${i + 1}`,
      host,
      client: `http://${host}:${await freePort(host)}`,
      peer: `http://${host}:${await freePort(host)}`,
    });
  }
  const initial = members.map((m) => `${m.name}=${m.peer}`).join(",");
  const token = uniq("bench-");
  const procs = members.map((m) => {
    const log = Deno.openSync(`${dir}/${m.name}.log`, { create: true, append: true });
    const child = new Deno.Command("etcd", {
      args: [
        "--name",
        m.name,
        "--data-dir",
        `${dir}/${m.name}`,
        "--listen-client-urls",
        m.client,
        "--advertise-client-urls",
        m.client,
        "--listen-peer-urls",
        m.peer,
        "--initial-advertise-peer-urls",
        m.peer,
        "--initial-cluster",
        initial,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        token,
        "--logger",
        "zap",
        "--log-level",
        "warn",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const pump = child.stderr.pipeTo(log.writable).catch(() => {});
    return { child, pump };
  });
  const stop = async () => {
    for (const p of procs) {
      try {
        p.child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    await Promise.all(procs.map(async (p) => {
      await p.child.status;
      await p.pump;
    }));
  };
  try {
    for (const m of members) {
      await waitFor(`etcd ${m.name} healthy`, async () => {
        const r = await fetch(`${m.client}/health`, { signal: AbortSignal.timeout(1000) });
        const body = await r.json() as { health?: string };
        return body.health === "true";
      }, { timeoutMs: ETCD_START_TIMEOUT_MS, intervalMs: 100 });
    }
  } catch (e) {
    await stop();
    throw new Error(`${errorText(e)}; logs in ${dir}/e*.log`);
  }
  return { clientUrls: members.map((m) => m.client), stop };
}

function base64(s: string): string {
  return btoa(s);
}

async function benchKv(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-kv-" });
  const value = "v".repeat(KV_VALUE_BYTES);
  const valueB64 = base64(value);
  let agents: AgentProc[] = [];
  let etcd: EtcdCluster | undefined;
  let done = false;
  try {
    agents = await startCluster(3, { args: ["--proxy-http", "off"] });
    await waitForVoters(agents);
    etcd = await startEtcdCluster(dir, 3);
    const berthUrls = agents.map((a) => a.httpUrl);
    const etcdUrls = etcd.clientUrls;
    const berthWrite = async (seq: number) => {
      const r = await fetch(
        `${berthUrls[seq % berthUrls.length]}/v1/kv/bench/k${seq % KV_KEYS_MAX}`,
        {
          method: "PUT",
          body: value,
          signal: AbortSignal.timeout(KV_WRITE_TIMEOUT_MS),
        },
      );
      return r.ok && (await r.text()).trim() === "true";
    };
    const etcdWrite = async (seq: number) => {
      const r = await fetch(`${etcdUrls[seq % etcdUrls.length]}/v3/kv/put`, {
        method: "POST",
        body: JSON.stringify({ key: base64(`bench/k${seq % KV_KEYS_MAX}`), value: valueB64 }),
        headers: { "content-type": "application/json" },
        signal: AbortSignal.timeout(KV_WRITE_TIMEOUT_MS),
      });
      const body = await r.json() as { header?: unknown };
      return r.ok && body.header !== undefined;
    };
    if (!await berthWrite(0)) throw new Error("berth does not accept a KV write");
    if (!await etcdWrite(0)) throw new Error("etcd does not accept a KV write via /v3/kv/put");
    const fmt = (r: KvBenchResult) =>
      `${r.writesPerSecond.toFixed(0).padStart(7)} w/s p50 ${r.p50Ms.toFixed(1).padStart(6)} ms ` +
      `p99 ${r.p99Ms.toFixed(1).padStart(6)} ms${r.errors > 0 ? ` (${r.errors} errors)` : ""}`;
    console.log(
      `kv    3 members each on 127.0.0.1-3, ${KV_VALUE_BYTES}-byte puts, round-robin over all ` +
        `members, ${SECONDS}s per level`,
    );
    for (const clients of KV_CONCURRENCY) {
      // Alternate, so both see the same background noise.
      await closedLoop(clients, KV_WARMUP_MS, berthWrite);
      const b = await closedLoop(clients, SECONDS * 1000, berthWrite);
      await closedLoop(clients, KV_WARMUP_MS, etcdWrite);
      const e = await closedLoop(clients, SECONDS * 1000, etcdWrite);
      console.log(
        `kv    ${String(clients).padStart(3)} clients  berth ${fmt(b)} | etcd ${fmt(e)} | ` +
          `ratio w/s ${(b.writesPerSecond / e.writesPerSecond).toFixed(2)}, ` +
          `p50 ${(b.p50Ms / e.p50Ms).toFixed(2)}, p99 ${(b.p99Ms / e.p99Ms).toFixed(2)}`,
      );
    }
    done = true;
  } finally {
    await etcd?.stop();
    await stopAll(agents);
    for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
    // Kept on failure: the etcd logs are in it.
    if (done) Deno.removeSync(dir, { recursive: true });
  }
}

// ---- failover: leader kill → first successful write ----

const FAILOVER_ROUNDS = 10;
/** Pause between two write attempts while there is no leader. */
const FAILOVER_RETRY_MS = 20;
/** Timeout of one write attempt during failover. */
const FAILOVER_WRITE_TIMEOUT_MS = 250;
/** Longest a failover may take before the round counts as failed. */
const FAILOVER_TIMEOUT_MS = 30_000;
/** Longest a restarted member may take to catch up. */
const CATCH_UP_TIMEOUT_MS = 30_000;

async function berthStatus(
  a: AgentProc,
): Promise<{ leader: string | null; commitIndex: number; appliedIndex: number }> {
  const r = await fetch(`${a.httpUrl}/v1/berth/status`, { signal: AbortSignal.timeout(1000) });
  if (!r.ok) throw new Error(`status: ${r.status} ${await r.text()}`);
  return await r.json();
}

async function benchFailover(): Promise<void> {
  const agents = await startCluster(3, { args: ["--proxy-http", "off"] });
  const times: number[] = [];
  try {
    await waitForVoters(agents);
    for (let round = 0; round < FAILOVER_ROUNDS; round++) {
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
      times.push(performance.now() - t0);
      await killed;
      agents[leader] = await startAgent({
        node: victim.node,
        dataDir: victim.dataDir,
        host: victim.host,
        ports: portsOf(victim),
        bootstrap: false,
        docker: false,
        args: ["--proxy-http", "off"],
      });
      const target = (await berthStatus(survivors[0]!)).commitIndex;
      await waitFor(`${victim.node} to catch up`, async () => {
        const s = await berthStatus(agents[leader]!);
        return s.leader !== null && s.appliedIndex >= target;
      }, { timeoutMs: CATCH_UP_TIMEOUT_MS });
    }
    console.log(
      `failover kill -9 leader → first write via a survivor: median ${
        median(times).toFixed(0)
      } ms, ` +
        `worst ${Math.max(...times).toFixed(0)} ms (${FAILOVER_ROUNDS} rounds: ` +
        `${times.map((t) => t.toFixed(0)).join(", ")})`,
    );
  } finally {
    await Promise.all(agents.map((a) => a.kill()));
    for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
  }
}

const all: Record<string, () => Promise<void>> = {
  dns: benchDns,
  http: benchHttp,
  docker: benchDocker,
  raft: benchRaft,
  kv: benchKv,
  failover: benchFailover,
};
let parts: string[];
try {
  parts = parseFlags(Deno.args, []).positionals;
} catch (e) {
  console.error(`bench: ${errorText(e)} (arguments are parts: ${Object.keys(all).join(", ")})`);
  Deno.exit(2);
}
const chosen = parts.length > 0 ? parts : Object.keys(all);
for (const name of chosen) {
  if (!(name in all)) {
    console.error(`bench: unknown part "${name}" (one of ${Object.keys(all).join(", ")})`);
    Deno.exit(2);
  }
}
await ensureTools();
console.log(
  `berth bench, ${SECONDS}s per run, ${new Date().toISOString()}, ` +
    `deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores`,
);
for (const name of chosen) {
  try {
    await all[name]!();
  } catch (e) {
    console.error(`bench ${name}: ${errorText(e)}`);
    Deno.exitCode = 1;
  }
}
