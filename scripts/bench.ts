/**
 * `deno task bench`: berth beside the tools it replaces, in one run on this machine, reported as
 * ratios (machines are noisy; only side-by-side figures mean anything).
 *
 *   dns     dnsperf: berth's DNS vs dnsmasq answering the same name from a hosts file
 *   http    wrk: berth's HTTP proxy vs nginx proxying to the same nginx backend
 *   docker  time from `docker run` returning to the name answering in berth's DNS (20 runs)
 *   raft    raft/ in-process commit throughput (see raft/bench/main.ts)
 *
 * Usage: deno task bench [dns] [http] [docker] [raft]   (default: all)
 * Env: BENCH_SECONDS (default 10) per measured run.
 *
 * @module
 */
import {
  freePort,
  lookupA,
  proxyGet,
  removeContainers,
  requireDocker,
  runWeb,
  startAgent,
  uniq,
} from "../test/harness.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? "10");
const ROOT = new URL("../", import.meta.url).pathname;

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${text}`);
  return text;
}

function spawn(cmd: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
}

async function ensureTools(): Promise<void> {
  const need: [string, string][] = [
    ["dnsperf", "dnsperf"],
    ["dnsmasq", "dnsmasq-base"],
    ["nginx", "nginx-light"],
    ["wrk", "wrk"],
  ];
  const missing: string[] = [];
  for (const [bin, pkg] of need) {
    const ok = await new Deno.Command("sh", { args: ["-c", `command -v ${bin}`] }).output();
    if (!ok.success) missing.push(pkg);
  }
  if (missing.length > 0) {
    console.log(`installing ${missing.join(" ")}`);
    await run("apt-get", ["install", "-y", ...missing]).catch(async () => {
      await run("apt-get", ["update"]);
      await run("apt-get", ["install", "-y", ...missing]);
    });
  }
}

async function register(httpUrl: string, body: unknown): Promise<void> {
  const r = await fetch(`${httpUrl}/v1/agent/service/register`, {
    method: "PUT",
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`register failed: ${r.status} ${await r.text()}`);
  await r.body?.cancel();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function benchDns(): Promise<void> {
  const agent = await startAgent({ args: ["--docker", "off", "--proxy-http", "off"] });
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-dns-" });
  const dnsmasqPort = await freePort();
  let dnsmasq: Deno.ChildProcess | undefined;
  try {
    await register(agent.httpUrl, { Name: "bench", ID: "bench-1", Address: "127.0.0.1", Port: 80 });
    Deno.writeTextFileSync(`${dir}/hosts`, "127.0.0.1 bench.service.berth\n");
    Deno.writeTextFileSync(`${dir}/queries`, "bench.service.berth A\n");
    dnsmasq = spawn("dnsmasq", [
      "--no-daemon",
      "--conf-file=/dev/null",
      "--no-resolv",
      "--no-hosts",
      `--addn-hosts=${dir}/hosts`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      `--port=${dnsmasqPort}`,
      "--local-ttl=0",
      "--cache-size=1000",
      "--user=root",
    ]);
    await new Promise((r) => setTimeout(r, 500));
    if ((await lookupA(agent.dnsPort, "bench.service.berth")).length !== 1) {
      throw new Error("berth does not answer bench.service.berth");
    }
    if ((await lookupA(dnsmasqPort, "bench.service.berth")).length !== 1) {
      throw new Error("dnsmasq does not answer bench.service.berth");
    }
    const perf = async (port: number) => {
      const out = await run("dnsperf", [
        "-s",
        "127.0.0.1",
        "-p",
        String(port),
        "-d",
        `${dir}/queries`,
        "-l",
        String(SECONDS),
        "-c",
        "4",
        "-Q",
        "1000000",
      ]);
      const qps = /Queries per second:\s+([\d.]+)/.exec(out);
      const lost = /Queries lost:\s+(\d+)/.exec(out);
      if (!qps) throw new Error(`dnsperf output not understood:\n${out}`);
      return { qps: Number(qps[1]), lost: Number(lost?.[1] ?? 0) };
    };
    // Alternate so both see the same background noise.
    const b1 = await perf(agent.dnsPort);
    const d1 = await perf(dnsmasqPort);
    const b2 = await perf(agent.dnsPort);
    const d2 = await perf(dnsmasqPort);
    const berth = (b1.qps + b2.qps) / 2;
    const mask = (d1.qps + d2.qps) / 2;
    console.log(
      `dns   berth ${berth.toFixed(0)} q/s (lost ${b1.lost + b2.lost}), ` +
        `dnsmasq ${mask.toFixed(0)} q/s (lost ${d1.lost + d2.lost}), ratio ${
          (berth / mask).toFixed(2)
        }`,
    );
  } finally {
    dnsmasq?.kill("SIGTERM");
    await dnsmasq?.status;
    await agent.stop();
    Deno.removeSync(dir, { recursive: true });
  }
}

async function benchHttp(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-http-" });
  const backendPort = await freePort();
  const nginxPort = await freePort();
  const conf = `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 64; }
  server { listen 127.0.0.1:${backendPort}; location / { return 200 "hello from the backend\\n"; } }
  server {
    listen 127.0.0.1:${nginxPort};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}`;
  Deno.writeTextFileSync(`${dir}/nginx.conf`, conf);
  const nginx = spawn("nginx", ["-c", `${dir}/nginx.conf`, "-g", "daemon off;"]);
  const agent = await startAgent({ args: ["--docker", "off"] });
  try {
    await register(agent.httpUrl, {
      Name: "bench",
      ID: "bench-1",
      Address: "127.0.0.1",
      Port: backendPort,
      Meta: { "berth.http.host": "bench.test" },
    });
    await new Promise((r) => setTimeout(r, 500));
    const wrk = async (port: number) => {
      const out = await run("wrk", [
        "-t",
        "1",
        "-c",
        "32",
        "-d",
        `${SECONDS}s`,
        "-H",
        "Host: bench.test",
        `http://127.0.0.1:${port}/`,
      ]);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
      if (!rps) throw new Error(`wrk output not understood:\n${out}`);
      return { rps: Number(rps[1]), bad: Number(non2xx?.[1] ?? 0) };
    };
    const check = await proxyGet(agent.proxyPort, "bench.test");
    if (check.status !== 200) throw new Error(`berth proxy answers ${check.status}: ${check.body}`);
    const b1 = await wrk(agent.proxyPort);
    const n1 = await wrk(nginxPort);
    const b2 = await wrk(agent.proxyPort);
    const n2 = await wrk(nginxPort);
    const berth = (b1.rps + b2.rps) / 2;
    const ngx = (n1.rps + n2.rps) / 2;
    console.log(
      `http  berth ${berth.toFixed(0)} req/s (non-2xx ${b1.bad + b2.bad}), ` +
        `nginx ${ngx.toFixed(0)} req/s (non-2xx ${n1.bad + n2.bad}), ratio ${
          (berth / ngx).toFixed(2)
        }`,
    );
  } finally {
    nginx.kill("SIGTERM");
    await nginx.status;
    await agent.stop();
    Deno.removeSync(dir, { recursive: true });
  }
}

async function benchDocker(): Promise<void> {
  await requireDocker();
  const agent = await startAgent();
  const times: number[] = [];
  const names: string[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const svc = uniq("lat");
      const name = await runWeb({ body: "x", env: { SERVICE_NAME: svc } });
      const t0 = performance.now();
      names.push(name);
      const deadline = t0 + 10_000;
      while ((await lookupA(agent.dnsPort, `${svc}.service.berth`)).length === 0) {
        if (performance.now() > deadline) throw new Error(`${svc} never answered`);
        await new Promise((r) => setTimeout(r, 2));
      }
      times.push(performance.now() - t0);
    }
    console.log(
      `docker run → DNS answer: median ${median(times).toFixed(0)} ms, ` +
        `worst ${Math.max(...times).toFixed(0)} ms (20 runs)`,
    );
  } finally {
    await removeContainers(names);
    await agent.stop();
  }
}

async function benchRaft(): Promise<void> {
  console.log(await run(Deno.execPath(), ["run", "--allow-all", `${ROOT}raft/bench/main.ts`]));
}

const all: Record<string, () => Promise<void>> = {
  dns: benchDns,
  http: benchHttp,
  docker: benchDocker,
  raft: benchRaft,
};
const chosen = Deno.args.length > 0 ? Deno.args : Object.keys(all);
for (const name of chosen) {
  if (!(name in all)) {
    console.error(`bench: unknown part "${name}" (one of ${Object.keys(all).join(", ")})`);
    Deno.exit(2);
  }
}
await ensureTools();
console.log(
  `berth bench, ${SECONDS}s per run, ${new Date().toISOString()}, ` +
    `deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores`,
);
for (const name of chosen) {
  try {
    await all[name]!();
  } catch (e) {
    console.error(`bench ${name}: ${(e as Error).message}`);
    Deno.exitCode = 1;
  }
}
