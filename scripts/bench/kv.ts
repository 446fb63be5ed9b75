/**
 * `deno task bench kv`: KV writes/s, p50 and p99 of a 3-member berth cluster beside a 3-member
 * etcd cluster on 127.0.0.1-3: 256-byte values, 1/16/128 closed-loop clients, writes round-robin
 * over all members, each level warmed up and measured alternately.
 *
 * @module
 */
import { type AgentProc, freePort, startCluster, stopAll, uniq } from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { waitForVoters } from "../../test/jepsen.ts";
import { errorText } from "../../src/lib/error_text.ts";
import { SECONDS } from "./_shared.ts";

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

/**
 * `clients` concurrent loops each sending `write(seq)` for `ms`; writes go to members
 * round-robin inside `write`. Each request is awaited before its loop sends the next.
 */
export async function closedLoop(
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

export async function benchKv(): Promise<void> {
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
