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
    ["haproxy", "haproxy"],
    ["h2load", "nghttp2-client"],
    ["curl", "curl"],
    ["openssl", "openssl"],
    ["pebble", "pebble"], // the ACME part of `https` (gives pebble-challtestsrv too)
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

/** Which berth clusters the kv, failover and join parts measure (`--tls both|on|off`). */
export type TlsChoice = "both" | "on" | "off";

export function parseTlsChoice(v: string): TlsChoice {
  if (v === "both" || v === "on" || v === "off") return v;
  throw new Error(`--tls ${JSON.stringify(v.slice(0, 40))}: expected both, on or off`);
}

/** One berth cluster of a side-by-side comparison: its label and the flags of every member. */
export interface Side {
  label: "TLS" | "plain";
  args: string[];
}

/**
 * The sides `choice` measures, TLS first. Plain is `--dev --tls off` (--tls off needs --dev);
 * --dev otherwise changes only defaults that test/harness.ts sets explicitly on every member of
 * both sides (--data-dir, --bootstrap, --proxy-http, --acl-default allow), so the two differ in
 * the member transport alone.
 */
export function sidesOf(choice: TlsChoice, args: string[]): Side[] {
  const sides: Side[] = [];
  if (choice !== "off") sides.push({ label: "TLS", args });
  if (choice !== "on") sides.push({ label: "plain", args: [...args, "--dev", "--tls", "off"] });
  return sides;
}

/** The line saying what the sides are (printed once by each part measuring them). */
export const SIDES_NOTE = "TLS = default (mutual TLS, join token); plain = --dev --tls off " +
  "(--dev changes no other setting here: the harness passes --data-dir, --bootstrap, " +
  "--proxy-http, --acl-default allow to both)";

/** The options of `deno task bench` every part gets. */
export interface BenchOptions {
  tls: TlsChoice;
  /** The scale part's size and time bound (`--instances`, `--max-minutes`). */
  scale: { instances: number; maxMinutes: number };
}

let agentHelp: Promise<string> | undefined;

/**
 * Whether this build's `berth agent` knows `flag` (e.g. "--proxy-workers"): from its --help, so
 * a bench passes a flag only once the build has it and says so otherwise.
 */
export async function agentHasFlag(flag: string): Promise<boolean> {
  agentHelp ??= run(Deno.execPath(), [
    "run",
    "--allow-all",
    `${ROOT}src/main.ts`,
    "agent",
    "--help",
  ]);
  return new RegExp(`^\\s*${flag}\\b`, "m").test(await agentHelp);
}
