/**
 * `deno task bench scale`: a 3-member cluster takes 100,000 instances in 1,000 services through
 * the API, as a fleet's agents would register their hosts' containers: 32 clients at once, each
 * request to the next member's `/v1/agent/service/register` (so the instances belong to the
 * three members' nodes), each service routed by the proxy (`berth.http.host`). Printed in one
 * run:
 *
 * - the registration rate per step of 10,000 (first and last side by side: the goal is the last
 *   within 0.8× of the first), with the worst event-loop pause on the leader and a follower in
 *   each step (the agents run the loop probe, BERTH_LOOP_PROBE=1);
 * - each member's RSS after the load, then after a forced GC (`POST /v1/berth/gc`: V8's
 *   last-resort GC, the agents run with DENO_V8_FLAGS=--expose-gc), and its V8 heap;
 * - on a follower, at 100 instances and again at the end: DNS latency (one UDP socket, one query
 *   at a time), the proxy's latency to a routed service and to an unknown host (wrk --latency,
 *   4 connections; the unknown host is the route lookup alone), catalog and health API latency;
 * - a new member joining: time from its spawn to its first DNS answer for a service and to its
 *   log caught up, with the worst loop pause on the joiner and on a follower meanwhile.
 *
 * `--instances N` (default 100,000; services = N / 100, at most 1,000) for a quick run;
 * `--max-minutes M` (default 40) stops the registration there and measures what was reached.
 *
 * @module
 */
import {
  type AgentProc,
  freePort,
  proxyGet,
  startAgent,
  startCluster,
  stopAll,
} from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { createServer } from "node:http";
import { type BenchOptions, SECONDS } from "./_shared.ts";
import {
  dnsLatencies,
  httpLatencies,
  loopOf,
  type LoopReading,
  procStatusMiB,
  rssMiB,
  showTail,
  type Tail,
  tail,
  wrk,
  type WrkResult,
} from "./_measure.ts";
import { berthStatus } from "./failover.ts";

/** Registrations in flight at once (a deploy storm across many hosts). */
const SCALE_CLIENTS = 32;
/** Instances per service; the probe service (svc-0000) gets exactly this many first. */
const PER_SERVICE = 100;
const SERVICES_MAX = 1000;
/** The rate is reported per this many registrations (or a tenth of the run, if smaller). */
const STEP_MAX = 10_000;
const DNS_QUERIES = 2000;
const API_REQUESTS = 200;
const REGISTER_ATTEMPTS = 5;
const JOINER_HOST = "127.0.0.4";
const DOMAIN = "berth";
const EDGE = "bench.test";

type Loop = LoopReading;

const svc = (i: number) => `svc-${String(i).padStart(4, "0")}`;

function showLoop(l: Loop): string {
  return `worst ${l.worstPauseMs.toFixed(1)} ms (>10 ms: ${l.pausesOver10Ms}, >50 ms: ` +
    `${l.pausesOver50Ms}, over ${(l.sinceMs / 1000).toFixed(1)} s)`;
}

/** The body registering instance `k` of service `s` (svc-0000's reach the backend). */
function registration(s: number, k: number, backendPort: number): unknown {
  const probe = s === 0;
  return {
    Name: svc(s),
    ID: `${svc(s)}-${k}`,
    Address: probe
      ? `127.0.1.${(k % 250) + 1}`
      : `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`,
    Port: probe ? backendPort : 8080,
    Tags: ["bench"],
    Meta: { "berth.http.host": `${svc(s)}.${EDGE}` },
  };
}

async function register(a: AgentProc, body: unknown): Promise<void> {
  for (let attempt = 1;; attempt++) {
    const r = await fetch(`${a.httpUrl}/v1/agent/service/register`, {
      method: "PUT",
      body: JSON.stringify(body),
    }).catch((e) => e as Error);
    if (!(r instanceof Error) && r.ok) {
      await r.body?.cancel();
      return;
    }
    const why = r instanceof Error ? r.message : `${r.status} ${await r.text()}`;
    if (attempt >= REGISTER_ATTEMPTS) throw new Error(`register ${JSON.stringify(body)}: ${why}`);
    await new Promise((res) => setTimeout(res, 100 * attempt));
  }
}

/** Waits until every member applied what the leader had committed when called. */
async function settled(agents: AgentProc[], leader: AgentProc): Promise<void> {
  const target = (await berthStatus(leader)).commitIndex;
  await waitFor("every member applied the load", async () => {
    for (const a of agents) if ((await berthStatus(a)).appliedIndex < target) return false;
    return true;
  }, { timeoutMs: 600_000, intervalMs: 250 });
}

interface Reads {
  dns: Tail;
  dnsAnswers: number;
  routed: WrkResult;
  unrouted: WrkResult;
  api: [string, Tail][];
}

/** DNS, proxy and API latency on `a` (nothing else runs meanwhile). */
async function reads(a: AgentProc): Promise<Reads> {
  const name = `${svc(0)}.service.${DOMAIN}`;
  const dns = await dnsLatencies(a.host, a.dnsPort, name, { n: DNS_QUERIES });
  const proxy = `http://${a.host}:${a.proxyPort}/`;
  const w = { connections: 4, seconds: SECONDS };
  const routed = await wrk(proxy, `${svc(0)}.${EDGE}`, w);
  const unrouted = await wrk(proxy, `nothing-here.${EDGE}`, w);
  const api: [string, Tail][] = [];
  for (
    const path of [
      "/v1/catalog/services",
      `/v1/catalog/service/${svc(0)}`,
      `/v1/health/service/${svc(0)}?passing`,
    ]
  ) {
    api.push([path, tail(await httpLatencies(`${a.httpUrl}${path}`, API_REQUESTS))]);
  }
  return { dns: tail(dns.ms), dnsAnswers: dns.answers, routed, unrouted, api };
}

function showWrk(w: WrkResult): string {
  return `p50 ${w.p50.toFixed(2)} ms, p99 ${w.p99.toFixed(2)} ms, ${w.rps.toFixed(0)} req/s` +
    (w.non2xx > 0 ? ` (${w.non2xx} non-2xx)` : "");
}

function printReads(at: number, r: Reads): void {
  const n = at.toLocaleString("en-US");
  console.log(
    `scale  at ${n}: DNS ${svc(0)}.service.${DOMAIN} A (${r.dnsAnswers} records) ` +
      `${showTail(r.dns)} (${r.dns.n} queries, one at a time)`,
  );
  console.log(`scale  at ${n}: proxy → ${svc(0)}.${EDGE} ${showWrk(r.routed)}`);
  console.log(`scale  at ${n}: proxy, unknown host (route lookup, 404) ${showWrk(r.unrouted)}`);
  for (const [path, t] of r.api) {
    console.log(`scale  at ${n}: GET ${path} ${showTail(t)} (${t.n} requests, one at a time)`);
  }
}

interface Step {
  from: number;
  to: number;
  ms: number;
  leader: Loop;
  follower: Loop;
}

/**
 * Registers instances `from`..`to`-1 (services 1..services-1 in turn) with SCALE_CLIENTS
 * clients, the i-th to member i mod 3; stops early at `deadline`. Returns the steps.
 */
async function load(
  agents: AgentProc[],
  roles: { leader: AgentProc; follower: AgentProc },
  o: {
    from: number;
    to: number;
    services: number;
    step: number;
    deadline: number;
    backendPort: number;
  },
): Promise<Step[]> {
  const steps: Step[] = [];
  let next = o.from;
  let done = o.from;
  let stepFrom = o.from;
  let stepAt = performance.now();
  let stepClosing: Promise<void> = Promise.resolve();
  await Promise.all([loopOf(roles.leader), loopOf(roles.follower)]);
  const closeStep = (to: number) => {
    const ms = performance.now() - stepAt;
    const from = stepFrom;
    stepFrom = to;
    stepAt = performance.now();
    stepClosing = stepClosing.then(async () => {
      const [leader, follower] = await Promise.all([loopOf(roles.leader), loopOf(roles.follower)]);
      steps.push({ from, to, ms, leader, follower });
      const rate = (to - from) / (ms / 1000);
      console.log(
        `scale  ${from.toLocaleString("en-US")} → ${to.toLocaleString("en-US")}: ` +
          `${rate.toFixed(0)} registrations/s; loop: leader ${showLoop(leader)}, follower ` +
          `${showLoop(follower)}`,
      );
    });
  };
  await Promise.all(Array.from({ length: SCALE_CLIENTS }, async () => {
    while (next < o.to && performance.now() < o.deadline) {
      const k = next++;
      const s = o.services > 1 ? 1 + ((k - o.from) % (o.services - 1)) : 0;
      await register(agents[k % agents.length]!, registration(s, k, o.backendPort));
      done++;
      if (done % o.step === 0 || done === o.to) closeStep(done);
    }
  }));
  if (done !== stepFrom) closeStep(done);
  await stepClosing;
  return steps;
}

/** Spawns a member on JOINER_HOST and times its first DNS answer and its catch-up. */
async function join(agents: AgentProc[], leader: AgentProc, follower: AgentProc) {
  const host = JOINER_HOST;
  const ports = {
    http: await freePort(host),
    dns: await freePort(host),
    proxy: await freePort(host),
    https: await freePort(host),
    bind: await freePort(host),
  };
  await loopOf(follower);
  const target = (await berthStatus(leader)).commitIndex;
  const t0 = performance.now();
  const started = startAgent({
    node: "scale-joiner",
    host,
    ports,
    samePorts: true,
    bootstrap: false,
    join: [agents[0]!.clusterAddr],
    docker: false,
  });
  let failed: unknown;
  started.catch((e) => failed = e);
  const name = `${svc(0)}.service.${DOMAIN}`;
  const firstDnsMs = await waitFor("the joiner's first DNS answer", async () => {
    if (failed !== undefined) throw failed;
    const r = await dnsLatencies(host, ports.dns, name, { n: 1, timeoutMs: 200 }).catch(() => null);
    return r !== null && r.answers > 0 ? performance.now() - t0 : undefined;
  }, { timeoutMs: 600_000, intervalMs: 20 });
  const joiner = await started;
  const apiMs = performance.now() - t0;
  const startLoop = await loopOf(joiner); // its start (module loading, enrolling), then reset
  try {
    const caughtUpMs = await waitFor("the joiner caught up", async () => {
      const s = await berthStatus(joiner).catch(() => null);
      return s !== null && s.appliedIndex >= target ? performance.now() - t0 : undefined;
    }, { timeoutMs: 600_000, intervalMs: 20 });
    const [mine, theirs] = await Promise.all([loopOf(joiner, false), loopOf(follower)]);
    return {
      firstDnsMs,
      apiMs,
      caughtUpMs,
      startLoop,
      joinerLoop: mine,
      followerLoop: theirs,
      rss: rssMiB(joiner.pid),
    };
  } finally {
    await joiner.stop();
    Deno.removeSync(joiner.dataDir, { recursive: true });
  }
}

async function forcedGc(
  a: AgentProc,
): Promise<{ rss: number; file: number; heapUsed: number; ms: number }> {
  const r = await fetch(`${a.httpUrl}/v1/berth/gc`, { method: "POST" });
  if (!r.ok) throw new Error(`gc on ${a.node}: ${r.status} ${await r.text()}`);
  const g = await r.json() as { rssBytes: number; heapUsedBytes: number; tookMs: number };
  await new Promise((res) => setTimeout(res, 1000)); // freed pages returned to the OS
  return {
    rss: rssMiB(a.pid),
    file: procStatusMiB(a.pid, "RssFile"),
    heapUsed: g.heapUsedBytes / 2 ** 20,
    ms: g.tookMs,
  };
}

export async function benchScale(o: BenchOptions): Promise<void> {
  const total = o.scale.instances;
  const services = Math.max(1, Math.min(SERVICES_MAX, Math.round(total / PER_SERVICE)));
  const probeCount = Math.min(PER_SERVICE, total);
  const step = Math.max(1, Math.min(STEP_MAX, Math.floor(total / 10)));
  // Inherited by the agents the harness spawns.
  Deno.env.set("BERTH_LOOP_PROBE", "1");
  Deno.env.set("DENO_V8_FLAGS", "--expose-gc");
  const backend = createServer((_req, res) => res.end("hello from the backend\n"));
  const backendPort = await freePort();
  await new Promise<void>((r) => backend.listen(backendPort, "0.0.0.0", () => r()));
  let agents: AgentProc[] = [];
  try {
    agents = await startCluster(3);
    const status = await berthStatus(agents[0]!);
    const leader = agents.find((a) => a.node === status.leader)!;
    const follower = agents.find((a) => a !== leader)!;
    console.log(
      `scale  3 members (TLS), ${total.toLocaleString("en-US")} instances in ${
        services.toLocaleString("en-US")
      } ` +
        `services via /v1/agent/service/register round-robin over the members, ` +
        `${SCALE_CLIENTS} clients; reads on follower ${follower.node}`,
    );
    for (let k = 0; k < probeCount; k++) {
      await register(agents[k % agents.length]!, registration(0, k, backendPort));
    }
    await settled(agents, leader);
    await waitFor("the route to the probe service", async () => {
      const r = await proxyGet(follower.proxyPort, `${svc(0)}.${EDGE}`, "/", follower.host)
        .catch(() => null);
      return r?.status === 200;
    }, { timeoutMs: 30_000 });
    const before = await reads(follower);

    const started = performance.now();
    const steps = await load(agents, { leader, follower }, {
      from: probeCount,
      to: total,
      services,
      step,
      deadline: started + o.scale.maxMinutes * 60_000,
      backendPort,
    });
    const reached = steps.at(-1)?.to ?? probeCount;
    const loadMs = performance.now() - started;
    await settled(agents, leader);
    const settleMs = performance.now() - started - loadMs;
    if (reached < total) {
      console.log(
        `scale  stopped at ${
          reached.toLocaleString("en-US")
        } after --max-minutes ${o.scale.maxMinutes}`,
      );
    }
    const first = steps[0];
    const last = steps.at(-1);
    if (first !== undefined && last !== undefined) {
      const rate = (s: Step) => (s.to - s.from) / (s.ms / 1000);
      console.log(
        `scale  registration: first step ${rate(first).toFixed(0)}/s, last ${
          rate(last).toFixed(0)
        }/s, last/first ${(rate(last) / rate(first)).toFixed(2)} (goal ≥ 0.80); all ` +
          `${(reached - probeCount).toLocaleString("en-US")} in ${(loadMs / 1000).toFixed(0)} s, ` +
          `members applied all ${(settleMs / 1000).toFixed(1)} s later`,
      );
      const worst = (pick: (s: Step) => Loop) =>
        Math.max(...steps.map((s) => pick(s).worstPauseMs)).toFixed(1);
      console.log(
        `scale  worst event-loop pause during the load: leader ${worst((s) => s.leader)} ms, ` +
          `follower ${worst((s) => s.follower)} ms`,
      );
    }
    for (const a of agents) {
      const role = a === leader ? "leader" : "follower";
      const loaded = rssMiB(a.pid);
      const g = await forcedGc(a);
      console.log(
        `scale  RSS ${a.node} (${role}) at ${reached.toLocaleString("en-US")}: ` +
          `${loaded.toFixed(0)} MiB after the load, ${g.rss.toFixed(0)} MiB after a forced GC ` +
          `(${g.ms.toFixed(0)} ms; V8 heap used ${g.heapUsed.toFixed(0)} MiB; of the RSS ` +
          `${g.file.toFixed(0)} MiB are the deno executable's pages) (goal ≤ 300)`,
      );
    }
    const after = await reads(follower);
    printReads(probeCount, before);
    printReads(reached, after);
    const j = await join(agents, leader, follower);
    console.log(
      `scale  join at ${reached.toLocaleString("en-US")}: spawn → first DNS answer ` +
        `${(j.firstDnsMs / 1000).toFixed(1)} s, → its API answering ${
          (j.apiMs / 1000).toFixed(1)
        } s, → caught up ${(j.caughtUpMs / 1000).toFixed(1)} s; joiner RSS ${j.rss.toFixed(0)} MiB`,
    );
    console.log(
      `scale  join loop: joiner until its API answered ${showLoop(j.startLoop)}, then until ` +
        `caught up ${showLoop(j.joinerLoop)}; follower meanwhile ${showLoop(j.followerLoop)}`,
    );
  } finally {
    await stopAll(agents);
    for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
    await new Promise<void>((r) => backend.close(() => r()));
    Deno.env.delete("BERTH_LOOP_PROBE");
    Deno.env.delete("DENO_V8_FLAGS");
  }
}
