/**
 * `deno task bench http-features`: what berth's access log and route middlewares cost, beside
 * nginx with the equivalent configuration, in one run. Each variant (scripts/bench/_http_features.ts:
 * baseline, access log on, three middlewares on) runs on berth at its defaults (`--proxy-workers`
 * = cores) and on nginx `worker_processes auto` (as `bench http`'s defaults group), each side with
 * a static nginx backend of its own, the same wrk request for all (`wrk -t1 -c32 --latency`, env
 * BENCH_HTTP_THREADS, BENCH_HTTP_CONNECTIONS; Host and the basic-auth credentials on every
 * request, no Accept-Encoding), every side in one group of scripts/bench/_compare.ts (in turn,
 * then in reverse). Printed: each variant berth vs nginx, and each side's variant / its baseline.
 *
 * nginx checks a bcrypt password with crypt(3) on every request; berth remembers a verdict. So
 * the middleware variant runs on nginx twice: with the same bcrypt file, and with a salted SHA-1
 * (`{SSHA}`) one, the cost of its middlewares without bcrypt's.
 *
 * Before measuring, one berth agent is probed for each feature (a request without credentials
 * gets 401, the headers arrive and go, a gzip-accepting request is compressed, the log file gets
 * a JSON line); a feature this build lacks is left out with a line saying so, and nginx gets the
 * same set. Every side is probed the same way before its runs.
 *
 * @module
 */
import { request as httpRequest } from "node:http";
import { createHash } from "node:crypto";
import bcrypt from "bcryptjs";
import { freePort, startAgent } from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { agentHasFlag, register, SECONDS } from "./_shared.ts";
import { nginxProxyConfig } from "./_http_anchors.ts";
import { envCount, wrkFigures } from "./http.ts";
import { type Proc, runClient, startProc, stopOnExit, withChildren } from "./_proc.ts";
import {
  details,
  measureGroup,
  type Row,
  type RunFigures,
  type Running,
  type SideSpec,
  table,
} from "./_compare.ts";
import {
  authorization,
  BCRYPT_COST,
  berthArgs,
  berthMeta,
  BODY,
  type CostRow,
  costTable,
  countLines,
  ECHO_HEADER,
  featureBackendConfig,
  type Middleware,
  MIDDLEWARES,
  middlewaresText,
  nginxExtra,
  PASSWORD,
  REMOVED_HEADER,
  REQUEST_HEADER,
  RESPONSE_HEADER,
  USER,
  type Variant,
  wrkRequests,
} from "./_http_features.ts";

const HOST = "127.0.0.1";
const NAME = "bench.test";
const CORES = navigator.hardwareConcurrency;
/** Each side's warm-up before its measured runs (ready). */
const WARM_SECONDS = 2;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

/** A GET of `/` through `port` with Host NAME and `headers`. */
function get(port: number, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: HOST, port, path: "/", headers: { host: NAME, ...headers }, agent: false },
      (res) => {
        const chunks: Uint8Array[] = [];
        res.on("data", (d: Uint8Array) => chunks.push(d));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: new Uint8Array(Buffer.concat(chunks)),
          }));
        res.on("error", reject);
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end();
  });
}

type Feature = Middleware | "log";

/**
 * Each feature whose observed state through `port` is not the one `v` asks for, with what was
 * seen (an empty map: the side is configured as `v` says). A baseline shows no middleware.
 */
async function mismatches(port: number, v: Variant): Promise<Map<Feature, string>> {
  const out = new Map<Feature, string>();
  const auth = { authorization: authorization() };
  const plain = await get(port, auth);
  const body = new TextDecoder().decode(plain.body);
  if (plain.status !== 200 || body !== BODY) {
    throw new Error(`GET / answered ${plain.status} with ${plain.body.length} bytes, not BODY`);
  }
  const want = (m: Middleware) => v.middlewares.includes(m);
  const anonymous = await get(port, {});
  if ((anonymous.status === 401) !== want("auth")) {
    out.set("auth", `a request without credentials got ${anonymous.status}`);
  }
  const h = plain.headers;
  const headersOn = h[ECHO_HEADER.toLowerCase()] === REQUEST_HEADER[1] &&
    h[RESPONSE_HEADER[0].toLowerCase()] === RESPONSE_HEADER[1] &&
    h[REMOVED_HEADER.toLowerCase()] === undefined;
  const headersOff = h[ECHO_HEADER.toLowerCase()] === undefined &&
    h[RESPONSE_HEADER[0].toLowerCase()] === undefined &&
    h[REMOVED_HEADER.toLowerCase()] !== undefined;
  if (want("headers") ? !headersOn : !headersOff) {
    out.set(
      "headers",
      `${ECHO_HEADER}: ${h[ECHO_HEADER.toLowerCase()]}, ${RESPONSE_HEADER[0]}: ` +
        `${h[RESPONSE_HEADER[0].toLowerCase()]}, ${REMOVED_HEADER}: ` +
        `${h[REMOVED_HEADER.toLowerCase()]}`,
    );
  }
  const gz = await get(port, { ...auth, "accept-encoding": "gzip" });
  const coding = gz.headers["content-encoding"];
  if (plain.headers["content-encoding"] !== undefined || (coding === "gzip") !== want("compress")) {
    out.set(
      "compress",
      `Content-Encoding without Accept-Encoding: ${plain.headers["content-encoding"]}, ` +
        `with gzip accepted: ${coding}`,
    );
  }
  if (v.accessLog !== undefined) {
    const line = await waitFor("a JSON line in the access log", () => {
      try {
        const lines = Deno.readTextFileSync(v.accessLog!).trim().split("\n");
        return JSON.parse(lines.at(-1)!) as unknown;
      } catch {
        return undefined;
      }
    }, { timeoutMs: 5_000, intervalMs: 100 }).catch(() => undefined);
    if (line === undefined) out.set("log", "no JSON line in the access log file within 5 s");
  }
  return out;
}

/** Throws unless the side through `port` is configured as `v` says (within 20 s). */
async function verify(port: number, v: Variant, what: string): Promise<void> {
  let why = "no answer yet";
  await waitFor(`${what} to answer as configured`, async () => {
    const bad = await mismatches(port, v).catch((e: Error) => e);
    why = bad instanceof Error
      ? bad.message
      : [...bad].map(([f, seen]) => `${f}: ${seen}`).join("; ");
    return !(bad instanceof Error) && bad.size === 0;
  }, { timeoutMs: 20_000, intervalMs: 200 }).catch(() => {
    throw new Error(`${what} is not configured as asked: ${why}`);
  });
}

/** wrk's options for a run of `seconds` (every request: Host and the credentials). */
function wrkOptions(seconds: number): string[] {
  const threads = envCount("BENCH_HTTP_THREADS", 1);
  const connections = envCount("BENCH_HTTP_CONNECTIONS", 32);
  return [
    ...["-t", String(threads), "-c", String(connections), "-d", `${seconds}s`],
    ...["--timeout", "5s", "-H", `Host: ${NAME}`, "-H", `Authorization: ${authorization()}`],
  ];
}

/**
 * Verifies the side (verify) and warms it up with a wrk run of WARM_SECONDS, not measured: what
 * a side does once (berth: a proxy worker's first bcrypt check starts its verifier thread) is
 * not what a request costs.
 */
async function ready(port: number, v: Variant, side: SideOptions): Promise<void> {
  await verify(port, v, side.name);
  const run = await runClient("wrk", [...wrkOptions(WARM_SECONDS), `http://${HOST}:${port}/`], {
    limitSeconds: WARM_SECONDS + 30,
  });
  side.sent.set(side.key, (side.sent.get(side.key) ?? 0) + wrkRequests(run.stdout));
}

/** What every side is given: its key and name, and where it counts the requests wrk sent. */
interface SideOptions {
  key: string;
  name: string;
  variant: Variant;
  /** Requests wrk counted per side, warm-up included (for the access logs' line counts). */
  sent: Map<string, number>;
}

/** A static backend (one nginx worker) for one side. */
function startBackend(dir: string): Promise<{ port: number; proc: Proc }> {
  return freePort(HOST).then(async (port) => {
    const conf = `${dir}/backend-${port}.conf`;
    await Deno.writeTextFile(conf, featureBackendConfig({ dir, host: HOST, port }));
    return { port, proc: startProc("nginx", ["-c", conf, "-g", "daemon off;"]) };
  });
}

/** berth at its defaults with `v`'s flags and route Meta, a backend of its own. */
function berthSide(
  dir: string,
  o: SideOptions & { hash: string; skip?: string },
): SideSpec {
  return {
    key: o.key,
    name: o.name,
    backend: true,
    skip: o.skip,
    start: async (): Promise<Running> => {
      const { agent, backend, stop } = await startBerth(dir, o.variant, o.hash);
      try {
        await ready(agent.proxyPort, o.variant, o);
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

/** A berth agent (`--docker off`, one member) with `v`, its route registered, and its backend. */
async function startBerth(dir: string, v: Variant, hash: string) {
  const backend = await startBackend(dir);
  const agent = await startAgent({ args: ["--docker", "off", ...berthArgs(v)] })
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
    await register(agent.httpUrl, {
      Name: "bench",
      ID: "bench-1",
      Address: HOST,
      Port: backend.port,
      Meta: { "berth.http.host": NAME, ...berthMeta(v, hash) },
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { agent, backend, stop };
}

/** nginx `worker_processes auto` with `v`'s directives, a backend of its own. */
function nginxSide(
  dir: string,
  o: SideOptions & { htpasswd: string },
): SideSpec {
  return {
    key: o.key,
    name: o.name,
    backend: true,
    start: async (): Promise<Running> => {
      const backend = await startBackend(dir);
      const port = await freePort(HOST);
      const conf = `${dir}/nginx-${port}.conf`;
      await Deno.writeTextFile(
        conf,
        nginxProxyConfig({
          dir,
          host: HOST,
          port,
          backendPort: backend.port,
          workers: "auto",
          extra: nginxExtra(o.variant, o.htpasswd),
        }),
      );
      const proc = startProc("nginx", ["-c", conf, "-g", "daemon off;"]);
      const stop = () => Promise.all([proc.stop(), backend.proc.stop()]).then(() => {});
      try {
        await ready(port, o.variant, o);
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

/** What this build has of each feature: undefined when it has it, else why not. */
type Support = Record<Feature, string | undefined>;

/**
 * One berth agent with every feature asked for, probed (mismatches): a feature that does not
 * show is one this build lacks.
 */
async function berthSupport(dir: string, hash: string): Promise<Support> {
  const support: Support = {
    log: undefined,
    auth: undefined,
    headers: undefined,
    compress: undefined,
  };
  const hasLog = await agentHasFlag("--access-log");
  if (!hasLog) support.log = "this build has no --access-log";
  const v: Variant = {
    accessLog: hasLog ? `${dir}/probe-access.log` : undefined,
    middlewares: MIDDLEWARES,
  };
  const started = await startBerth(dir, v, hash).catch((e) => e as Error);
  if (started instanceof Error) {
    const why = `probe agent: ${started.message.split("\n")[0]}`;
    return { log: why, auth: why, headers: why, compress: why };
  }
  try {
    let bad: Map<Feature, string> | undefined;
    await waitFor("the probe agent's route to answer", async () => {
      bad = await mismatches(started.agent.proxyPort, v).catch(() => undefined);
      return bad !== undefined;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    for (const [f, seen] of bad!) support[f] = `not applied by this build (${seen})`;
  } finally {
    await started.stop();
  }
  return support;
}

/** USER's password files for nginx: bcrypt (the hash berth gets) and `{SSHA}`. */
function writePasswordFiles(dir: string, hash: string): { bcrypt: string; ssha: string } {
  const salt = crypto.getRandomValues(new Uint8Array(8));
  const digest = createHash("sha1").update(PASSWORD).update(salt).digest();
  const ssha = `{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`;
  const files = { bcrypt: `${dir}/htpasswd-bcrypt`, ssha: `${dir}/htpasswd-ssha` };
  Deno.writeTextFileSync(files.bcrypt, `${USER}:${hash}\n`);
  Deno.writeTextFileSync(files.ssha, `${USER}:${ssha}\n`);
  return files;
}

export async function benchHttpFeatures(): Promise<void> {
  const client = `wrk -t${envCount("BENCH_HTTP_THREADS", 1)} -c${
    envCount("BENCH_HTTP_CONNECTIONS", 32)
  }`;
  const wrkArgs = [...wrkOptions(SECONDS), "--latency"];
  const sent = new Map<string, number>();
  const measure = async (s: SideSpec, r: Running): Promise<RunFigures> => {
    const run = await runClient("wrk", [...wrkArgs, `http://${HOST}:${r.port}/`], {
      limitSeconds: SECONDS + 30,
    });
    sent.set(s.key, (sent.get(s.key) ?? 0) + wrkRequests(run.stdout));
    return { ...wrkFigures(run.stdout), clientCpuMs: run.cpuMs, wallMs: run.wallMs };
  };
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-features-" });
  const sides: SideSpec[] = [];
  try {
    const hash = bcrypt.hashSync(PASSWORD, BCRYPT_COST);
    const htpasswd = writePasswordFiles(dir, hash);
    console.log(
      `http-features  ${client} --latency, ${SECONDS}s per run, each side twice (in turn, ` +
        `then in reverse) after a ${WARM_SECONDS}s warm-up; berth at its defaults (--proxy-workers ${CORES}) and nginx ` +
        `worker_processes auto, each its own nginx backend (1 worker, ${BODY.length} bytes ` +
        `text/plain); every request: Host, basic-auth credentials, no Accept-Encoding`,
    );
    const support = await berthSupport(dir, hash);
    for (const [f, why] of Object.entries(support)) {
      if (why !== undefined) console.log(`http-features  berth ${f}: ${why}`);
    }
    const have = MIDDLEWARES.filter((m) => support[m] === undefined);
    // nginx gets the set berth has (so the two compare), all three when berth has none.
    const mws = have.length > 0 ? have : MIDDLEWARES;
    const base: Variant = { middlewares: [] };
    const log = (who: string): Variant => ({
      accessLog: `${dir}/${who}-access.log`,
      middlewares: [],
    });
    const logName = "access log (JSON to a file)";
    const mwName = (ms: readonly Middleware[]) => middlewaresText(ms);
    sides.push(
      berthSide(dir, { key: "berth", name: "berth baseline", variant: base, hash, sent }),
      nginxSide(dir, { key: "nginx", name: "nginx baseline", variant: base, htpasswd: "", sent }),
      berthSide(dir, {
        key: "berth-log",
        sent,
        name: `berth ${logName}`,
        variant: log("berth"),
        hash,
        skip: support.log,
      }),
      nginxSide(dir, {
        key: "nginx-log",
        sent,
        name: `nginx ${logName}`,
        variant: log("nginx"),
        htpasswd: "",
      }),
      berthSide(dir, {
        key: "berth-mw",
        sent,
        name: `berth ${mwName(mws)}`,
        variant: { middlewares: have },
        hash,
        skip: have.length === 0 ? "this build applies none of the middlewares" : undefined,
      }),
      nginxSide(dir, {
        key: "nginx-mw",
        sent,
        name: `nginx ${mwName(mws)}`,
        variant: { middlewares: mws },
        htpasswd: htpasswd.bcrypt,
      }),
    );
    if (mws.includes("auth")) {
      sides.push(nginxSide(dir, {
        key: "nginx-mw-ssha",
        sent,
        name: `nginx ${mwName(mws)}, {SSHA} password`,
        variant: { middlewares: mws },
        htpasswd: htpasswd.ssha,
      }));
    }
    const outcomes = await measureGroup(sides, measure);
    const rows: Row[] = [
      { label: "baseline", berth: "berth", anchor: "nginx" },
      { label: logName, berth: "berth-log", anchor: "nginx-log" },
      { label: mwName(mws), berth: "berth-mw", anchor: "nginx-mw" },
      ...(mws.includes("auth")
        ? [{
          label: `${mwName(mws)}, nginx {SSHA} password`,
          berth: "berth-mw",
          anchor: "nginx-mw-ssha",
        }]
        : []),
    ];
    console.log(table(`HTTP features (${client})`, rows, sides, outcomes, "req/s").join("\n"));
    const costs: CostRow[] = [
      {
        label: logName,
        berth: { variant: "berth-log", base: "berth" },
        anchor: { variant: "nginx-log", base: "nginx" },
      },
      {
        label: mwName(mws),
        berth: { variant: "berth-mw", base: "berth" },
        anchor: { variant: "nginx-mw", base: "nginx" },
      },
      ...(mws.includes("auth")
        ? [{
          label: `${mwName(mws)}, nginx {SSHA} password`,
          berth: { variant: "berth-mw", base: "berth" },
          anchor: { variant: "nginx-mw-ssha", base: "nginx" },
        }]
        : []),
    ];
    console.log(costTable(costs, outcomes, "req/s").join("\n"));
    console.log(details(sides, outcomes, { unit: "req/s", client: "wrk" }).join("\n"));
    for (const who of ["berth", "nginx"]) {
      const o = outcomes.get(`${who}-log`);
      if (o === undefined || !("figure" in o)) continue;
      const lines = await countLines(log(who).accessLog!);
      console.log(
        `http-features  ${who}'s access log: ${lines} lines for ${sent.get(`${who}-log`)} ` +
          `requests wrk counted, warm-up included (besides: the probes' few, and up to one per connection in ` +
          `flight at each run's end)`,
      );
    }
    const failed = sides.filter((s) => {
      const o = outcomes.get(s.key);
      return o === undefined || ("failure" in o && !o.failure.startsWith("skipped"));
    });
    if (failed.length > 0) {
      throw new Error(`sides without a figure: ${failed.map((s) => s.name).join(", ")}`);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
