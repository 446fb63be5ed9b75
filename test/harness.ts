/**
 * End-to-end test harness: real `berth agent` processes (the same entry point and permission
 * flags as the compiled binary), a real Docker engine through its CLI, DNS over real sockets
 * (test/dns_query.ts, re-exported here); the Docker helpers are in test/docker_harness.ts
 * (re-exported here).
 *
 * @module
 */
import { createSocket } from "node:dgram";
import { waitFor } from "./wait.ts";
import { errorText } from "../src/lib/error_text.ts";

export { type DnsAnswer, dnsQuery, lookupA, lookupSrv } from "./dns_query.ts";
export { docker, removeContainers, requireDocker, runWeb, TEST_IMAGE } from "./docker_harness.ts";
export { proxyGet } from "./proxy_get.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** The permission flags scripts/compile.sh gives the binary. */
export const PERMISSIONS = ["--allow-all"];

/**
 * Ports for agents are picked below the kernel's ephemeral range (32768+), where outgoing
 * connections (cluster members dial from their own address) and port-0 listeners take theirs,
 * so a port found free here is not taken again before the agent binds it.
 */
const PORT_RANGE = [20_000, 32_000] as const;

export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_RANGE[0] + Math.floor(Math.random() * (PORT_RANGE[1] - PORT_RANGE[0]));
    if (await portFree(host, port)) return port;
  }
  throw new Error(`no free port on ${host} in ${PORT_RANGE.join("-")}`);
}

/** Whether `port` can be bound on `host` for TCP and for UDP (DNS listens on both). */
export async function portFree(host: string, port: number): Promise<boolean> {
  try {
    const l = Deno.listen({ hostname: host, port });
    l.close();
    await new Promise<void>((resolve, reject) => {
      const u = createSocket("udp4");
      u.once("error", reject);
      u.bind(port, host, () => u.close(() => resolve()));
    });
    return true;
  } catch {
    return false;
  }
}

export function uniq(prefix: string): string {
  return `${prefix}${crypto.randomUUID().slice(0, 8)}`;
}

export interface AgentProc {
  node: string;
  /** Loopback address every listener of this agent binds (127.0.0.x). */
  host: string;
  /** Cluster (Raft RPC) address, host:port. */
  clusterAddr: string;
  dataDir: string;
  httpUrl: string;
  dnsPort: number;
  proxyPort: number;
  /** The proxy's HTTPS listener (--proxy-https). */
  httpsPort: number;
  bindPort: number;
  logPath: string;
  /** The agent's process id (for /proc/PID/status). */
  pid: number;
  stop(): Promise<void>;
  kill(): Promise<void>;
  /** The process's exit status, once it exited. */
  exited: Promise<Deno.CommandStatus>;
  log(): string;
}

export interface StartAgentOptions {
  node?: string;
  dataDir?: string;
  args?: string[];
  /** Loopback address to bind everything on (default 127.0.0.1). */
  host?: string;
  /** Start a new cluster (default true); false with `join` or to join later. */
  bootstrap?: boolean;
  /** Cluster addresses to join through. */
  join?: string[];
  /** Docker watcher on (default true). */
  docker?: boolean;
  /**
   * Reuse ports (for a restart of the same agent). The cluster port (`bind`, the member's
   * address) is kept; an API, DNS or proxy port that another process took meanwhile (a parallel
   * test's agent picks ports too) is replaced by a fresh one, unless `samePorts`.
   */
  ports?: AgentPorts;
  /** With `ports`: exactly these, or fail (a test that needs an address to stay). */
  samePorts?: boolean;
  /** `--acl-default` (default "allow": tests of other features need no token; ACL tests: deny). */
  aclDefault?: "allow" | "deny";
  /**
   * `--join-token` (clusters run mutual TLS): by default a fresh agent that is not bootstrapping
   * gets the join token of the cluster it joins (`join[0]`'s), or else of the last cluster
   * bootstrapped here, read from that first member's `<data-dir>/join-token`; an agent started
   * on a `dataDir` of its own (a restart) gets none. null: none at all.
   */
  joinToken?: string | null;
  /** Flags for the Deno runtime before the script (e.g. `--cpu-prof`, scripts/kv_profile.ts). */
  runtimeArgs?: string[];
}

/** The ports an agent listens on: API, DNS, proxy (plain and HTTPS), cluster. */
export interface AgentPorts {
  http: number;
  dns: number;
  proxy: number;
  https: number;
  bind: number;
}

/** Cluster address of every agent started here → the join token of its cluster. */
const tokenOfCluster = new Map<string, string>();
/** The join token of the cluster bootstrapped last here. */
let lastBootstrapToken: string | undefined;

/** The join token a fresh agent gets by default (StartAgentOptions.joinToken). */
function defaultJoinToken(opts: StartAgentOptions): string | undefined {
  if (opts.joinToken !== undefined) return opts.joinToken ?? undefined;
  if ((opts.bootstrap ?? true) || opts.dataDir !== undefined) return undefined;
  const via = opts.join?.[0];
  return (via === undefined ? undefined : tokenOfCluster.get(via)) ?? lastBootstrapToken;
}

/** A bootstrapped agent's join token, from its data directory. */
export function joinTokenOf(a: AgentProc): string {
  return Deno.readTextFileSync(`${a.dataDir}/join-token`).trim();
}

/**
 * Starts an agent; when one of its ports was taken meanwhile ("address in use"), starts again
 * on fresh ports (a few times): every port when they were picked here, all but the cluster port
 * when `ports` came from a previous start (see StartAgentOptions.ports).
 */
export async function startAgent(opts: StartAgentOptions = {}): Promise<AgentProc> {
  for (let attempt = 1;; attempt++) {
    const ports = opts.ports === undefined || opts.samePorts
      ? opts.ports
      : await takenReplaced(opts.host ?? "127.0.0.1", opts.ports);
    try {
      return await startAgentOnce({ ...opts, ports });
    } catch (e) {
      const taken = /address in use|EADDRINUSE/i.test(errorText(e));
      if (!taken || opts.samePorts || attempt >= 3) throw e;
    }
  }
}

/** `ports` with each API, DNS and proxy port that cannot be bound now replaced by a free one. */
export async function takenReplaced(host: string, ports: AgentPorts): Promise<AgentPorts> {
  const out = { ...ports };
  for (const k of ["http", "dns", "proxy", "https"] as const) {
    if (!(await portFree(host, out[k]))) out[k] = await freePort(host);
  }
  return out;
}

async function startAgentOnce(opts: StartAgentOptions): Promise<AgentProc> {
  const node = opts.node ?? uniq("n-");
  const host = opts.host ?? "127.0.0.1";
  const dataDir = opts.dataDir ?? Deno.makeTempDirSync({ prefix: "berth-e2e-" });
  const ports = opts.ports ?? {
    http: await freePort(host),
    dns: await freePort(host),
    proxy: await freePort(host),
    https: await freePort(host),
    bind: await freePort(host),
  };
  if (opts.bootstrap ?? true) bootstrapDirs.push(dataDir);
  const logPath = `${dataDir}/agent.log`;
  const joinToken = defaultJoinToken(opts);
  const logFile = Deno.openSync(logPath, { append: true, create: true });
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...PERMISSIONS,
      ...(opts.runtimeArgs ?? []),
      `${ROOT}src/main.ts`,
      "agent",
      // Explicit either way: under `--dev` (in `args`) --bootstrap defaults to true.
      ...(opts.bootstrap ?? true ? ["--bootstrap"] : ["--bootstrap=false"]),
      ...(opts.join ? ["--join", opts.join.join(",")] : []),
      ...(joinToken === undefined ? [] : ["--join-token", joinToken]),
      ...(opts.docker ?? true ? [] : ["--docker", "off"]),
      "--node",
      node,
      "--data-dir",
      dataDir,
      "--http",
      `${host}:${ports.http}`,
      "--dns",
      `${host}:${ports.dns}`,
      "--proxy-http",
      `${host}:${ports.proxy}`,
      "--proxy-https",
      `${host}:${ports.https}`,
      "--bind",
      `${host}:${ports.bind}`,
      "--reconcile-interval",
      "5s",
      "--acl-default",
      opts.aclDefault ?? "allow",
      ...(opts.args ?? []),
    ],
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
  const child = cmd.spawn();
  // Written chunk by chunk (a pipeTo into the file's writable held lines back until exit).
  const pump = (async () => {
    try {
      for await (const chunk of child.stderr) logFile.writeSync(chunk);
    } catch { /* the process is gone */ }
    logFile.close();
  })();
  const httpUrl = `http://${host}:${ports.http}`;
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const p: AgentProc = {
    node,
    host,
    clusterAddr: `${host}:${ports.bind}`,
    dataDir,
    httpUrl,
    dnsPort: ports.dns,
    proxyPort: ports.proxy,
    httpsPort: ports.https,
    bindPort: ports.bind,
    logPath,
    pid: child.pid,
    log: () => Deno.readTextFileSync(logPath),
    exited: status,
    stop: async () => {
      if (!exited) child.kill("SIGTERM");
      await status;
      await pump;
    },
    kill: async () => {
      if (!exited) child.kill("SIGKILL");
      await status;
      await pump;
    },
    // @ts-ignore: extra member used by signalAgent()
    signal: (s: Deno.Signal) => {
      if (!exited) child.kill(s);
    },
  };
  try {
    await waitFor("agent API", async () => {
      if (exited) throw new Error(`agent exited early:\n${p.log()}`);
      const r = await fetch(`${httpUrl}/v1/status/leader`);
      await r.body?.cancel();
      // The API answers before the proxy (its workers) started; the agent handles signals
      // once every part is up, which it logs (`… up; api …`).
      return r.ok && p.log().includes(" up; api ");
    }, { timeoutMs: 30_000, intervalMs: 100 });
  } catch (e) {
    await p.kill();
    throw e;
  }
  (p as AgentProc & { ports: unknown }).ports = ports;
  if (opts.bootstrap ?? true) {
    try {
      lastBootstrapToken = joinTokenOf(p);
      tokenOfCluster.set(p.clusterAddr, lastBootstrapToken);
    } catch {
      // --tls off: no join-token file, and no token for the agents joining this cluster.
      lastBootstrapToken = undefined;
    }
  } else if (joinToken !== undefined) {
    tokenOfCluster.set(p.clusterAddr, joinToken);
  }
  return p;
}

/**
 * Whether the agent's members talk mutual TLS: its data dir holds its member certificate
 * (`node.crt`, made at bootstrap or enrollment; none under `--tls off`).
 */
export function memberTls(a: AgentProc): boolean {
  try {
    return Deno.statSync(`${a.dataDir}/node.crt`).isFile;
  } catch {
    return false;
  }
}

/** The management token `--bootstrap` wrote to the agent's data dir. */
export function managementToken(a: AgentProc): string {
  return Deno.readTextFileSync(`${a.dataDir}/management-token`).trim();
}

/** An agent's peak resident memory so far, in MiB (VmHWM in /proc/PID/status). */
export function peakRssMiB(a: AgentProc): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${a.pid}/status`));
  if (m === null) throw new Error(`no VmHWM for agent ${a.node} (pid ${a.pid})`);
  return Number(m[1]) / 1024;
}

/** Sends a signal (SIGSTOP/SIGCONT to freeze and thaw) to an agent's process. */
export function signalAgent(a: AgentProc, signal: Deno.Signal): void {
  (a as AgentProc & { signal(s: Deno.Signal): void }).signal(signal);
}

export function portsOf(a: AgentProc): AgentPorts {
  return (a as AgentProc & { ports: AgentPorts }).ports;
}

// ---- clusters ----

export interface ClusterOptions {
  /** Extra flags for every agent (e.g. --voters 3). */
  args?: string[];
  /** Which members run the Docker watcher (by position); default none. */
  docker?: number[];
  /** `--acl-default` of every member (default "allow"). */
  aclDefault?: "allow" | "deny";
  /** Deno runtime flags of the member at each position (StartAgentOptions.runtimeArgs). */
  runtimeArgs?: (position: number) => string[];
}

/**
 * Starts `n` agents on 127.0.0.1 … 127.0.0.n: the first bootstraps, the others join through it.
 * Resolves once every member is listed by the first one.
 */
export async function startCluster(n: number, opts: ClusterOptions = {}): Promise<AgentProc[]> {
  const agents: AgentProc[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const host = `127.0.0.${i + 1}`;
      agents.push(
        await startAgent({
          node: uniq(`m${i + 1}-`),
          host,
          bootstrap: i === 0,
          join: i === 0 ? undefined : [agents[0]!.clusterAddr],
          docker: opts.docker?.includes(i) ?? false,
          args: opts.args,
          aclDefault: opts.aclDefault,
          runtimeArgs: opts.runtimeArgs?.(i),
        }),
      );
    }
    // Settled: everyone listed, every member knows it joined, and the voters are promoted
    // (a leader killed before then could leave too few voters to elect another).
    const flag = opts.args?.indexOf("--voters") ?? -1;
    const voters = Math.min(n, flag >= 0 ? Number(opts.args![flag + 1]) : 3);
    await waitFor("every member to join and the voters to be promoted", async () => {
      const m = await apiJson(agents[0]!, "/v1/berth/members?stale") as { role: string }[];
      if (m.length !== n || m.filter((x) => x.role === "voter").length !== voters) return false;
      for (const a of agents) {
        const st = await apiJson(a, "/v1/berth/status") as { role: string; leader: string | null };
        if (st.role === "standalone" || st.leader === null) return false;
      }
      return true;
    }, { timeoutMs: 30_000 });
    return agents;
  } catch (e) {
    await Promise.all(agents.map((a) => a.kill()));
    throw e;
  }
}

export async function stopAll(agents: AgentProc[]): Promise<void> {
  await Promise.all(agents.map((a) => a.stop().catch(() => {})));
}

/** Data dirs of the agents started with --bootstrap, latest last. */
const bootstrapDirs: string[] = [];

/**
 * `BERTH_TOKEN` with the management token `--bootstrap` wrote (what an operator's CLI would
 * use, e.g. for snapshots): `a`'s own, else the latest bootstrapped agent's; nothing if none.
 */
function cliTokenEnv(a: AgentProc): Record<string, string> {
  for (const dir of [a.dataDir, ...bootstrapDirs.toReversed()]) {
    try {
      return { BERTH_TOKEN: Deno.readTextFileSync(`${dir}/management-token`).trim() };
    } catch { /* none there */ }
  }
  return {};
}

/** Runs the `berth` CLI (as the binary would) against agent `a`; its exit code and output. */
export async function berthCli(
  a: AgentProc,
  ...args: string[]
): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, `${ROOT}src/main.ts`, ...args],
    env: { BERTH_HTTP_ADDR: a.httpUrl, NO_COLOR: "1", ...cliTokenEnv(a) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

/** GET a JSON API path on an agent. */
export async function apiJson(a: AgentProc, path: string): Promise<unknown> {
  const r = await fetch(`${a.httpUrl}${path}`, { signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

/** PUT a KV value through an agent; resolves to the API's `true`/`false`. */
export async function kvPut(
  a: AgentProc,
  key: string,
  value: string,
  opts: { cas?: number; timeoutMs?: number } = {},
): Promise<boolean> {
  const q = opts.cas === undefined ? "" : `?cas=${opts.cas}`;
  const r = await fetch(`${a.httpUrl}/v1/kv/${key}${q}`, {
    method: "PUT",
    body: value,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`PUT ${key}: ${r.status} ${text}`);
  return text.trim() === "true";
}

/** GET a KV value; null when absent. `mode` picks the consistency (default: the API's). */
export async function kvGet(
  a: AgentProc,
  key: string,
  opts: { mode?: "stale" | "consistent"; timeoutMs?: number } = {},
): Promise<{ value: string; index: number } | null> {
  const q = opts.mode ? `?${opts.mode}` : "";
  const r = await fetch(`${a.httpUrl}/v1/kv/${key}${q}`, {
    signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
  });
  if (r.status === 404) {
    await r.body?.cancel();
    return null;
  }
  const text = await r.text();
  if (!r.ok) throw new Error(`GET ${key}: ${r.status} ${text}`);
  const [e] = JSON.parse(text) as { Value: string | null; ModifyIndex: number }[];
  const value = e?.Value == null ? "" : new TextDecoder().decode(
    Uint8Array.from(atob(e.Value), (c) => c.charCodeAt(0)),
  );
  return { value, index: e!.ModifyIndex };
}

/** The leader's node name as one agent sees it (null when none). */
export async function leaderOf(a: AgentProc): Promise<string | null> {
  const s = await apiJson(a, "/v1/berth/status") as { leader: string | null };
  return s.leader;
}

// ---- partitions ----

/** Runs iptables (the tests run as root on a loopback-only machine); throws on failure. */
export async function iptables(...args: string[]): Promise<void> {
  const out = await new Deno.Command("iptables", { args, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`iptables ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** iptables rules that drop every cluster packet to or from member `cut` (its API stays up). */
export function partitionRules(cut: AgentProc, others: AgentProc[]): string[][] {
  const [, cutPort] = cut.clusterAddr.split(":");
  const rules = [["INPUT", "-p", "tcp", "-d", cut.host, "--dport", cutPort!, "-j", "DROP"]];
  for (const o of others) {
    const [host, port] = o.clusterAddr.split(":");
    rules.push(["INPUT", "-p", "tcp", "-s", cut.host, "-d", host!, "--dport", port!, "-j", "DROP"]);
  }
  return rules;
}
