/**
 * `deno task bench dns`: dnsperf against berth's DNS and against dnsmasq answering the same name
 * from a hosts file, alternated twice so both see the same background noise.
 *
 * @module
 */
import { freePort, lookupA, startAgent } from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { register, run, SECONDS, spawn } from "./_shared.ts";

export async function benchDns(): Promise<void> {
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
    await waitFor(
      "berth to answer bench.service.berth",
      async () => (await lookupA(agent.dnsPort, "bench.service.berth")).length === 1,
    );
    await waitFor(
      "dnsmasq to answer bench.service.berth",
      async () => (await lookupA(dnsmasqPort, "bench.service.berth")).length === 1,
    );
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
