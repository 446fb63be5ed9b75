/**
 * A 3-member etcd cluster on 127.0.0.1-3 for the benches that put berth beside etcd (`bench kv`,
 * `bench contention`), and the etcd side of a write: v3's gRPC gateway (`POST /v3/kv/put`, JSON
 * with base64 key and value; the gateway path of etcd 3.4, which Debian's etcd-server ships).
 *
 * @module
 */
import { freePort, uniq } from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { errorText } from "../../src/lib/error_text.ts";

/** How long a 3-member etcd cluster may take to report healthy. */
const ETCD_START_TIMEOUT_MS = 30_000;

export interface EtcdCluster {
  clientUrls: string[];
  stop(): Promise<void>;
}

/** Starts `n` etcd members on 127.0.0.1..n with their data and logs (e*.log) in `dir`. */
export async function startEtcdCluster(dir: string, n: number): Promise<EtcdCluster> {
  const members = [];
  for (let i = 0; i < n; i++) {
    const host = `127.0.0.${i + 1}`;
    members.push({
      name: `e${i + 1}`,
      host,
      client: `http://${host}:${await freePort(host)}`,
      peer: `http://${host}:${await freePort(host)}`,
    });
  }
  const initial = members.map((m) => `${m.name}=${m.peer}`).join(",");
  const token = uniq("bench-");
  const procs = members.map((m) => {
    const log = Deno.openSync(`${dir}/${m.name}.log`, { create: true, append: true });
    const child = new Deno.Command("etcd", {
      args: [
        "--name",
        m.name,
        "--data-dir",
        `${dir}/${m.name}`,
        "--listen-client-urls",
        m.client,
        "--advertise-client-urls",
        m.client,
        "--listen-peer-urls",
        m.peer,
        "--initial-advertise-peer-urls",
        m.peer,
        "--initial-cluster",
        initial,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        token,
        "--logger",
        "zap",
        "--log-level",
        "warn",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const pump = child.stderr.pipeTo(log.writable).catch(() => {});
    return { child, pump };
  });
  const stop = async () => {
    for (const p of procs) {
      try {
        p.child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    await Promise.all(procs.map(async (p) => {
      await p.child.status;
      await p.pump;
    }));
  };
  try {
    for (const m of members) {
      await waitFor(`etcd ${m.name} healthy`, async () => {
        const r = await fetch(`${m.client}/health`, { signal: AbortSignal.timeout(1000) });
        const body = await r.json() as { health?: string };
        return body.health === "true";
      }, { timeoutMs: ETCD_START_TIMEOUT_MS, intervalMs: 100 });
    }
  } catch (e) {
    await stop();
    throw new Error(`${errorText(e)}; logs in ${dir}/e*.log`);
  }
  return { clientUrls: members.map((m) => m.client), stop };
}

/** The client URL of the member that leads now (from `/v3/maintenance/status` on each). */
export async function etcdLeaderUrl(etcd: EtcdCluster): Promise<string> {
  for (const url of etcd.clientUrls) {
    const r = await fetch(`${url}/v3/maintenance/status`, { method: "POST", body: "{}" });
    const s = await r.json() as { header?: { member_id?: string }; leader?: string };
    if (s.leader !== undefined && s.header?.member_id === s.leader) return url;
  }
  throw new Error("no etcd member says it leads");
}
