/**
 * Side-by-side HTTP proxy throughput, for work on src/proxy's hot path: wrk (-t1 -c32, as
 * `deno task bench http`) through nginx, through berth's `HttpProxy` alone (no agent around it)
 * and through a bare 10-line `node:http` proxy in Deno (the ceiling of that approach), all to the
 * same nginx backend, alternating, several rounds.
 *
 * Usage: deno run -A scripts/proxy_profile.ts [--rounds N] [--seconds S] [--prof]
 *                                             [--only nginx,berth,bare] [--extra FILE.ts]
 *   --prof  runs the proxies under `--cpu-prof` (profiles in a temp dir, printed at the end).
 *   --extra also measures `deno run -A FILE.ts PORT BACKEND_PORT` (an experiment), as "extra".
 *
 * @module
 */
import http from "node:http";
import { errorText } from "../src/lib/error_text.ts";
import { parseBool, parseFlags, parseIntIn } from "../src/lib/flags.ts";
import { instanceSpec } from "../test/fixtures.ts";
import { unusedPort } from "../test/ports.ts";
import { waitFor } from "../test/wait.ts";
import { nginxBenchConfig } from "./_nginx.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const HOST = "127.0.0.1";

const FLAGS = [
  { name: "rounds", kind: "string" },
  { name: "seconds", kind: "string" },
  { name: "prof", kind: "bool" },
  { name: "only", kind: "string" },
  { name: "extra", kind: "string" },
];

async function waitListening(port: number): Promise<void> {
  await waitFor(`a listener on ${port}`, async () => {
    (await Deno.connect({ hostname: HOST, port })).close();
    return true;
  }, { timeoutMs: 10_000, intervalMs: 50 });
}

// ---- child modes: `serve berth|bare PORT BACKEND_PORT` ----

async function serveBerth(port: number, backend: number): Promise<void> {
  const { Store } = await import("../src/store/mod.ts");
  const { HttpProxy } = await import("../src/proxy/mod.ts");
  const store = Store.open(":memory:");
  const r = store.apply(1, {
    type: "register",
    instance: instanceSpec({
      service: "bench",
      id: "bench-1",
      address: HOST,
      port: backend,
      httpHosts: ["bench.test"],
    }),
  });
  if (!r.ok) throw new Error(r.error);
  const proxy = new HttpProxy({ source: store, listen: { host: HOST, port }, edgeDomain: null });
  await proxy.start();
  Deno.addSignalListener("SIGTERM", async () => {
    await proxy.close();
    Deno.exit(0);
  });
}

function serveBare(port: number, backend: number): void {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: HOST, port: backend, method: req.method, path: req.url, headers: req.headers, agent },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.listen(port, HOST);
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
}

if (Deno.args[0] === "serve") {
  const [, kind, port, backend] = Deno.args;
  if (kind === "berth") await serveBerth(Number(port), Number(backend));
  else serveBare(Number(port), Number(backend));
} else {
  await main();
}

/** CPU time (user + system) of a process so far, in µs (Linux /proc; clock ticks of 10 ms). */
function cpuUs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

async function wrk(port: number, seconds: number): Promise<number> {
  const out = await new Deno.Command("wrk", {
    args: [
      "-t",
      "1",
      "-c",
      "32",
      "-d",
      `${seconds}s`,
      "-H",
      "Host: bench.test",
      `http://${HOST}:${port}/`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const bad = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  if (!rps) throw new Error(`wrk output not understood:\n${text}`);
  if (bad) throw new Error(`non-2xx answers on ${port}:\n${text}`);
  return Number(rps[1]);
}

async function main(): Promise<void> {
  let values: Map<string, string>;
  try {
    values = parseFlags(Deno.args, FLAGS, { positionals: false }).values;
  } catch (e) {
    console.error(`proxy_profile: ${errorText(e)}`);
    Deno.exit(2);
  }
  const int = (name: string, def: number): number => {
    const raw = values.get(name);
    try {
      return raw === undefined ? def : parseIntIn(raw, [1, 3600]);
    } catch (e) {
      console.error(
        `proxy_profile: --${name} ${raw}: ${errorText(e)}; expected an integer in 1..3600`,
      );
      Deno.exit(2);
    }
  };
  const rounds = int("rounds", 3);
  const seconds = int("seconds", 5);
  const extra = values.get("extra") ?? "";
  const only = (values.get("only") ?? "nginx,berth,bare").split(",");
  if (extra !== "") only.push("extra");
  const prof = values.get("prof") !== undefined && parseBool(values.get("prof")!);
  const dir = Deno.makeTempDirSync({ prefix: "berth-proxy-profile-" });
  const backendPort = await unusedPort(HOST);
  const nginxPort = await unusedPort(HOST);
  Deno.writeTextFileSync(
    `${dir}/nginx.conf`,
    nginxBenchConfig({ dir, host: HOST, backendPort, proxyPort: nginxPort }),
  );
  const children: Deno.ChildProcess[] = [];
  const nginx = new Deno.Command("nginx", {
    args: ["-c", `${dir}/nginx.conf`, "-g", "daemon off;"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  children.push(nginx);
  const ports: Record<string, number> = { nginx: nginxPort };
  const pids: Record<string, number> = {};
  try {
    for (const kind of ["berth", "bare", "extra"]) {
      if (!only.includes(kind)) continue;
      const port = await unusedPort(HOST);
      const profArgs = prof ? ["--cpu-prof", `--cpu-prof-dir=${dir}-prof/${kind}`] : [];
      children.push(
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            ...profArgs,
            ...(kind === "extra" ? [extra] : [`${ROOT}scripts/proxy_profile.ts`, "serve", kind]),
            String(port),
            String(backendPort),
          ],
          stdout: "inherit",
          stderr: "inherit",
        }).spawn(),
      );
      ports[kind] = port;
      pids[kind] = children[children.length - 1]!.pid;
    }
    for (const p of Object.values(ports)) await waitListening(p);
    await waitListening(backendPort);
    // Warm-up (JIT, pools).
    for (const k of only) await wrk(ports[k]!, 1);
    const sums: Record<string, number[]> = {};
    for (let r = 0; r < rounds; r++) {
      const line: string[] = [];
      for (const k of only) {
        const pid = pids[k];
        const cpu0 = pid === undefined ? 0 : cpuUs(pid);
        const rps = await wrk(ports[k]!, seconds);
        (sums[k] ??= []).push(rps);
        // CPU per request is steadier than req/s on a shared machine.
        const perReq = pid === undefined
          ? ""
          : ` (${((cpuUs(pid) - cpu0) / (rps * seconds)).toFixed(1)} µs cpu/req)`;
        line.push(`${k} ${rps.toFixed(0)}${perReq}`);
      }
      console.log(`round ${r + 1}: ${line.join(", ")}`);
    }
    if (prof) console.log(`CPU profiles (written when the proxies exit): ${dir}-prof/`);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const ngx = sums.nginx ? mean(sums.nginx) : NaN;
    console.log(
      only.map((k) => {
        const rps = mean(sums[k]!);
        const ratio = Number.isNaN(ngx) ? "" : ` (${(rps / ngx).toFixed(2)}× nginx)`;
        return `${k} ${rps.toFixed(0)} req/s${ratio}`;
      }).join(", "),
    );
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
      await c.status;
    }
    Deno.removeSync(dir, { recursive: true });
  }
}
