/**
 * `deno task bench http`: wrk against berth's HTTP proxy and against nginx proxying to the same
 * nginx backend, alternated twice.
 *
 * @module
 */
import { freePort, proxyGet, startAgent } from "../../test/harness.ts";
import { sleep } from "../../test/wait.ts";
import { nginxBenchConfig } from "../_nginx.ts";
import { register, run, SECONDS, spawn } from "./_shared.ts";

export async function benchHttp(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-http-" });
  const backendPort = await freePort();
  const nginxPort = await freePort();
  const conf = nginxBenchConfig({ dir, host: "127.0.0.1", backendPort, proxyPort: nginxPort });
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
    await sleep(500);
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
