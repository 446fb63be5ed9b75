/**
 * What the benchmark parts share: the measured run's length, running and spawning the tools
 * compared against (installed on first use), registering a service with berth, the median.
 *
 * @module
 */
/** Seconds per measured run (env BENCH_SECONDS, default 10). */
export const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? "10");
/** The repository's root directory, with a trailing slash. */
export const ROOT = new URL("../../", import.meta.url).pathname;

export async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${text}`);
  return text;
}

export function spawn(cmd: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
}

export async function ensureTools(): Promise<void> {
  const need: [string, string][] = [
    ["dnsperf", "dnsperf"],
    ["dnsmasq", "dnsmasq-base"],
    ["nginx", "nginx-light"],
    ["wrk", "wrk"],
    ["etcd", "etcd-server"],
    ["etcdctl", "etcd-client"],
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

export async function register(httpUrl: string, body: unknown): Promise<void> {
  const r = await fetch(`${httpUrl}/v1/agent/service/register`, {
    method: "PUT",
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`register failed: ${r.status} ${await r.text()}`);
  await r.body?.cancel();
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
