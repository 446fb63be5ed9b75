/**
 * `deno task bench isolation`: whether a saturated data plane leaves the control plane alone.
 * On the leader of a 3-member cluster (127.0.0.1-3, the loop probe on: BERTH_LOOP_PROBE=1), wrk
 * (`-t1 -c32`) saturates its HTTP proxy (a static nginx backend of its own behind it) and dnsperf
 * (`-c4`, unpaced) its DNS at once for BENCH_ISOLATION_SECONDS (default 20), after an idle
 * window of a quarter of that. In both windows, measured the same way:
 *
 * - elections: every member's raft term and leader, polled every 100 ms (`/v1/berth/status`);
 * - heartbeats as each follower saw them: the intervals between consecutive heartbeats from the
 *   leader (`heartbeatGaps` of `GET /v1/berth/loop`), p50/p99/max, beside the election timeout
 *   (ELECTION_TICKS ticks, randomized up to twice that: a gap that long starts an election);
 * - the leader's API: `GET /v1/catalog/services?stale` every 20 ms and `PUT /v1/kv/…` (a raft
 *   write) every 100 ms, one at a time, p50/p99/max and failures. The reads are stale (served
 *   by the leader's main thread without a read barrier) because a default read's barrier makes
 *   the leader send a round of heartbeats: 50 reads a second would hide the heartbeat interval;
 * - the leader's main-thread event loop: the worst lateness of the probe's 1 ms timer.
 *
 * The verdict: no election (term and leader unchanged), the worst heartbeat gap under the
 * election timeout, and the API p99s. Bounded: the load clients stop themselves (and are killed
 * 30 s after their end), every probe request has a 5 s timeout. The probes run in this process
 * on the same cores as the load: their latencies include waiting for a core.
 *
 * @module
 */
import {
  type AgentProc,
  apiJson,
  freePort,
  lookupA,
  proxyGet,
  startCluster,
  stopAll,
} from "../../test/harness.ts";
import { sleep, waitFor } from "../../test/wait.ts";
import { ELECTION_TICKS, HEARTBEAT_TICKS, TICK_MS_DEFAULT } from "../../src/cluster/_core.ts";
import type { GapReport } from "../../src/lib/gap_recorder.ts";
import { errorText } from "../../src/lib/error_text.ts";
import { type BenchOptions, register } from "./_shared.ts";
import { BACKEND_BODY, nginxBackendConfig } from "./_tls_anchors.ts";
import { runClient, startProc, stopOnExit } from "./_proc.ts";
import { loopOf, type LoopReading, tail } from "./_measure.ts";
import { wrkFigures } from "./http.ts";
import { msText, rateText } from "./_compare.ts";

const NAME = "bench.test";
const QNAME = "web.service.berth";
const STATUS_EVERY_MS = 100;
const READ_EVERY_MS = 20;
/** Stale: no read barrier, whose heartbeats would hide the periodic ones (module comment). */
const READ_PATH = "/v1/catalog/services?stale";
const WRITE_EVERY_MS = 100;
const REQUEST_TIMEOUT_MS = 5000;
const ELECTION_TIMEOUT_MS = ELECTION_TICKS * TICK_MS_DEFAULT;
const HEARTBEAT_MS = HEARTBEAT_TICKS * TICK_MS_DEFAULT;

/** The loaded window's length, s (env BENCH_ISOLATION_SECONDS, default 20). */
function loadSeconds(): number {
  const v = Deno.env.get("BENCH_ISOLATION_SECONDS") ?? "20";
  const n = Number(v);
  if (!Number.isInteger(n) || n < 2 || n > 3600) {
    throw new Error(`BENCH_ISOLATION_SECONDS=${v.slice(0, 20)}: expected 2..3600`);
  }
  return n;
}

/** Latencies of one kind of API request, ms, and how many failed (an error or not 2xx). */
interface Api {
  ms: number[];
  failed: number;
  firstFailure?: string;
}

/** What one window measured. */
interface Window {
  seconds: number;
  /** Terms and leaders seen, per member, in order of change. */
  terms: Map<string, number[]>;
  leaders: Map<string, (string | null)[]>;
  statusFailures: number;
  reads: Api;
  writes: Api;
  /** Follower name → its heartbeat gaps; the leader's loop probe. */
  gaps: Map<string, GapReport>;
  leaderLoop: LoopReading;
  load?: { rps: number; proxyErrors: number; qps: number; dnsLost: number; cpu: string };
}

/** `fn` again and again, `everyMs` apart (from start to start), until `until` (performance.now). */
async function every(everyMs: number, until: number, fn: () => Promise<void>): Promise<void> {
  while (performance.now() < until) {
    const t0 = performance.now();
    await fn();
    const rest = everyMs - (performance.now() - t0);
    const left = Math.min(rest, until - performance.now());
    if (left > 0) await sleep(left);
  }
}

async function timed(api: Api, url: string, init: RequestInit = {}): Promise<void> {
  const t0 = performance.now();
  try {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await r.arrayBuffer();
    if (!r.ok) throw new Error(`${r.status}`);
    api.ms.push(performance.now() - t0);
  } catch (e) {
    api.failed++;
    api.firstFailure ??= `${init.method ?? "GET"} ${url}: ${errorText(e)}`;
  }
}

function pushChange<T>(m: Map<string, T[]>, key: string, v: T): void {
  const seen = m.get(key) ?? [];
  if (seen.length === 0 || seen.at(-1) !== v) seen.push(v);
  m.set(key, seen);
}

/**
 * One window of `seconds` on `agents` with `leader` probed; `load` (started here) runs
 * meanwhile and its result is kept.
 */
async function window(
  agents: AgentProc[],
  leader: AgentProc,
  seconds: number,
  load?: () => Promise<Window["load"]>,
): Promise<Window> {
  const w: Window = {
    seconds,
    terms: new Map(),
    leaders: new Map(),
    statusFailures: 0,
    reads: { ms: [], failed: 0 },
    writes: { ms: [], failed: 0 },
    gaps: new Map(),
    leaderLoop: { worstPauseMs: 0, sinceMs: 0, pausesOver10Ms: 0, pausesOver50Ms: 0 },
  };
  await Promise.all(agents.map((a) => loopOf(a))); // reset
  const until = performance.now() + seconds * 1000;
  let k = 0;
  const [loaded] = await Promise.all([
    load?.(),
    every(STATUS_EVERY_MS, until, async () => {
      await Promise.all(agents.map(async (a) => {
        try {
          const s = await apiJson(a, "/v1/berth/status") as { term: number; leader: string };
          pushChange(w.terms, a.node, s.term);
          pushChange(w.leaders, a.node, s.leader);
        } catch {
          w.statusFailures++;
        }
      }));
    }),
    every(READ_EVERY_MS, until, () => timed(w.reads, `${leader.httpUrl}${READ_PATH}`)),
    every(
      WRITE_EVERY_MS,
      until,
      () =>
        timed(w.writes, `${leader.httpUrl}/v1/kv/isolation/k${k++ % 100}`, {
          method: "PUT",
          body: "v".repeat(256),
        }),
    ),
  ]);
  w.load = loaded;
  for (const a of agents) {
    const r = await loopOf(a);
    if (a === leader) w.leaderLoop = r;
    else if (r.heartbeatGaps !== undefined) w.gaps.set(a.node, r.heartbeatGaps);
    else throw new Error(`${a.node}'s /v1/berth/loop has no heartbeatGaps (an older build?)`);
  }
  return w;
}

/** Term changes and leader changes in a window (the first value seen is no change). */
function changes(w: Window): { termChanges: number; leaderChanges: number; terms: string } {
  let termChanges = 0;
  let leaderChanges = 0;
  const all = new Set<number>();
  for (const t of w.terms.values()) {
    termChanges = Math.max(termChanges, t.length - 1);
    t.forEach((x) => all.add(x));
  }
  for (const l of w.leaders.values()) leaderChanges = Math.max(leaderChanges, l.length - 1);
  return { termChanges, leaderChanges, terms: [...all].sort((a, b) => a - b).join(" → ") };
}

function apiText(a: Api): string {
  const t = tail(a.ms);
  const max = a.ms.length === 0 ? NaN : Math.max(...a.ms);
  return `p50 ${msText(t.p50)} ms, p99 ${msText(t.p99)} ms, max ${msText(max)} ms ` +
    `(${t.n} ok, ${a.failed} failed)`;
}

function gapsText(w: Window): string {
  return [...w.gaps.values()].map((g) =>
    g.gaps === 0
      ? "none"
      : `${msText(g.p50Ms!)}/${msText(g.p99Ms!)}/${msText(g.worstMs!)} ms (${g.gaps})`
  ).join("; ");
}

function worstGap(w: Window): number {
  return Math.max(...[...w.gaps.values()].map((g) => g.worstMs ?? Infinity));
}

function report(idle: Window, loaded: Window, leader: AgentProc): void {
  const ci = changes(idle);
  const cl = changes(loaded);
  const l = loaded.load!;
  console.log(
    `isolation  load on the leader (${leader.node}) for ${loaded.seconds} s: wrk -t1 -c32 on its ` +
      `proxy ${rateText(l.rps)} req/s (${l.proxyErrors} errors) + dnsperf -c4 on its DNS ` +
      `${rateText(l.qps)} q/s (${l.dnsLost} lost); client CPU ${l.cpu}; idle window ` +
      `${idle.seconds} s before`,
  );
  const rows: [string, string, string][] = [
    [
      "elections (term changes / leader changes)",
      `${ci.termChanges} / ${ci.leaderChanges} (term ${ci.terms})`,
      `${cl.termChanges} / ${cl.leaderChanges} (term ${cl.terms})`,
    ],
    [
      "heartbeat gaps per follower, p50/p99/max (count)",
      gapsText(idle),
      gapsText(loaded),
    ],
    [
      "leader's event loop: worst 1 ms timer lateness",
      `${msText(idle.leaderLoop.worstPauseMs)} ms`,
      `${msText(loaded.leaderLoop.worstPauseMs)} ms (>50 ms: ` +
      `${loaded.leaderLoop.pausesOver50Ms})`,
    ],
    [
      `leader's API GET ${READ_PATH} every ${READ_EVERY_MS} ms`,
      apiText(idle.reads),
      apiText(loaded.reads),
    ],
    [
      `leader's API PUT /v1/kv (raft write) every ${WRITE_EVERY_MS} ms`,
      apiText(idle.writes),
      apiText(loaded.writes),
    ],
    ["status polls failed", String(idle.statusFailures), String(loaded.statusFailures)],
  ];
  console.log("| isolation | idle | proxy + DNS saturated |\n|---|---|---|");
  for (const [what, a, b] of rows) console.log(`| ${what} | ${a} | ${b} |`);
  const elections = cl.termChanges + cl.leaderChanges;
  const gap = worstGap(loaded);
  const readP99 = tail(loaded.reads.ms).p99;
  const writeP99 = tail(loaded.writes.ms).p99;
  const failures = loaded.reads.failed + loaded.writes.failed + loaded.statusFailures;
  console.log(
    `isolation verdict: elections ${elections === 0 ? "0 (ok)" : `${elections} (NOT MET)`}; ` +
      `worst heartbeat gap ${msText(gap)} ms (heartbeat every ${HEARTBEAT_MS} ms) vs the ` +
      `election timeout ${ELECTION_TIMEOUT_MS}–${2 * ELECTION_TIMEOUT_MS} ms ` +
      `${gap < ELECTION_TIMEOUT_MS ? "(ok)" : "(NOT MET)"}; API p99 under load: reads ` +
      `${msText(readP99)} ms, writes ${msText(writeP99)} ms, ${failures} failed requests ` +
      `${failures === 0 ? "(ok)" : "(NOT MET)"}`,
  );
  for (const api of [loaded.reads, loaded.writes]) {
    if (api.firstFailure !== undefined) {
      console.log(`isolation  first failure: ${api.firstFailure}`);
    }
  }
}

export async function benchIsolation(o: BenchOptions): Promise<void> {
  const seconds = loadSeconds();
  const idleSeconds = Math.max(2, Math.round(seconds / 4));
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-isolation-" });
  const backendPort = await freePort();
  Deno.writeTextFileSync(
    `${dir}/backend.conf`,
    nginxBackendConfig({ dir, host: "127.0.0.1", port: backendPort }),
  );
  const backend = startProc("nginx", ["-c", `${dir}/backend.conf`, "-g", "daemon off;"]);
  Deno.env.set("BERTH_LOOP_PROBE", "1"); // inherited by the members
  const plain = o.tls === "off" ? ["--dev", "--tls", "off"] : [];
  let agents: AgentProc[] = [];
  const stopAgents = stopOnExit(async () => {
    await stopAll(agents);
    for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
  });
  try {
    agents = await startCluster(3, { args: plain });
    const status = await apiJson(agents[0]!, "/v1/berth/status") as { leader: string };
    const leader = agents.find((a) => a.node === status.leader);
    if (leader === undefined) throw new Error(`leader ${status.leader} is not one of the members`);
    await register(leader.httpUrl, {
      Name: "web",
      ID: "web-1",
      Address: "127.0.0.1",
      Port: backendPort,
      Meta: { "berth.http.host": NAME },
    });
    await waitFor(
      `the leader to answer ${QNAME}`,
      async () => (await lookupA(leader.dnsPort, QNAME, leader.host)).length === 1,
    );
    await waitFor("the leader's proxy to reach the backend", async () => {
      const r = await proxyGet(leader.proxyPort, NAME, "/", leader.host);
      return r.status === 200 && r.body.trim() === BACKEND_BODY;
    });
    Deno.writeTextFileSync(`${dir}/queries`, `${QNAME} A\n`);
    console.log(
      `isolation  3 members (${plain.length > 0 ? "plain" : "TLS"}) on 127.0.0.1-3, leader ` +
        `${leader.node}; idle ${idleSeconds} s, then ${seconds} s under load`,
    );
    const idle = await window(agents, leader, idleSeconds);
    const load = async () => {
      const [w, d] = await Promise.all([
        runClient("wrk", [
          ...["-t", "1", "-c", "32", "-d", `${seconds}s`, "--latency", "--timeout", "5s"],
          ...["-H", `Host: ${NAME}`, `http://${leader.host}:${leader.proxyPort}/`],
        ], { limitSeconds: seconds + 30 }),
        runClient("dnsperf", [
          ...["-s", leader.host, "-p", String(leader.dnsPort), "-d", `${dir}/queries`],
          ...["-l", String(seconds), "-c", "4", "-Q", "1000000", "-t", "2"],
        ], { limitSeconds: seconds + 30 }),
      ]);
      const wf = wrkFigures(w.stdout);
      const qps = /Queries per second:\s+([\d.]+)/.exec(d.stdout);
      const lost = /Queries lost:\s+(\d+)/.exec(d.stdout);
      if (qps === null) throw new Error(`dnsperf output not understood:\n${d.stdout}`);
      return {
        rps: wf.rate,
        proxyErrors: wf.errors,
        qps: Number(qps[1]),
        dnsLost: Number(lost?.[1] ?? 0),
        cpu: `wrk ${(w.cpuMs / w.wallMs * 100).toFixed(0)}%, dnsperf ${
          (d.cpuMs / d.wallMs * 100).toFixed(0)
        }% of a core`,
      };
    };
    const loaded = await window(agents, leader, seconds, load);
    report(idle, loaded, leader);
  } finally {
    await stopAgents();
    await backend.stop();
    Deno.env.delete("BERTH_LOOP_PROBE");
    Deno.removeSync(dir, { recursive: true });
  }
}
