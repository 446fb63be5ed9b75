/**
 * `deno task bench`: berth beside the tools it replaces, in one run on this machine, reported as
 * ratios (machines are noisy; only side-by-side figures mean anything).
 *
 * What each part measures and how to choose: USAGE below (`deno task bench --help`).
 *
 * @module
 */
import { errorText } from "../src/lib/error_text.ts";
import { parseFlags, parseIntIn } from "../src/lib/flags.ts";
import {
  type BenchOptions,
  ensureTools,
  parseTlsChoice,
  ROOT,
  run,
  SECONDS,
} from "./bench/_shared.ts";
import { benchDns } from "./bench/dns.ts";
import { benchHttp } from "./bench/http.ts";
import { benchHttpFeatures } from "./bench/http_features.ts";
import { benchHttps } from "./bench/https.ts";
import { benchDocker } from "./bench/docker.ts";
import { benchKv } from "./bench/kv.ts";
import { benchFailover } from "./bench/failover.ts";
import { benchJoin } from "./bench/join.ts";
import { benchSessions } from "./bench/sessions.ts";
import { benchLock } from "./bench/lock.ts";
import { benchScale } from "./bench/scale.ts";
import { benchBulk } from "./bench/bulk.ts";
import { benchContention } from "./bench/contention.ts";
import { benchIsolation } from "./bench/isolation.ts";
import { stopEverything } from "./bench/_proc.ts";

/** What `--help` prints. */
const USAGE =
  `berth bench: berth beside the tools it replaces, side by side on this machine, as ratios.

  dns     dnsperf -c 4 (-v: per-query latencies): berth's DNS at its defaults and at
          --dns-workers 1 vs dnsmasq answering the same name from a hosts file; q/s, p50/p99,
          dnsperf's CPU and each side's (env BENCH_DNS_CLIENTS)
  http    wrk -t1 -c32 --latency, each side with an nginx backend of its own: berth's HTTP
          proxy at its defaults vs nginx worker_processes auto and HAProxy nbthread = cores;
          --proxy-workers 1 vs nginx 1 worker and HAProxy 1 thread; pinned with taskset,
          berth at 1 and 2 workers vs nginx at 1 and 2 workers on the same cores (-c 0, -c 0,1);
          req/s, p50/p99, wrk's CPU and each side's (env BENCH_HTTP_THREADS,
          BENCH_HTTP_CONNECTIONS)
  http-features  what the access log and three route middlewares cost, berth at its defaults
          beside nginx worker_processes auto with the equivalent config, each its own nginx
          backend, wrk -t1 -c32 --latency: baseline; access log on (JSON lines to a file;
          nginx access_log with a JSON log_format, buffer=64k); basic auth (bcrypt, cost 5) +
          headers (request set, response set and remove) + compression configured but not
          applied (no Accept-Encoding; nginx also with an {SSHA} password: it runs bcrypt per
          request, berth remembers verdicts); req/s, p50/p99, variant/baseline per side and
          berth/nginx per variant; a feature this build lacks is left out, saying so (env
          BENCH_HTTP_FEATURES_EACH=1: also each middleware alone, and compression applied)
  https   berth's HTTPS listener vs nginx and HAProxy with the same ECDSA P-256 certificate,
          each with its own nginx backend: kept-alive HTTPS req/s (wrk), new connections with
          a full TLS handshake/s (curl), HTTP/2 req/s (h2load); p99 and ratios; then ACME:
          \`docker run\` of a berth.tls=acme service → its certificate from pebble served by
          every member of a 3-member cluster (median, range, time to the route)
  docker  time from \`docker run\` returning to the name answering in berth's DNS (20 runs)
  raft    raft/ in-process commit throughput (see scripts/raft_bench.ts)
  kv      KV writes/s, p50, p99: a 3-member berth cluster vs a 3-member etcd cluster on
          127.0.0.1-3, 256-byte values, 1/16/128 clients; driven by an in-process client
          (writes round-robin over all members) and by wrk to each leader (env
          BENCH_KV_CLIENT=deno|wrk for one of them)
  failover  kill -9 the leader of a 3-member cluster: time to the first write through a
          survivor (10 rounds, the killed member restarts and catches up between rounds)
  join    spawn of \`berth agent --join\` → the new member listed and caught up (10 rounds)
  sessions  Consul sessions created/s and renewed/s on a 3-member cluster (16 clients)
  lock    kill -9 a lock holder's member: time to another member's client acquiring the lock
          (10 rounds holder on a follower, 10 on the leader; session TTL 10s, lock-delay 15s;
          fails if ever under the lock-delay)
  scale   100,000 instances in 1,000 services registered through the API of a 3-member cluster
          (32 clients): registrations/s per 10,000 (last vs first), worst event-loop pause,
          RSS per member after the load and after a forced GC, DNS/proxy/API latency at 100 vs
          at the end, a new member's time to its first DNS answer
  bulk    the bulk paths, each with the worst pause of a 1 ms timer and DNS p99 meanwhile:
          500 containers reconciled on a real Docker engine; a member joining a 3-member
          cluster of --instances (100,000) instances; a lagging member installing a snapshot
          of that size (env BULK_CONTAINERS, BULK_DOCKER_CLIENTS, BULK_CLIENTS)
  contention  on the leader of a 3-member cluster, idle vs while wrk saturates its HTTP proxy
          (nginx backend): DNS p50/p99 (dnsperf, 500 q/s), KV PUT p50/p99 (wrk -c 1), the
          worst lateness of a 1 ms timer; ratios (goal: DNS p99 loaded <= 1.5x idle);
          members talk mutual TLS unless --tls off
  isolation  the leader of a 3-member cluster with its proxy (wrk -t1 -c32) and DNS (dnsperf
          -c4) saturated for BENCH_ISOLATION_SECONDS (default 20) after an idle quarter of
          that: elections (term/leader changes), heartbeat gaps seen by the followers vs the
          election timeout, the leader's API p50/p99/max (reads and raft writes), its event
          loop; a verdict line (members talk mutual TLS unless --tls off)

Usage: deno task bench [--help] [--tls both|on|off] [--instances N] [--max-minutes M] [PART...]
       (default: every part)
\`--tls\`: kv, failover and join measure a berth cluster with mutual TLS (on), one with
\`--dev --tls off\` (off), or both side by side with TLS/plain ratios (both, the default).
\`--instances\` (default 100000) and \`--max-minutes\` (default 40, then it measures what it
reached): the scale and bulk parts' size and time bound.
Env: BENCH_SECONDS (default 10) per measured run.
`;

async function benchRaft(): Promise<void> {
  console.log(await run(Deno.execPath(), ["run", "--allow-all", `${ROOT}scripts/raft_bench.ts`]));
}

const all: Record<string, (o: BenchOptions) => Promise<void>> = {
  dns: benchDns,
  http: benchHttp,
  "http-features": benchHttpFeatures,
  https: benchHttps,
  docker: benchDocker,
  raft: benchRaft,
  kv: benchKv,
  failover: benchFailover,
  join: benchJoin,
  sessions: benchSessions,
  lock: benchLock,
  scale: benchScale,
  bulk: benchBulk,
  contention: benchContention,
  isolation: benchIsolation,
};
let parts: string[];
let options: BenchOptions;
try {
  const flags = parseFlags(Deno.args, [
    { name: "tls", kind: "MODE" },
    { name: "instances", kind: "N" },
    { name: "max-minutes", kind: "M" },
    { name: "help", kind: "bool" },
  ]);
  if (flags.values.has("help")) {
    console.log(USAGE);
    Deno.exit(0);
  }
  parts = flags.positionals;
  const int = (name: string, dflt: number, max: number) => {
    const v = flags.values.get(name);
    if (v === undefined) return dflt;
    try {
      return parseIntIn(v, [1, max]);
    } catch (e) {
      throw new Error(`--${name} ${v.slice(0, 20)}: ${errorText(e)}; expected 1..${max}`);
    }
  };
  options = {
    tls: parseTlsChoice(flags.values.get("tls") ?? "both"),
    scale: {
      instances: int("instances", 100_000, 10_000_000),
      maxMinutes: int("max-minutes", 40, 24 * 60),
    },
  };
} catch (e) {
  console.error(
    `bench: ${errorText(e)} (arguments: [--tls both|on|off] and parts: ` +
      `${Object.keys(all).join(", ")}; see --help)`,
  );
  Deno.exit(2);
}
const chosen = parts.length > 0 ? parts : Object.keys(all);
for (const name of chosen) {
  if (!(name in all)) {
    console.error(`bench: unknown part "${name}" (one of ${Object.keys(all).join(", ")})`);
    Deno.exit(2);
  }
}
await ensureTools();
// Interrupted: stop the servers and agents a part started (they are not this process's threads).
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    console.error(`bench: ${signal}, stopping what was started`);
    stopEverything().finally(() => Deno.exit(130));
  });
}
console.log(
  `berth bench, ${SECONDS}s per run, ${new Date().toISOString()}, ` +
    `deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, load average ` +
    Deno.loadavg().map((x) => x.toFixed(1)).join(" "),
);
for (const name of chosen) {
  try {
    await all[name]!(options);
  } catch (e) {
    console.error(`bench ${name}: ${errorText(e)}`);
    Deno.exitCode = 1;
  }
}
