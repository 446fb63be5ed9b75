/**
 * `deno task bench bulk`: the bulk paths, each with the worst pause of the agent's 1 ms timer
 * (the loop probe, BERTH_LOOP_PROBE=1, read through `GET /v1/berth/loop`) and DNS queries run
 * one at a time against the member meanwhile (their p99 and the slowest one):
 *
 * - reconcile: one agent with the Docker watcher on a real engine; BULK_CONTAINERS (default 500)
 *   busybox httpd containers (`-p 127.0.0.1::80`, BULK_DOCKER_CLIENTS `docker run`s at a time)
 *   started while it runs: time from the first `docker run` to all of them registered; then a
 *   fresh agent started on that host: time from its API answering to all registered (its first
 *   reconcile). The containers are removed at the end.
 * - join: a 3-member cluster loaded with `--instances` (default 100,000) instances on 100 nodes
 *   in 1,000 services through `/v1/catalog/register` (BULK_CLIENTS requests at once, round-robin
 *   over the members; `--max-minutes` bounds the load), then a new member joins: time from its
 *   spawn to its first DNS answer for a service and to its log caught up; worst pause on the
 *   joiner (from its API answering), a follower and the leader.
 * - install: a follower is stopped, KV writes go on until the leader's snapshot is past the
 *   follower's log by more than the entries a snapshot keeps, and the follower restarts: it
 *   installs a snapshot of the whole catalog; time from its API answering to caught up, worst
 *   pause on it and on the leader.
 *
 * Everything is bounded (each wait has a timeout) and stops by itself; the agents and containers
 * are removed at the end. Run it under the e2e lock (it uses Docker and spawns agents):
 * `flock /tmp/berth-e2e.lock deno task bench bulk`.
 *
 * @module
 */
import {
  type AgentProc,
  apiJson,
  docker,
  freePort,
  portsOf,
  requireDocker,
  startAgent,
  startCluster,
  stopAll,
  TEST_IMAGE,
} from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import type { BenchOptions } from "./_shared.ts";
import { dnsLatencies, loopOf, type Tail, tail } from "./_measure.ts";
import { berthStatus } from "./failover.ts";

const CONTAINERS = Number(Deno.env.get("BULK_CONTAINERS") ?? "500");
const DOCKER_CLIENTS = Number(Deno.env.get("BULK_DOCKER_CLIENTS") ?? "8");
/** Registrations in flight at once while loading the catalog. */
const CLIENTS = Number(Deno.env.get("BULK_CLIENTS") ?? "64");
const NODES = 100;
const SERVICES_MAX = 1000;
/** Container services: CONTAINER_SERVICES names, the containers spread over them. */
const CONTAINER_SERVICES = 50;
const LABEL = "berth-bench=bulk";
const JOINER_HOST = "127.0.0.4";
const DOMAIN = "berth";
/** Longest any one phase may take before the bench gives up on it. */
const PHASE_TIMEOUT_MS = 15 * 60_000;
/** Entries a snapshot keeps behind it (cluster SNAPSHOT_KEEP_ENTRIES_DEFAULT) and a margin. */
const KEEP_ENTRIES = 2048 + 512;
/** Most KV writes the install phase makes to get the follower's log compacted away. */
const COMPACT_WRITES_MAX = 200_000;

/** DNS queries for `name` to `a`, one at a time, until `stop()` is called: their latencies. */
function dnsWhile(
  a: AgentProc,
  name: string,
): () => Promise<{ t: Tail; worst: number; lost: number }> {
  let running = true;
  const ms: number[] = [];
  let lost = 0;
  const done = (async () => {
    while (running) {
      try {
        ms.push(...(await dnsLatencies(a.host, a.dnsPort, name, { n: 20, timeoutMs: 5000 })).ms);
      } catch {
        lost++;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  })();
  return async () => {
    running = false;
    await done;
    // A loop, not Math.max(...ms): minutes of queries are more arguments than a call takes.
    const worst = ms.reduce((m, x) => Math.max(m, x), ms.length === 0 ? NaN : 0);
    return { t: tail(ms), worst, lost };
  };
}

interface Row {
  phase: string;
  took: string;
  pauses: string;
  dns: string;
}

const rows: Row[] = [];

function showDns(d: { t: Tail; worst: number; lost: number }): string {
  return `p99 ${d.t.p99.toFixed(1)} ms, worst ${d.worst.toFixed(0)} ms (${d.t.n} q` +
    (d.lost > 0 ? `, ${d.lost} failed` : "") + ")";
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Runs `fn` over `items`, `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

async function removeBulkContainers(): Promise<void> {
  const ids = (await docker("ps", "-aq", "--filter", `label=${LABEL}`)).split("\n").filter((s) =>
    s !== ""
  );
  for (let i = 0; i < ids.length; i += 100) {
    await docker("rm", "-f", ...ids.slice(i, i + 100)).catch(() => {});
  }
}

/** Instances registered on `a`'s node (its catalog entry). */
async function registeredOn(a: AgentProc): Promise<number> {
  const n = await apiJson(a, `/v1/catalog/node/${a.node}?stale`) as
    | { Services: Record<string, unknown> }
    | null;
  return n === null ? 0 : Object.keys(n.Services).length;
}

/**
 * Registers service bulk-probe on `a` through the API (no container) and waits until its DNS
 * answers it: the name the DNS queries ask for meanwhile.
 */
async function probeService(a: AgentProc): Promise<string> {
  await put(
    a,
    "/v1/agent/service/register",
    JSON.stringify({ Name: "bulk-probe", ID: "bulk-probe", Address: "127.0.0.1", Port: 9 }),
  );
  const name = `bulk-probe.service.${DOMAIN}`;
  await waitFor("bulk-probe in DNS", async () => {
    return (await dnsLatencies(a.host, a.dnsPort, name, { n: 1 })).answers > 0;
  });
  return name;
}

async function benchReconcile(): Promise<void> {
  await requireDocker();
  await removeBulkContainers();
  let agent: AgentProc | undefined;
  try {
    agent = await startAgent({ docker: true });
    const a = agent;
    const probe = await probeService(a);
    const base = await registeredOn(a);
    await loopOf(a);
    const dns = dnsWhile(a, probe);
    const t0 = performance.now();
    let startedMs = NaN;
    const starting = pool([...Array(CONTAINERS).keys()], DOCKER_CLIENTS, async (i) => {
      await docker(
        "run",
        "-d",
        "--name",
        `berth-bulk-${i}`,
        "-l",
        "berth-e2e=1",
        "-l",
        LABEL,
        "-p",
        "127.0.0.1::80",
        "-e",
        `SERVICE_NAME=bulk-${i % CONTAINER_SERVICES}`,
        TEST_IMAGE,
        "httpd",
        "-f",
        "-p",
        "80",
      );
    }).then(() => startedMs = performance.now() - t0);
    let failed: unknown;
    starting.catch((e) => failed = e);
    const allMs = await waitFor(`${CONTAINERS} containers registered`, async () => {
      if (failed !== undefined) throw failed;
      return (await registeredOn(a)) - base >= CONTAINERS ? performance.now() - t0 : undefined;
    }, { timeoutMs: PHASE_TIMEOUT_MS, intervalMs: 100 });
    await starting;
    const d = await dns();
    const loop = await loopOf(a);
    rows.push({
      phase: `reconcile: ${CONTAINERS} containers started (${DOCKER_CLIENTS} at a time)`,
      took: `${secs(allMs)} to all registered (docker runs took ${secs(startedMs)})`,
      pauses: `agent ${loop.worstPauseMs.toFixed(0)} ms`,
      dns: showDns(d),
    });
    printLast();

    // A fresh agent on the same host: its first reconcile registers every container at once.
    await a.stop();
    Deno.removeSync(a.dataDir, { recursive: true });
    agent = undefined;
    const t1 = performance.now();
    agent = await startAgent({ docker: true });
    const b = agent;
    const t2 = performance.now();
    const upMs = t2 - t1;
    const startLoop = await loopOf(b);
    const dnsB = dnsWhile(b, await probeService(b));
    const regMs = await waitFor(
      `${CONTAINERS} containers registered by a fresh agent`,
      async () => {
        return (await registeredOn(b)) >= CONTAINERS + 1 ? performance.now() - t2 : undefined;
      },
      { timeoutMs: PHASE_TIMEOUT_MS, intervalMs: 100 },
    );
    const d2 = await dnsB();
    const loop2 = await loopOf(b);
    rows.push({
      phase: `reconcile: agent started on a host running ${CONTAINERS}`,
      took: `${secs(regMs)} from its API up to all registered (spawn → API ${secs(upMs)})`,
      pauses: `agent ${loop2.worstPauseMs.toFixed(0)} ms (before its API answered: ` +
        `${startLoop.worstPauseMs.toFixed(0)} ms)`,
      dns: showDns(d2),
    });
    printLast();
  } finally {
    await agent?.stop();
    if (agent !== undefined) Deno.removeSync(agent.dataDir, { recursive: true });
    await removeBulkContainers();
  }
}

const svc = (i: number) => `bulk-svc-${String(i).padStart(4, "0")}`;

async function put(a: AgentProc, path: string, body: string): Promise<void> {
  for (let attempt = 1;; attempt++) {
    const r = await fetch(`${a.httpUrl}${path}`, {
      method: "PUT",
      body,
      signal: AbortSignal.timeout(30_000),
    }).catch((e) => e as Error);
    if (!(r instanceof Error) && r.ok) {
      await r.body?.cancel();
      return;
    }
    const why = r instanceof Error ? r.message : `${r.status} ${await r.text()}`;
    if (attempt >= 5) throw new Error(`PUT ${path}: ${why}`);
    await new Promise((res) => setTimeout(res, 100 * attempt));
  }
}

/** Loads `total` instances through /v1/catalog/register; how many went in, and how fast. */
async function loadCatalog(agents: AgentProc[], total: number, deadline: number) {
  const services = Math.max(1, Math.min(SERVICES_MAX, Math.round(total / 100)));
  for (let n = 0; n < NODES; n++) {
    await put(
      agents[n % agents.length]!,
      "/v1/catalog/register",
      JSON.stringify({ Node: `bulk-host-${n}`, Address: `10.1.${n >> 8}.${n & 255}` }),
    );
  }
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < total && performance.now() < deadline) {
      const k = next++;
      const node = k % NODES;
      await put(
        agents[k % agents.length]!,
        "/v1/catalog/register",
        JSON.stringify({
          Node: `bulk-host-${node}`,
          Address: `10.1.${node >> 8}.${node & 255}`,
          SkipNodeUpdate: true,
          Service: {
            ID: `i-${k}`,
            Service: svc(k % services),
            Address: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`,
            Port: 8080,
            Tags: ["bulk"],
          },
        }),
      );
      done++;
      if (done % 10_000 === 0) {
        const s = (performance.now() - t0) / 1000;
        console.log(`bulk   loaded ${done.toLocaleString("en-US")} (${(done / s).toFixed(0)}/s)`);
      }
    }
  }));
  return { done, ms: performance.now() - t0 };
}

/** Waits until every member applied what the leader had committed when called. */
async function settled(agents: AgentProc[], leader: AgentProc): Promise<void> {
  const target = (await berthStatus(leader)).commitIndex;
  await waitFor("every member applied the load", async () => {
    for (const a of agents) if ((await berthStatus(a)).appliedIndex < target) return false;
    return true;
  }, { timeoutMs: PHASE_TIMEOUT_MS, intervalMs: 250 });
}

async function joinPhase(agents: AgentProc[], leader: AgentProc, follower: AgentProc, n: number) {
  const host = JOINER_HOST;
  const ports = {
    http: await freePort(host),
    dns: await freePort(host),
    proxy: await freePort(host),
    https: await freePort(host),
    bind: await freePort(host),
  };
  const name = `${svc(0)}.service.${DOMAIN}`;
  await Promise.all([loopOf(leader), loopOf(follower)]);
  const dns = dnsWhile(follower, name);
  const target = (await berthStatus(leader)).commitIndex;
  const t0 = performance.now();
  const node = "bulk-joiner";
  let joiner: AgentProc | undefined;
  try {
    joiner = await startAgent({
      node,
      host,
      ports,
      samePorts: true,
      bootstrap: false,
      join: [agents[0]!.clusterAddr],
      docker: false,
    });
    const j = joiner;
    const upMs = performance.now() - t0;
    const before = await loopOf(j);
    const firstDnsMs = await waitFor("the joiner's first DNS answer", async () => {
      const r = await dnsLatencies(host, ports.dns, name, { n: 1, timeoutMs: 500 })
        .catch(() => null);
      return r !== null && r.answers > 0 ? performance.now() - t0 : undefined;
    }, { timeoutMs: PHASE_TIMEOUT_MS, intervalMs: 20 });
    const caughtUpMs = await waitFor("the joiner caught up", async () => {
      const s = await berthStatus(j).catch(() => null);
      return s !== null && s.appliedIndex >= target ? performance.now() - t0 : undefined;
    }, { timeoutMs: PHASE_TIMEOUT_MS, intervalMs: 20 });
    const d = await dns();
    const [mine, theirs, lead] = await Promise.all([loopOf(j), loopOf(follower), loopOf(leader)]);
    const installed = /installed snapshot at index/.test(j.log())
      ? "by a snapshot"
      : "from the log";
    rows.push({
      phase: `join at ${n.toLocaleString("en-US")} instances (${installed})`,
      took: `spawn → API ${secs(upMs)}, → first DNS answer ${secs(firstDnsMs)}, → caught up ` +
        secs(caughtUpMs),
      pauses: `joiner ${mine.worstPauseMs.toFixed(0)} ms (before its API answered ` +
        `${before.worstPauseMs.toFixed(0)}), follower ${theirs.worstPauseMs.toFixed(0)} ms, ` +
        `leader ${lead.worstPauseMs.toFixed(0)} ms`,
      dns: `follower ${showDns(d)}`,
    });
    printLast();
  } finally {
    await joiner?.stop();
    const r = await fetch(`${leader.httpUrl}/v1/berth/raft/peers/${node}`, { method: "DELETE" })
      .catch(() => null);
    await r?.body?.cancel();
    if (joiner !== undefined) Deno.removeSync(joiner.dataDir, { recursive: true });
  }
}

/** The highest index of a snapshot file in `a`'s data dir (0: none). */
function snapshotIndexOf(a: AgentProc): number {
  let best = 0;
  for (const e of Deno.readDirSync(`${a.dataDir}/snapshots`)) {
    const m = /^(\d+)-\d+\.snap$/.exec(e.name);
    if (m !== null) best = Math.max(best, Number(m[1]));
  }
  return best;
}

async function installPhase(agents: AgentProc[], leader: AgentProc, n: number) {
  const i = agents.findIndex((a) => a !== leader);
  const down = agents[i]!;
  const behind = (await berthStatus(down)).appliedIndex;
  const ports = portsOf(down);
  await down.stop();
  // KV writes until the leader's snapshot leaves the stopped member's log behind its window.
  let writes = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    while (snapshotIndexOf(leader) < behind + KEEP_ENTRIES && writes < COMPACT_WRITES_MAX) {
      if (performance.now() - t0 > PHASE_TIMEOUT_MS) throw new Error("no snapshot past the log");
      await put(leader, `/v1/kv/bulk/c${c}/${writes++}`, "x".repeat(64));
    }
  }));
  const snapAt = snapshotIndexOf(leader);
  const target = (await berthStatus(leader)).commitIndex;
  await loopOf(leader);
  const t1 = performance.now();
  const back = await startAgent({
    node: down.node,
    dataDir: down.dataDir,
    host: down.host,
    ports,
    samePorts: true,
    bootstrap: false,
    docker: false,
  });
  agents[i] = back;
  const upMs = performance.now() - t1;
  const before = await loopOf(back);
  const dns = dnsWhile(back, `${svc(0)}.service.${DOMAIN}`);
  const t2 = performance.now();
  const caughtUpMs = await waitFor("the restarted member caught up", async () => {
    const s = await berthStatus(back).catch(() => null);
    return s !== null && s.appliedIndex >= target ? performance.now() - t2 : undefined;
  }, { timeoutMs: PHASE_TIMEOUT_MS, intervalMs: 20 });
  const d = await dns();
  const [mine, lead] = await Promise.all([loopOf(back), loopOf(leader)]);
  const installed = /installed snapshot at index/.test(back.log());
  rows.push({
    phase: `install: a member ${(target - behind).toLocaleString("en-US")} entries behind, ` +
      `${n.toLocaleString("en-US")} instances (${
        installed ? `snapshot at ${snapAt}` : "NO snapshot: caught up from the log"
      }; ${writes} KV writes to compact)`,
    took: `spawn → API ${secs(upMs)}, API → caught up ${secs(caughtUpMs)}`,
    pauses: `restarted member ${mine.worstPauseMs.toFixed(0)} ms (before its API answered ` +
      `${before.worstPauseMs.toFixed(0)}), leader ${lead.worstPauseMs.toFixed(0)} ms`,
    dns: `restarted member ${showDns(d)}`,
  });
  printLast();
}

async function benchCluster(o: BenchOptions): Promise<void> {
  let agents: AgentProc[] = [];
  try {
    agents = await startCluster(3);
    const status = await berthStatus(agents[0]!);
    const leader = agents.find((a) => a.node === status.leader)!;
    const follower = agents.find((a) => a !== leader)!;
    const deadline = performance.now() + o.scale.maxMinutes * 60_000;
    const loaded = await loadCatalog(agents, o.scale.instances, deadline);
    await settled(agents, leader);
    console.log(
      `bulk   ${loaded.done.toLocaleString("en-US")} instances through /v1/catalog/register in ` +
        `${secs(loaded.ms)} (${(loaded.done / (loaded.ms / 1000)).toFixed(0)}/s, ${CLIENTS} ` +
        `clients)`,
    );
    await joinPhase(agents, leader, follower, loaded.done);
    await installPhase(agents, leader, loaded.done);
  } finally {
    await stopAll(agents);
    for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
  }
}

function printLast(): void {
  const r = rows.at(-1)!;
  console.log(`bulk   ${r.phase}: ${r.took}; worst pause ${r.pauses}; DNS ${r.dns}`);
}

export async function benchBulk(o: BenchOptions): Promise<void> {
  // Inherited by the agents the harness spawns.
  Deno.env.set("BERTH_LOOP_PROBE", "1");
  try {
    await benchReconcile();
    await benchCluster(o);
  } finally {
    Deno.env.delete("BERTH_LOOP_PROBE");
    console.log("\nbulk   phase | time | worst 1 ms timer pause | DNS one at a time meanwhile");
    for (const r of rows) console.log(`bulk   ${r.phase} | ${r.took} | ${r.pauses} | ${r.dns}`);
  }
}
