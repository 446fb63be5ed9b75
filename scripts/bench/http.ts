/**
 * `deno task bench http`: berth's HTTP proxy beside nginx and HAProxy, in one run, each side with
 * a static nginx backend of its own (no side shares a backend, so none is slowed by another's
 * leftovers), the same wrk settings for all (`wrk -t1 -c32 --latency`; env BENCH_HTTP_THREADS,
 * BENCH_HTTP_CONNECTIONS), scripts/bench/_compare.ts alternating the sides of each group:
 *
 * - defaults: berth at its defaults (`--proxy-workers` = cores) vs nginx `worker_processes auto`
 *   and HAProxy `nbthread` = cores;
 * - one worker: berth `--proxy-workers 1` vs nginx 1 worker and HAProxy 1 thread (per core);
 * - pinned (`taskset`): berth at 1 and at 2 workers on the same cores as nginx at 1 and 2
 *   workers (-c 0, then -c 0,1), so the scaling curve shows even on 2 cores. Only the proxies
 *   are pinned: wrk and the backends float (on 2 cores they share the proxy's cores anyway).
 *
 * Each side's figure reports wrk's own CPU (a core each thread: near 100% means wrk was the
 * limit) and the side's processes' CPU (berth: the whole agent; not its backend). A build without
 * `--proxy-workers` runs its one thread where berth's defaults and 1 worker are asked for and
 * skips the 2-worker side, saying so.
 *
 * @module
 */
import { freePort, proxyGet, startAgent } from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { agentHasFlag, register, SECONDS } from "./_shared.ts";
import { BACKEND_BODY, nginxBackendConfig } from "./_tls_anchors.ts";
import { haproxyHttpConfig, nginxProxyConfig } from "./_http_anchors.ts";
import { parseWrk, wrkDurationMs } from "./_tls_load.ts";
import { pin, type Proc, runClient, startProc, stopOnExit, withChildren } from "./_proc.ts";
import {
  details,
  measureGroup,
  type Outcome,
  rateRatio,
  type Row,
  type RunFigures,
  type Running,
  type SideSpec,
  table,
} from "./_compare.ts";

const HOST = "127.0.0.1";
const NAME = "bench.test";
const CORES = navigator.hardwareConcurrency;

/** A count from env `name` (1..10000), `dflt` when unset. */
export function envCount(name: string, dflt: number): number {
  const v = Deno.env.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) {
    throw new Error(`${name}=${v.slice(0, 20)}: expected a whole number 1..10000`);
  }
  return n;
}

/** wrk's requests/s, p50, p99 and errors (socket errors and non-2xx) of a `--latency` report. */
export function wrkFigures(out: string): Omit<RunFigures, "clientCpuMs" | "wallMs"> {
  const r = parseWrk(out);
  const p50 = /^\s*50%\s+(\S+)\s*$/m.exec(out);
  if (p50 === null) throw new Error(`wrk output has no 50% line:\n${out}`);
  return { rate: r.rps, p50Ms: wrkDurationMs(p50[1]!), p99Ms: r.p99Ms, errors: r.errors };
}

/** A static nginx backend (one worker) for one side; unpinned. */
async function startBackend(dir: string): Promise<{ port: number; proc: Proc }> {
  const port = await freePort(HOST);
  const conf = `${dir}/backend-${port}.conf`;
  await Deno.writeTextFile(conf, nginxBackendConfig({ dir, host: HOST, port }));
  return { port, proc: startProc("nginx", ["-c", conf, "-g", "daemon off;"]) };
}

/** Waits until `port` answers a GET for NAME with the backend's body. */
async function answering(port: number, what: string): Promise<void> {
  await waitFor(`${what} to answer through its backend`, async () => {
    const r = await proxyGet(port, NAME, "/", HOST).catch(() => null);
    return r?.status === 200 && r.body.trim() === BACKEND_BODY;
  }, { timeoutMs: 20_000, intervalMs: 100 });
}

/** A side made of a proxy process and its backend (nginx or HAProxy). */
function anchorSide(
  dir: string,
  o: { key: string; name: string; kind: "nginx" | "haproxy"; workers: number | "auto" },
  cpus?: string,
): SideSpec {
  return {
    key: o.key,
    name: cpus === undefined ? o.name : `${o.name} (taskset -c ${cpus})`,
    backend: true,
    start: async (): Promise<Running> => {
      const backend = await startBackend(dir);
      const port = await freePort(HOST);
      const c = { dir, host: HOST, port, backendPort: backend.port, workers: o.workers };
      const conf = `${dir}/${o.kind}-${port}.conf`;
      await Deno.writeTextFile(
        conf,
        o.kind === "nginx" ? nginxProxyConfig(c) : haproxyHttpConfig(c),
      );
      const proc = o.kind === "nginx"
        ? startProc("nginx", ["-c", conf, "-g", "daemon off;"], { cpus })
        : startProc("haproxy", ["-f", conf, "-db"], {
          cpus,
          logPath: `${dir}/haproxy-${port}.log`,
        });
      const stop = () => Promise.all([proc.stop(), backend.proc.stop()]).then(() => {});
      try {
        await answering(port, o.name);
      } catch (e) {
        await stop();
        throw e;
      }
      return {
        port,
        pids: () => withChildren(proc.pid),
        backendPids: () => withChildren(backend.proc.pid),
        stop,
      };
    },
  };
}

/**
 * berth (`--docker off`, one member) with `workers` proxy workers (undefined: its default), a
 * route to a backend of its own registered through the API; pinned to `cpus` when given.
 */
async function berthSide(
  dir: string,
  o: { key: string; workers?: number; cpus?: string },
): Promise<SideSpec> {
  const hasFlag = await agentHasFlag("--proxy-workers");
  const flag = o.workers === undefined ? [] : ["--proxy-workers", String(o.workers)];
  let name = o.workers === undefined
    ? `berth defaults (--proxy-workers ${CORES})`
    : `berth --proxy-workers ${o.workers}`;
  let skip: string | undefined;
  if (!hasFlag) {
    if (o.workers !== undefined && o.workers > 1) skip = "this build has no --proxy-workers";
    name = "berth (this build: one proxy thread, no --proxy-workers)";
  }
  if (o.cpus !== undefined) name += ` (taskset -c ${o.cpus})`;
  return {
    key: o.key,
    name,
    backend: true,
    skip,
    start: async (): Promise<Running> => {
      const backend = await startBackend(dir);
      const agent = await startAgent({ args: ["--docker", "off", ...(hasFlag ? flag : [])] })
        .catch(async (e) => {
          await backend.proc.stop();
          throw e;
        });
      const stop = stopOnExit(() =>
        Promise.all([agent.stop(), backend.proc.stop()]).then(() =>
          Deno.removeSync(agent.dataDir, { recursive: true })
        )
      );
      try {
        if (o.cpus !== undefined) await pin(agent.pid, o.cpus);
        await register(agent.httpUrl, {
          Name: "bench",
          ID: "bench-1",
          Address: HOST,
          Port: backend.port,
          Meta: { "berth.http.host": NAME },
        });
        await answering(agent.proxyPort, name);
      } catch (e) {
        await stop();
        throw e;
      }
      return {
        port: agent.proxyPort,
        pids: () => [agent.pid],
        backendPids: () => withChildren(backend.proc.pid),
        stop,
      };
    },
  };
}

export async function benchHttp(): Promise<void> {
  const threads = envCount("BENCH_HTTP_THREADS", 1);
  const connections = envCount("BENCH_HTTP_CONNECTIONS", 32);
  const wrkArgs = ["-t", String(threads), "-c", String(connections), "-d", `${SECONDS}s`];
  const client = `wrk -t${threads} -c${connections}`;
  const measure = async (_s: SideSpec, r: Running): Promise<RunFigures> => {
    const run = await runClient("wrk", [
      ...wrkArgs,
      ...["--latency", "--timeout", "5s", "-H", `Host: ${NAME}`, `http://${HOST}:${r.port}/`],
    ], { limitSeconds: SECONDS + 30 });
    return { ...wrkFigures(run.stdout), clientCpuMs: run.cpuMs, wallMs: run.wallMs };
  };
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-http-" });
  const all: SideSpec[] = [];
  const outcomes = new Map<string, Outcome>();
  const group = async (sides: SideSpec[]) => {
    all.push(...sides);
    for (const [k, v] of await measureGroup(sides, measure)) outcomes.set(k, v);
  };
  try {
    console.log(
      `http  ${client} --latency, ${SECONDS}s per run, each side twice (in turn, then in ` +
        `reverse); each side its own nginx backend (1 worker); ${CORES} cores`,
    );
    await group([
      await berthSide(dir, { key: "berth" }),
      anchorSide(dir, {
        key: "nginx",
        name: "nginx worker_processes auto",
        kind: "nginx",
        workers: "auto",
      }),
      anchorSide(dir, {
        key: "haproxy",
        name: `HAProxy nbthread ${CORES}`,
        kind: "haproxy",
        workers: CORES,
      }),
    ]);
    await group([
      await berthSide(dir, { key: "berth1", workers: 1 }),
      anchorSide(dir, { key: "nginx1", name: "nginx 1 worker", kind: "nginx", workers: 1 }),
      anchorSide(dir, { key: "haproxy1", name: "HAProxy nbthread 1", kind: "haproxy", workers: 1 }),
    ]);
    const one = { name: "nginx 1 worker", kind: "nginx" as const, workers: 1 };
    await group([
      await berthSide(dir, { key: "berth-c0", workers: 1, cpus: "0" }),
      anchorSide(dir, { key: "nginx-c0", ...one }, "0"),
    ]);
    if (CORES >= 2) {
      const two = { name: "nginx 2 workers", kind: "nginx" as const, workers: 2 };
      await group([
        await berthSide(dir, { key: "berth-c01", workers: 2, cpus: "0,1" }),
        anchorSide(dir, { key: "nginx-c01", ...two }, "0,1"),
      ]);
    }
    const rows: Row[] = [
      { label: "defaults", berth: "berth", anchor: "nginx", goal: { rate: 1, p99: 1.5 } },
      { label: "defaults", berth: "berth", anchor: "haproxy" },
      { label: "1 worker (per core)", berth: "berth1", anchor: "nginx1" },
      { label: "1 worker (per core)", berth: "berth1", anchor: "haproxy1" },
      { label: "taskset -c 0", berth: "berth-c0", anchor: "nginx-c0" },
      ...(CORES >= 2 ? [{ label: "taskset -c 0,1", berth: "berth-c01", anchor: "nginx-c01" }] : []),
    ];
    console.log(table(`HTTP proxy (${client})`, rows, all, outcomes, "req/s").join("\n"));
    console.log(details(all, outcomes, { unit: "req/s", client: "wrk" }).join("\n"));
    if (CORES >= 2) {
      const b = rateRatio(outcomes, "berth-c01", "berth-c0");
      const n = rateRatio(outcomes, "nginx-c01", "nginx-c0");
      console.log(
        `http  scaling, 1 → 2 pinned cores: berth ×${b.toFixed(2)}, nginx ×${n.toFixed(2)} ` +
          `(wrk and the backends share those cores: 2 is every core of a 2-core machine)`,
      );
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  const failed = all.filter((s) => {
    const o = outcomes.get(s.key);
    return o === undefined || ("failure" in o && !o.failure.startsWith("skipped"));
  });
  if (failed.length > 0) {
    throw new Error(`sides without a figure: ${failed.map((s) => s.name).join(", ")}`);
  }
}
