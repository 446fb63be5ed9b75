/**
 * Where a KV write's time goes on the leader, for work on the write path: a 3-member plain
 * cluster (`--dev --tls off`) on 127.0.0.1-3 whose first member (the bootstrapper, leader) runs
 * under `--cpu-prof`; wrk (-t 1) sends `PUT /v1/kv/<key>` (256 bytes, 1000 keys) to it at each
 * connection count; then the leader stops, and its profile is summed up by function (self time)
 * and by file (self time). Each level runs on a fresh cluster, so each profile holds one level.
 *
 * Usage: deno run -A scripts/kv_profile.ts [--connections 1,16] [--seconds S] [--top N]
 *                                          [--tls on|off] [--no-prof]
 * `--no-prof`: no profiler (its cost), only the figures and the CPU time per write of each
 * member (from /proc/PID/stat).
 * Run it under `flock /tmp/berth-e2e.lock` (it starts berth processes).
 *
 * @module
 */
import { errorText } from "../src/lib/error_text.ts";
import { parseFlags } from "../src/lib/flags.ts";
import { leaderOf, startCluster, stopAll } from "../test/harness.ts";
import { waitForVoters } from "../test/jepsen.ts";
import { writeWrkScript, wrk } from "./bench/_wrk.ts";

const ROOT = new URL("../", import.meta.url).href;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time (ms) by function and by file of a V8 .cpuprofile, largest first. */
export function summarizeProfile(p: CpuProfile): {
  totalMs: number;
  byFunction: [string, number][];
  byFile: [string, number][];
  inclusive: [string, number][];
} {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let totalUs = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    totalUs += dt;
    self.set(id, (self.get(id) ?? 0) + dt);
  });
  const label = (id: number) => {
    const f = byId.get(id)!.callFrame;
    const url = f.url.startsWith(ROOT) ? f.url.slice(ROOT.length) : shortUrl(f.url);
    return { url, name: `${f.functionName || "(anonymous)"} ${url}:${f.lineNumber + 1}` };
  };
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  const incl = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);
  for (const [id, us] of self) {
    const { url, name } = label(id);
    // A native's self time is named with its JS caller (exec ← persist).
    const up = parent.get(id);
    const caller = url === "" && up !== undefined ? ` ← ${label(up).name}` : "";
    add(fn, name + caller, us / 1000);
    add(file, url || "(native)", us / 1000);
    // Inclusive time of this repository's functions (each once per stack).
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const l = label(at);
      if (/^(src|raft)\//.test(l.url) && !seen.has(l.name)) {
        seen.add(l.name);
        add(incl, l.name, us / 1000);
      }
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    totalMs: totalUs / 1000,
    byFunction: sorted(fn),
    byFile: sorted(file),
    inclusive: sorted(incl),
  };
}

/** An npm or remote module's URL without its cache prefix (…/hono/4.x/dist/x.js). */
function shortUrl(url: string): string {
  const npm = /\/npm\/registry\.npmjs\.org\/(.*)$/.exec(url);
  return npm?.[1] ?? url;
}

/** CPU time (user + system) a process used so far, ms (/proc/PID/stat, 100 ticks/s). */
function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function profileLevel(
  connections: number,
  o: { seconds: number; top: number; tls: boolean; prof: boolean },
): Promise<void> {
  const profDir = Deno.makeTempDirSync({ prefix: "berth-kv-prof-" });
  const args = ["--proxy-http", "off", ...(o.tls ? [] : ["--dev", "--tls", "off"])];
  const agents = await startCluster(3, {
    args,
    runtimeArgs: (i) => i === 0 && o.prof ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [],
  });
  try {
    await waitForVoters(agents);
    const leader = await leaderOf(agents[0]!);
    if (leader !== agents[0]!.node) {
      throw new Error(`the leader is ${leader}, not the first member`);
    }
    const script = writeWrkScript(profDir, "put", {
      method: "PUT",
      paths: Array.from({ length: 1000 }, (_, i) => `/v1/kv/prof/k${i}`),
      bodies: "v".repeat(256),
    });
    const before = agents.map((a) => cpuMs(a.pid));
    const r = await wrk(agents[0]!.httpUrl, { script, connections, seconds: o.seconds });
    const used = agents.map((a, i) => (cpuMs(a.pid) - before[i]!) / r.requests);
    console.log(
      `kv profile  ${connections} conns: ${(r.requests / r.seconds).toFixed(0)} w/s, ` +
        `p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, errors ${r.errors}; ` +
        `CPU ms per write: leader ${used[0]!.toFixed(3)}, followers ` +
        used.slice(1).map((x) => x.toFixed(3)).join(", "),
    );
  } finally {
    await stopAll(agents);
    for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
  }
  if (!o.prof) return;
  const file = [...Deno.readDirSync(profDir)].find((e) => e.name.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error(`no .cpuprofile in ${profDir}`);
  const path = `${profDir}/${file.name}`;
  const s = summarizeProfile(JSON.parse(Deno.readTextFileSync(path)) as CpuProfile);
  const pct = (ms: number) => `${(100 * ms / s.totalMs).toFixed(1).padStart(5)}%`;
  console.log(`  profile ${path} (${(s.totalMs / 1000).toFixed(1)} s sampled)`);
  console.log("  self time by file:");
  for (const [f, ms] of s.byFile.slice(0, o.top)) console.log(`    ${pct(ms)}  ${f}`);
  console.log("  self time by function:");
  for (const [f, ms] of s.byFunction.slice(0, o.top)) console.log(`    ${pct(ms)}  ${f}`);
  console.log("  inclusive time of src/ and raft/ functions:");
  for (const [f, ms] of s.inclusive.slice(0, o.top)) console.log(`    ${pct(ms)}  ${f}`);
}

if (import.meta.main) {
  try {
    const flags = parseFlags(Deno.args, [
      { name: "connections", kind: "LIST" },
      { name: "seconds", kind: "S" },
      { name: "top", kind: "N" },
      { name: "tls", kind: "on|off" },
      { name: "no-prof", kind: "bool" },
    ]);
    const connections = (flags.values.get("connections") ?? "1,16").split(",").map(Number);
    const seconds = Number(flags.values.get("seconds") ?? "10");
    const top = Number(flags.values.get("top") ?? "30");
    const tls = (flags.values.get("tls") ?? "off") === "on";
    const prof = !flags.values.has("no-prof");
    for (const c of connections) await profileLevel(c, { seconds, top, tls, prof });
  } catch (e) {
    console.error(`kv_profile: ${errorText(e)}`);
    Deno.exit(1);
  }
}
