/**
 * `deno task bench kv`: KV writes/s, p50 and p99 of 3-member berth clusters beside a 3-member
 * etcd cluster on 127.0.0.1-3: 256-byte values, 1/16/128 closed-loop clients, writes round-robin
 * over all members, each level warmed up and measured alternately. `--tls both` (the default)
 * runs a berth cluster with mutual TLS and one with `--dev --tls off` side by side, measured in
 * A-B-B-A halves (so drifting background load hits both alike), and prints TLS/plain ratios.
 *
 * @module
 */
import { type AgentProc, freePort, startCluster, stopAll, uniq } from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { waitForVoters } from "../../test/jepsen.ts";
import { errorText } from "../../src/lib/error_text.ts";
import { type BenchOptions, SECONDS, type Side, SIDES_NOTE, sidesOf } from "./_shared.ts";

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

export interface KvBenchResult {
  writesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** The raw outcome of one closed-loop run (merged by summarize()). */
interface LoopRun {
  latencies: number[];
  errors: number;
  elapsedMs: number;
}

/**
 * `clients` concurrent loops each sending `write(seq)` for `ms`; writes go to members
 * round-robin inside `write`. Each request is awaited before its loop sends the next.
 */
async function loop(
  clients: number,
  ms: number,
  write: (seq: number) => Promise<boolean>,
): Promise<LoopRun> {
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
  return { latencies, errors, elapsedMs: performance.now() - t0 };
}

/** Writes/s over the runs' summed time, percentiles over all their latencies. */
function summarize(runs: LoopRun[]): KvBenchResult {
  const latencies = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const elapsedS = runs.reduce((t, r) => t + r.elapsedMs, 0) / 1000;
  return {
    writesPerSecond: latencies.length / elapsedS,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    errors: runs.reduce((n, r) => n + r.errors, 0),
  };
}

/** See loop(); the summary of one run. */
export async function closedLoop(
  clients: number,
  ms: number,
  write: (seq: number) => Promise<boolean>,
): Promise<KvBenchResult> {
  return summarize([await loop(clients, ms, write)]);
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

/** A berth KV write of `value` through the member `seq` picks (round-robin). */
function berthWriter(urls: string[], value: string): (seq: number) => Promise<boolean> {
  return async (seq: number) => {
    const r = await fetch(`${urls[seq % urls.length]}/v1/kv/bench/k${seq % KV_KEYS_MAX}`, {
      method: "PUT",
      body: value,
      signal: AbortSignal.timeout(KV_WRITE_TIMEOUT_MS),
    });
    return r.ok && (await r.text()).trim() === "true";
  };
}

const fmt = (r: KvBenchResult) =>
  `${r.writesPerSecond.toFixed(0).padStart(7)} w/s p50 ${r.p50Ms.toFixed(1).padStart(6)} ms ` +
  `p99 ${r.p99Ms.toFixed(1).padStart(6)} ms${r.errors > 0 ? ` (${r.errors} errors)` : ""}`;

type KvSide = Side & { agents: AgentProc[]; write: (seq: number) => Promise<boolean> };

export async function benchKv(o: BenchOptions): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-kv-" });
  const value = "v".repeat(KV_VALUE_BYTES);
  const valueB64 = base64(value);
  const sides: KvSide[] = [];
  let etcd: EtcdCluster | undefined;
  let done = false;
  try {
    for (const side of sidesOf(o.tls, ["--proxy-http", "off"])) {
      const agents = await startCluster(3, { args: side.args });
      const write = berthWriter(agents.map((a) => a.httpUrl), value);
      sides.push({ ...side, agents, write });
      await waitForVoters(agents);
      if (!await write(0)) throw new Error(`berth (${side.label}) does not accept a KV write`);
    }
    etcd = await startEtcdCluster(dir, 3);
    const etcdUrls = etcd.clientUrls;
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
    if (!await etcdWrite(0)) throw new Error("etcd does not accept a KV write via /v3/kv/put");
    console.log(
      `kv    3 members each on 127.0.0.1-3, ${KV_VALUE_BYTES}-byte puts, round-robin over all ` +
        `members, ${SECONDS}s per level and system`,
    );
    if (sides.length > 1) console.log(`kv    ${SIDES_NOTE}; measured in A-B-B-A halves`);
    for (const clients of KV_CONCURRENCY) {
      // Alternate, so all see the same background noise: A B B A for the berth sides (one side
      // alone: two halves), then etcd. Each chunk is warmed up first.
      const order = sides.length > 1 ? [0, 1, 1, 0] : [0, 0];
      const runs: LoopRun[][] = sides.map(() => []);
      for (const i of order) {
        await loop(clients, KV_WARMUP_MS, sides[i]!.write);
        runs[i]!.push(await loop(clients, (SECONDS * 1000) / 2, sides[i]!.write));
      }
      const results = runs.map(summarize);
      await closedLoop(clients, KV_WARMUP_MS, etcdWrite);
      const e = await closedLoop(clients, SECONDS * 1000, etcdWrite);
      const n = String(clients).padStart(3);
      sides.forEach((side, i) => {
        const b = results[i]!;
        console.log(
          `kv    ${n} clients  berth ${side.label.padEnd(5)} ${fmt(b)} | etcd ${fmt(e)} | ` +
            `ratio w/s ${(b.writesPerSecond / e.writesPerSecond).toFixed(2)}, ` +
            `p50 ${(b.p50Ms / e.p50Ms).toFixed(2)}, p99 ${(b.p99Ms / e.p99Ms).toFixed(2)}`,
        );
      });
      if (results.length > 1) {
        const [t, p] = results as [KvBenchResult, KvBenchResult];
        console.log(
          `kv    ${n} clients  TLS/plain: w/s ${
            (t.writesPerSecond / p.writesPerSecond).toFixed(2)
          }` +
            `, p50 ${(t.p50Ms / p.p50Ms).toFixed(2)}, p99 ${(t.p99Ms / p.p99Ms).toFixed(2)}`,
        );
      }
    }
    done = true;
  } finally {
    await etcd?.stop();
    for (const side of sides) {
      await stopAll(side.agents);
      for (const a of side.agents) Deno.removeSync(a.dataDir, { recursive: true });
    }
    // Kept on failure: the etcd logs are in it.
    if (done) Deno.removeSync(dir, { recursive: true });
  }
}
