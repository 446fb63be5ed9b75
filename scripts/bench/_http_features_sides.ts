/**
 * The sides of `deno task bench http-features` (scripts/bench/http_features.ts): berth and nginx
 * each with a variant of scripts/bench/_http_features.ts and a backend of its own, each probed
 * before it is measured (its observed features must be the variant's) and warmed up; and the
 * probe of what this build of berth has.
 *
 * @module
 */
import { request as httpRequest } from "node:http";
import { createHash } from "node:crypto";
import { freePort, startAgent } from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { agentHasFlag, register } from "./_shared.ts";
import { nginxProxyConfig } from "./_http_anchors.ts";
import { envCount } from "./http.ts";
import { type Proc, runClient, startProc, stopOnExit, withChildren } from "./_proc.ts";
import type { Running, SideSpec } from "./_compare.ts";
import {
  authorization,
  berthArgs,
  berthMeta,
  BODY,
  ECHO_HEADER,
  type Feature,
  featureBackendConfig,
  type Middleware,
  MIDDLEWARES,
  nginxExtra,
  PASSWORD,
  type PasswordFiles,
  REMOVED_HEADER,
  REQUEST_HEADER,
  RESPONSE_HEADER,
  type Support,
  USER,
  type Variant,
  wrkRequests,
} from "./_http_features.ts";

export const HOST = "127.0.0.1";
export const NAME = "bench.test";
/** Each side's warm-up before its measured runs (ready). */
export const WARM_SECONDS = 2;

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

/**
 * wrk's options for a run of `seconds`: every request has Host and the credentials, and
 * `Accept-Encoding: gzip` when `gzip` (otherwise none).
 */
export function wrkOptions(seconds: number, gzip = false): string[] {
  const threads = envCount("BENCH_HTTP_THREADS", 1);
  const connections = envCount("BENCH_HTTP_CONNECTIONS", 32);
  return [
    ...["-t", String(threads), "-c", String(connections), "-d", `${seconds}s`],
    ...["--timeout", "5s", "-H", `Host: ${NAME}`, "-H", `Authorization: ${authorization()}`],
    ...(gzip ? ["-H", "Accept-Encoding: gzip"] : []),
  ];
}

/**
 * Verifies the side (verify) and warms it up with a wrk run of WARM_SECONDS, not measured: what
 * a side does once (berth: a proxy worker's first bcrypt check starts its verifier thread) is
 * not what a request costs.
 */
async function ready(port: number, v: Variant, side: SideOptions): Promise<void> {
  await verify(port, v, side.name);
  const run = await runClient("wrk", [
    ...wrkOptions(WARM_SECONDS, side.gzip),
    `http://${HOST}:${port}/`,
  ], {
    limitSeconds: WARM_SECONDS + 30,
  });
  side.sent.set(side.key, (side.sent.get(side.key) ?? 0) + wrkRequests(run.stdout));
}

/** What every side is given: its key and name, and where it counts the requests wrk sent. */
export interface SideOptions {
  key: string;
  name: string;
  variant: Variant;
  /** Requests wrk counted per side, warm-up included (for the access logs' line counts). */
  sent: Map<string, number>;
  /** wrk sends `Accept-Encoding: gzip` (compression applied). */
  gzip?: boolean;
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
export function berthSide(
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
export function nginxSide(
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

/**
 * One berth agent with every feature asked for, probed (mismatches): a feature that does not
 * show is one this build lacks.
 */
export async function berthSupport(dir: string, hash: string): Promise<Support> {
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
export function writePasswordFiles(dir: string, hash: string): PasswordFiles {
  const salt = crypto.getRandomValues(new Uint8Array(8));
  const digest = createHash("sha1").update(PASSWORD).update(salt).digest();
  const ssha = `{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`;
  const files = { bcrypt: `${dir}/htpasswd-bcrypt`, ssha: `${dir}/htpasswd-ssha` };
  Deno.writeTextFileSync(files.bcrypt, `${USER}:${hash}\n`);
  Deno.writeTextFileSync(files.ssha, `${USER}:${ssha}\n`);
  return files;
}
