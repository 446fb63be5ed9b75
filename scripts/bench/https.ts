/**
 * `deno task bench https`: berth's HTTPS listener beside nginx and HAProxy terminating TLS with
 * the same ECDSA P-256 certificate (made here by openssl, test/edge_certs.ts), each proxying to a
 * static nginx backend of its own over kept-alive HTTP/1.1, one worker/thread each (berth's
 * proxy is one thread). Three measurements (scripts/bench/_tls_load.ts says how and why):
 * HTTPS requests/s on kept-alive connections (wrk), new connections with a full handshake each
 * per second (curl, no session resumption), HTTP/2 requests/s (h2load). Each side runs twice,
 * in the order berth, nginx, HAProxy and then backwards, so drifting background load hits all
 * alike; a figure is the mean of its two runs, its p99 the worse of them. Beside each figure:
 * the CPU time the side's own processes (berth: the whole agent; not the backend) spent per
 * request, from /proc/PID/stat. Where the load generator needs a core of its own (the handshake
 * run: curl verifies as much as the server signs) that is the fairer comparison. Then the time
 * from `docker run` of a `berth.tls=acme` service to its certificate (pebble) served by every
 * member of a 3-member cluster (scripts/bench/acme.ts). Fails (exit 1) when a side cannot be
 * set up or one of its runs fails or has errors, after printing the rest.
 *
 * @module
 */
import { berthCli, freePort, startAgent } from "../../test/harness.ts";
import { makeEdgeCerts } from "../../test/edge_certs.ts";
import { curlGet, probeTls } from "../../test/https_client.ts";
import { waitFor } from "../../test/wait.ts";
import { errorText } from "../../src/lib/error_text.ts";
import { register, SECONDS, spawn } from "./_shared.ts";
import {
  BACKEND_BODY,
  haproxyTlsConfig,
  nginxBackendConfig,
  nginxTlsConfig,
} from "./_tls_anchors.ts";
import { h2, handshakes, keptAlive, type LoadResult } from "./_tls_load.ts";
import { benchAcmeIssue } from "./acme.ts";
import { cpuMs, withChildren } from "./_proc.ts";

const HOST = "127.0.0.1";
/** The name the certificate is for and every side routes. */
const NAME = "bench.test";
/** Seconds of one run: two runs per side and measurement make SECONDS in all. */
const RUN_SECONDS = Math.max(2, Math.round(SECONDS / 2));
/** How long a side may take to serve the certificate and reach its backend. */
const READY_TIMEOUT_MS = 20_000;

/** One proxy measured: where it listens and how to stop it with what it started. */
interface Side {
  label: "berth" | "nginx" | "haproxy";
  port: number;
  /** The processes serving its TLS (not its backend): their CPU time is its cost. */
  pids(): number[];
  stop(): Promise<void>;
}

interface Measurement {
  title: string;
  run(side: Side, dir: string): Promise<LoadResult>;
}

const MEASUREMENTS: Measurement[] = [
  {
    title: `HTTPS kept-alive connections (wrk -t1 -c32 --latency, ${RUN_SECONDS}s ×2)`,
    run: (s) => keptAlive({ host: HOST, port: s.port, name: NAME, seconds: RUN_SECONDS }),
  },
  {
    title: `new TLS connections, one request and a full handshake each (curl --parallel-max 32 ` +
      `--no-sessionid, Connection: close, ${RUN_SECONDS}s ×2; p99 includes connect+handshake)`,
    run: (s) => handshakes({ host: HOST, port: s.port, name: NAME, seconds: RUN_SECONDS }),
  },
  {
    title: `HTTP/2 (h2load -t1 -c32 -m10, ${RUN_SECONDS}s ×2)`,
    run: (s, dir) => h2({ host: HOST, port: s.port, name: NAME, seconds: RUN_SECONDS, dir }),
  },
];

/** Spawns `cmd`; `stop` stops it (SIGTERM) and waits for its exit. */
function spawnStoppable(cmd: string, args: string[]): { pid: number; stop: Side["stop"] } {
  const child = spawn(cmd, args);
  let exited = false;
  child.status.then(() => exited = true);
  return {
    pid: child.pid,
    stop: async () => {
      if (!exited) child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function startBackend(dir: string): Promise<{ port: number; stop: Side["stop"] }> {
  const port = await freePort(HOST);
  const conf = `${dir}/backend-${port}.conf`;
  await Deno.writeTextFile(conf, nginxBackendConfig({ dir, host: HOST, port }));
  return { port, stop: spawnStoppable("nginx", ["-c", conf, "-g", "daemon off;"]).stop };
}

interface SideSetup {
  dir: string;
  crt: string;
  key: string;
}

async function startNginx(s: SideSetup): Promise<Side> {
  const backend = await startBackend(s.dir);
  const port = await freePort(HOST);
  const conf = `${s.dir}/nginx.conf`;
  await Deno.writeTextFile(
    conf,
    nginxTlsConfig({ ...s, host: HOST, port, backendPort: backend.port }),
  );
  const proc = spawnStoppable("nginx", ["-c", conf, "-g", "daemon off;"]);
  return {
    label: "nginx",
    port,
    pids: () => withChildren(proc.pid),
    stop: () => Promise.all([proc.stop(), backend.stop()]).then(() => {}),
  };
}

async function startHaproxy(s: SideSetup): Promise<Side> {
  const backend = await startBackend(s.dir);
  const port = await freePort(HOST);
  const pem = `${s.dir}/haproxy.pem`;
  await Deno.writeTextFile(
    pem,
    (await Deno.readTextFile(s.crt)) + (await Deno.readTextFile(s.key)),
  );
  const conf = `${s.dir}/haproxy.cfg`;
  await Deno.writeTextFile(
    conf,
    haproxyTlsConfig({ ...s, host: HOST, port, backendPort: backend.port, pem }),
  );
  const proc = spawnStoppable("haproxy", ["-f", conf, "-db"]);
  return {
    label: "haproxy",
    port,
    pids: () => [proc.pid],
    stop: () => Promise.all([proc.stop(), backend.stop()]).then(() => {}),
  };
}

/**
 * A single member (`--docker off --proxy-h2`), the certificate added with `berth cert add
 * --default` (wrk and h2load send no SNI or an address), the route registered by the API.
 */
async function startBerth(s: SideSetup): Promise<Side> {
  const backend = await startBackend(s.dir);
  const agent = await startAgent({ args: ["--docker", "off", "--proxy-h2"] }).catch(async (e) => {
    await backend.stop();
    throw e;
  });
  const side: Side = {
    label: "berth",
    port: agent.httpsPort,
    pids: () => [agent.pid],
    stop: () => Promise.all([agent.stop(), backend.stop()]).then(() => {}),
  };
  try {
    if (side.port === 0) throw new Error("this build's agent has no HTTPS listener");
    const added = await berthCli(agent, "cert", "add", "--name", NAME, "--default", s.crt, s.key);
    if (added.code !== 0) throw new Error(`berth cert add failed: ${added.out.trim()}`);
    await register(agent.httpUrl, {
      Name: "bench",
      ID: "bench-1",
      Address: HOST,
      Port: backend.port,
      Meta: { "berth.http.host": NAME },
    });
  } catch (e) {
    await side.stop();
    throw e;
  }
  return side;
}

/**
 * Waits until `side` serves the certificate (the TLS version it negotiates is returned) and
 * answers through its backend (HTTP/1.1; the h2 measurement fails by itself without h2).
 */
async function checkSide(side: Side, caCrt: string, fingerprint: string): Promise<string> {
  let tlsVersion = "";
  await waitFor(`${side.label} to serve the bench certificate`, async () => {
    const served = await probeTls(HOST, side.port, { servername: NAME, alpn: ["h2", "http/1.1"] });
    if (served.fingerprint !== fingerprint) {
      throw new Error(`serves certificate ${served.fingerprint.slice(0, 16)}…`);
    }
    tlsVersion = served.protocol ?? "?";
    return true;
  }, { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100 });
  await waitFor(`${side.label} to answer through its backend`, async () => {
    const r = await curlGet({ name: NAME, port: side.port, address: HOST, caCrt });
    if (r.status !== 200 || r.body !== BACKEND_BODY) {
      throw new Error(`answers ${r.status} ${r.body.slice(0, 80)} ${r.stderr}`);
    }
    return true;
  }, { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100 });
  return tlsVersion;
}

/** A run's figures and the CPU its side's processes spent per request in it. */
interface SideRun extends LoadResult {
  cpuUsPerRequest: number;
}

interface Tally {
  runs: SideRun[];
  failure?: string;
}

function fmtMs(ms: number): string {
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}

/** The lines of one measurement: each side's figure, and berth's ratio to each anchor. */
function report(title: string, labels: Side["label"][], tallies: Map<string, Tally>): string[] {
  const lines = [`https ${title}`];
  const fig = new Map<string, { rps: number; p99Ms: number; cpuUs: number }>();
  for (const label of labels) {
    const t = tallies.get(label)!;
    if (t.failure !== undefined || t.runs.length === 0) {
      lines.push(`  ${label.padEnd(8)} FAILED: ${t.failure ?? "no run"}`);
      continue;
    }
    const rps = t.runs.reduce((n, r) => n + r.rps, 0) / t.runs.length;
    const p99Ms = Math.max(...t.runs.map((r) => r.p99Ms));
    const errors = t.runs.reduce((n, r) => n + r.errors, 0);
    const cpuUs = t.runs.reduce((n, r) => n + r.cpuUsPerRequest, 0) / t.runs.length;
    fig.set(label, { rps, p99Ms, cpuUs });
    lines.push(
      `  ${label.padEnd(8)} ${rps.toFixed(0).padStart(7)} req/s  p99 ${
        fmtMs(p99Ms).padStart(6)
      } ms  CPU ${cpuUs.toFixed(0).padStart(5)} µs/req  errors ${errors}`,
    );
  }
  const berth = fig.get("berth");
  for (const anchor of ["nginx", "haproxy"]) {
    const a = fig.get(anchor);
    if (berth === undefined || a === undefined) continue;
    lines.push(
      `  berth/${anchor}: ${(berth.rps / a.rps).toFixed(2)}× req/s, p99 ${
        (berth.p99Ms / a.p99Ms).toFixed(1)
      }×, CPU per request ${(berth.cpuUs / a.cpuUs).toFixed(1)}× ${anchor}'s`,
    );
  }
  return lines;
}

export async function benchHttps(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-https-" });
  const certs = await makeEdgeCerts({ bench: [NAME] }, { dir });
  const leaf = certs.leaf("bench");
  const setup: SideSetup = { dir, crt: leaf.crt, key: leaf.key };
  const failures: string[] = [];
  const sides: Side[] = [];
  const starters: [Side["label"], (s: SideSetup) => Promise<Side>][] = [
    ["berth", startBerth],
    ["nginx", startNginx],
    ["haproxy", startHaproxy],
  ];
  const tallies = new Map<string, Map<string, Tally>>(
    MEASUREMENTS.map((m) => [m.title, new Map(starters.map(([l]) => [l, { runs: [] }]))]),
  );
  try {
    const versions: string[] = [];
    for (const [label, start] of starters) {
      try {
        const side = await start(setup);
        sides.push(side);
        versions.push(`${label} ${await checkSide(side, certs.caCrt, leaf.fingerprint)}`);
      } catch (e) {
        const why = `set-up failed: ${errorText(e).split("\n")[0]}`;
        failures.push(`${label} ${why}`);
        for (const t of tallies.values()) t.get(label)!.failure = why;
      }
    }
    console.log(
      `https  ECDSA P-256 certificate for ${NAME} (openssl), one worker each, each side its own ` +
        `nginx backend; negotiated: ${versions.join(", ")}`,
    );
    const order = [...sides, ...sides.toReversed()];
    for (const m of MEASUREMENTS) {
      for (const side of order) {
        const t = tallies.get(m.title)!.get(side.label)!;
        if (t.failure !== undefined) continue;
        try {
          const cpu0 = cpuMs(side.pids());
          const t0 = performance.now();
          const r = await m.run(side, dir);
          // Busy cores over the whole run (h2load's warm-up included: the same load) per req/s.
          const busy = (cpuMs(side.pids()) - cpu0) / (performance.now() - t0);
          t.runs.push({ ...r, cpuUsPerRequest: busy / r.rps * 1e6 });
          if (r.errors > 0) failures.push(`${side.label}: ${r.errors} errors in ${m.title}`);
        } catch (e) {
          t.failure = errorText(e).split("\n")[0];
          failures.push(`${side.label}: ${m.title}: ${t.failure}`);
        }
      }
      console.log(report(m.title, starters.map(([l]) => l), tallies.get(m.title)!).join("\n"));
    }
  } finally {
    await Promise.all(sides.map((s) => s.stop().catch(() => {})));
    Deno.removeSync(dir, { recursive: true });
  }
  try {
    await benchAcmeIssue();
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    console.error(`https ACME FAILED: ${text}`);
    failures.push(`berth ACME: ${text.split("\n")[0]}`);
  }
  if (failures.length > 0) throw new Error(`a side failed:\n  ${failures.join("\n  ")}`);
}
