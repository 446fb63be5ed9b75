/**
 * `deno task bench kv`: KV writes/s, p50 and p99 of 3-member berth clusters beside a 3-member
 * etcd cluster on 127.0.0.1-3: 256-byte values, 1/16/128 connections, keys cycling over 1000,
 * each level warmed up and measured alternately. Two load generators, both figures printed:
 *
 * - the in-process client (`kv    ` lines): closed-loop Deno fetch() clients in this process,
 *   writes round-robin over all members (a follower forwards to the leader);
 * - wrk (`kv wrk` lines): the same external load generator for both systems, one wrk thread
 *   with 1/16/128 kept-alive connections to the leader (berth: `PUT /v1/kv/<key>`, etcd:
 *   `POST /v3/kv/put`), latency percentiles from wrk's histogram (scripts/bench/_wrk.ts).
 *
 * Both berth sides serve their HTTP API in plain HTTP; `--tls` chooses the member transport:
 * `--tls both` (the default) runs a berth cluster with mutual TLS and one with `--dev --tls off`
 * side by side, measured in A-B-B-A halves (so drifting background load hits both alike), and
 * prints TLS/plain ratios. etcd runs plain (no client or peer TLS): `--tls off` is the
 * apples-to-apples comparison. Env BENCH_KV_CLIENT=deno|wrk runs one load generator only.
 *
 * @module
 */
import { type AgentProc, leaderOf, startCluster, stopAll } from "../../test/harness.ts";
import { waitForVoters } from "../../test/jepsen.ts";
import { type BenchOptions, SECONDS, type Side, SIDES_NOTE, sidesOf } from "./_shared.ts";
import { type EtcdCluster, etcdLeaderUrl, startEtcdCluster } from "./_etcd.ts";
import { summarizeWrk, writeWrkScript, wrk, type WrkRun, type WrkSummary } from "./_wrk.ts";

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

const ratios = (b: KvBenchResult, e: KvBenchResult) =>
  `ratio w/s ${(b.writesPerSecond / e.writesPerSecond).toFixed(2)}, ` +
  `p50 ${(b.p50Ms / e.p50Ms).toFixed(2)}, p99 ${(b.p99Ms / e.p99Ms).toFixed(2)}`;

type KvSide = Side & { agents: AgentProc[]; write: (seq: number) => Promise<boolean> };

/** Which load generators run (env BENCH_KV_CLIENT: deno, wrk or both, the default). */
function clientsChosen(): { deno: boolean; wrk: boolean } {
  const v = Deno.env.get("BENCH_KV_CLIENT") ?? "both";
  if (v !== "both" && v !== "deno" && v !== "wrk") {
    throw new Error(`BENCH_KV_CLIENT=${v.slice(0, 40)}: expected deno, wrk or both`);
  }
  return { deno: v !== "wrk", wrk: v !== "deno" };
}

export async function benchKv(o: BenchOptions): Promise<void> {
  const chosen = clientsChosen();
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-kv-" });
  const value = "v".repeat(KV_VALUE_BYTES);
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
    const etcdWrite = etcdWriter(etcd.clientUrls, value);
    if (!await etcdWrite(0)) throw new Error("etcd does not accept a KV write via /v3/kv/put");
    console.log(
      `kv    3 members each on 127.0.0.1-3, ${KV_VALUE_BYTES}-byte puts, ${KV_KEYS_MAX} keys, ` +
        `${SECONDS}s per level and system`,
    );
    if (sides.length > 1) console.log(`kv    ${SIDES_NOTE}; measured in A-B-B-A halves`);
    if (chosen.deno) await inProcess(sides, etcdWrite);
    if (chosen.wrk) await wrkDriven(sides, etcd, dir, value);
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

/** An etcd KV write of `value` through the member `seq` picks (round-robin). */
function etcdWriter(urls: string[], value: string): (seq: number) => Promise<boolean> {
  const valueB64 = base64(value);
  return async (seq: number) => {
    const r = await fetch(`${urls[seq % urls.length]}/v3/kv/put`, {
      method: "POST",
      body: JSON.stringify({ key: base64(`bench/k${seq % KV_KEYS_MAX}`), value: valueB64 }),
      headers: { "content-type": "application/json" },
      signal: AbortSignal.timeout(KV_WRITE_TIMEOUT_MS),
    });
    const body = await r.json() as { header?: unknown };
    return r.ok && body.header !== undefined;
  };
}

/** The in-process client's figures: closed loops in this process, round-robin over members. */
async function inProcess(
  sides: KvSide[],
  etcdWrite: (seq: number) => Promise<boolean>,
): Promise<void> {
  console.log("kv    in-process client (Deno fetch), writes round-robin over all members");
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
        `kv    ${n} clients  berth ${side.label.padEnd(5)} ${fmt(b)} | etcd ${fmt(e)} | ${
          ratios(b, e)
        }`,
      );
    });
    if (results.length > 1) {
      const [t, p] = results as [KvBenchResult, KvBenchResult];
      console.log(`kv    ${n} clients  TLS/plain: ${ratios(t, p).replace("ratio ", "")}`);
    }
  }
}

/** A wrk summary in the in-process client's shape (successful writes/s). */
function fromWrk(s: WrkSummary): KvBenchResult {
  return { writesPerSecond: s.perSecond, p50Ms: s.p50Ms, p99Ms: s.p99Ms, errors: s.errors };
}

/** The URL of the member of `agents` that leads now. */
async function berthLeaderUrl(agents: AgentProc[]): Promise<string> {
  const name = await leaderOf(agents[0]!);
  const a = agents.find((x) => x.node === name);
  if (a === undefined) throw new Error(`berth leader ${name} is not one of the members`);
  return a.httpUrl;
}

/**
 * wrk against each system's leader (module comment): every berth side and etcd measured in
 * halves, in the order A B … Z Z … B A per level, each warmed up first.
 */
async function wrkDriven(
  sides: KvSide[],
  etcd: EtcdCluster,
  dir: string,
  value: string,
): Promise<void> {
  const keys = Array.from({ length: KV_KEYS_MAX }, (_, i) => `bench/w${i}`);
  const berthScript = writeWrkScript(dir, "berth", {
    method: "PUT",
    paths: keys.map((k) => `/v1/kv/${k}`),
    bodies: value,
  });
  const etcdScript = writeWrkScript(dir, "etcd", {
    method: "POST",
    paths: keys.map(() => "/v3/kv/put"),
    bodies: keys.map((k) => JSON.stringify({ key: base64(k), value: base64(value) })),
    headers: { "Content-Type": "application/json" },
  });
  const half = Math.max(1, Math.round(SECONDS / 2));
  console.log(
    `kv wrk  wrk -t 1 -c N to the leader, ${2 * half}s per level and system in halves ` +
      `(berth PUT /v1/kv/<key>, etcd POST /v3/kv/put); p50/p99 of the halves weighted by requests`,
  );
  for (const connections of KV_CONCURRENCY) {
    const targets = [
      ...await Promise.all(sides.map(async (s) => ({
        url: await berthLeaderUrl(s.agents),
        script: berthScript,
      }))),
      { url: await etcdLeaderUrl(etcd), script: etcdScript },
    ];
    const order = [...targets.keys(), ...[...targets.keys()].reverse()];
    const runs: WrkRun[][] = targets.map(() => []);
    const warmed = new Set<number>();
    for (const i of order) {
      const t = targets[i]!;
      if (!warmed.has(i)) {
        warmed.add(i);
        await wrk(t.url, { script: t.script, connections, seconds: KV_WARMUP_MS / 1000 });
      }
      runs[i]!.push(await wrk(t.url, { script: t.script, connections, seconds: half }));
    }
    const results = runs.map((r) => fromWrk(summarizeWrk(r)));
    const e = results[results.length - 1]!;
    const n = String(connections).padStart(3);
    sides.forEach((side, i) => {
      const b = results[i]!;
      console.log(
        `kv wrk ${n} conns  berth ${side.label.padEnd(5)} ${fmt(b)} | etcd ${fmt(e)} | ${
          ratios(b, e)
        }`,
      );
    });
  }
}
