/**
 * `deno task bench dns`: berth's DNS beside dnsmasq, in one run: dnsperf with the same query
 * file (`bench.service.berth A`, one A record: a berth service, a dnsmasq hosts-file name) and
 * the same settings for every side (`-c 4 -Q 1000000`; env BENCH_DNS_CLIENTS), each side in turn
 * and then in reverse (scripts/bench/_compare.ts). Sides: berth at its defaults
 * (`--dns-workers` = cores, at most 4), berth `--dns-workers 1`, dnsmasq. q/s from dnsperf's
 * summary; p50/p99 from its per-query latencies (`-v`, scripts/bench/_dnsperf.ts); dnsperf's own
 * CPU and each side's. A build without `--dns-workers` runs its one thread for both berth sides.
 *
 * @module
 */
import { freePort, lookupA, startAgent } from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { agentHasFlag, register, SECONDS } from "./_shared.ts";
import { runClient, startProc, stopOnExit } from "./_proc.ts";
import { readDnsperfFile } from "./_dnsperf.ts";
import {
  details,
  measureGroup,
  type Row,
  type RunFigures,
  type Running,
  type SideSpec,
  table,
} from "./_compare.ts";

const HOST = "127.0.0.1";
const QNAME = "bench.service.berth";
const CORES = navigator.hardwareConcurrency;

async function berthSide(key: string, workers: number | undefined): Promise<SideSpec> {
  const hasFlag = await agentHasFlag("--dns-workers");
  const name = !hasFlag
    ? "berth (this build: one DNS thread, no --dns-workers)"
    : workers === undefined
    ? `berth defaults (--dns-workers ${Math.min(CORES, 4)})`
    : `berth --dns-workers ${workers}`;
  const flag = hasFlag && workers !== undefined ? ["--dns-workers", String(workers)] : [];
  return {
    key,
    name,
    start: async (): Promise<Running> => {
      const agent = await startAgent({ args: ["--docker", "off", "--proxy-http", "off", ...flag] });
      const stop = stopOnExit(() =>
        agent.stop().then(() => Deno.removeSync(agent.dataDir, { recursive: true }))
      );
      try {
        await register(agent.httpUrl, { Name: "bench", ID: "bench-1", Address: HOST, Port: 80 });
        await waitFor(
          `${name} to answer ${QNAME}`,
          async () => (await lookupA(agent.dnsPort, QNAME)).length === 1,
        );
      } catch (e) {
        await stop();
        throw e;
      }
      return { port: agent.dnsPort, pids: () => [agent.pid], stop };
    },
  };
}

function dnsmasqSide(dir: string): SideSpec {
  return {
    key: "dnsmasq",
    name: "dnsmasq",
    start: async (): Promise<Running> => {
      const port = await freePort(HOST);
      Deno.writeTextFileSync(`${dir}/hosts`, `${HOST} ${QNAME}\n`);
      const proc = startProc("dnsmasq", [
        ...["--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts"],
        ...[`--addn-hosts=${dir}/hosts`, `--listen-address=${HOST}`, "--bind-interfaces"],
        ...[`--port=${port}`, "--local-ttl=0", "--cache-size=1000", "--user=root"],
      ], { logPath: `${dir}/dnsmasq.log` });
      try {
        await waitFor(`dnsmasq to answer ${QNAME}`, async () => {
          if (proc.exited()) throw new Error(Deno.readTextFileSync(`${dir}/dnsmasq.log`));
          return (await lookupA(port, QNAME).catch(() => [])).length === 1;
        });
      } catch (e) {
        await proc.stop();
        throw e;
      }
      return { port, pids: () => [proc.pid], stop: proc.stop };
    },
  };
}

export async function benchDns(): Promise<void> {
  const clientsEnv = Deno.env.get("BENCH_DNS_CLIENTS") ?? "4";
  const clients = Number(clientsEnv);
  if (!Number.isInteger(clients) || clients < 1 || clients > 256) {
    throw new Error(`BENCH_DNS_CLIENTS=${clientsEnv.slice(0, 20)}: expected 1..256`);
  }
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-dns-" });
  const queries = `${dir}/queries`;
  Deno.writeTextFileSync(queries, `${QNAME} A\n`);
  const perfArgs = ["-d", queries, "-l", String(SECONDS), "-c", String(clients), "-Q", "1000000"];
  const client = `dnsperf -c ${clients} -Q 1000000 -v`;
  const measure = async (_s: SideSpec, r: Running): Promise<RunFigures> => {
    const out = `${dir}/dnsperf.out`;
    const run = await runClient("dnsperf", [
      ...["-s", HOST, "-p", String(r.port), ...perfArgs, "-t", "2", "-v"],
    ], { limitSeconds: SECONDS + 30, stdoutPath: out });
    const f = await readDnsperfFile(out);
    Deno.removeSync(out);
    return {
      rate: f.qps,
      p50Ms: f.p50Ms,
      p99Ms: f.p99Ms,
      errors: f.lost + f.failed,
      clientCpuMs: run.cpuMs,
      wallMs: run.wallMs,
    };
  };
  try {
    console.log(
      `dns   ${client} (per-query latencies: dnsperf has no percentiles without -v), ` +
        `${QNAME} A, ${SECONDS}s per run, each side twice (in turn, then in reverse); ${CORES} cores`,
    );
    const sides = [
      await berthSide("berth", undefined),
      await berthSide("berth1", 1),
      dnsmasqSide(dir),
    ];
    const outcomes = await measureGroup(sides, measure);
    const rows: Row[] = [
      { label: "defaults", berth: "berth", anchor: "dnsmasq", goal: { rate: 1, p99: 1.5 } },
      { label: "1 worker", berth: "berth1", anchor: "dnsmasq" },
    ];
    console.log(table(`DNS (${client})`, rows, sides, outcomes, "q/s").join("\n"));
    console.log(details(sides, outcomes, { unit: "q/s", client: "dnsperf" }).join("\n"));
    const failed = sides.filter((s) => !("figure" in (outcomes.get(s.key) ?? {})));
    if (failed.length > 0) {
      throw new Error(`sides without a figure: ${failed.map((s) => s.name).join(", ")}`);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
