/**
 * `deno task chaos`: the Jepsen-style workload of test/jepsen.ts for as long as you like: a fresh
 * berth cluster on 127.0.0.1…127.0.0.N, clients doing get/put/cas while a nemesis kills the
 * leader or freezes members, then healing, a linearizability check of the whole history and a
 * comparison of every member's `?stale` reads.
 *
 * `--workload lock` runs test/jepsen_lock.ts instead: clients take one lock through sessions and
 * `?acquire` and work in critical sections while the nemesis also partitions members (iptables)
 * and freezes the leader for longer than node-timeout + lock-delay (7s; lock-delay 1s); the check
 * is that no two holders' sections overlapped, and it prints how many acquisitions it checked.
 * Its cluster marks a silent member down after 3s, so faults end sessions. Members run with
 * mutual TLS (the default), which the run checks and prints.
 *
 * Flags:
 *   --workload W       kv (default) or lock
 *   --seconds N        workload duration (default 120, 1…86400)
 *   --members 3|5      cluster size; all members are voters (default 3)
 *   --clients N        concurrent clients, bound round-robin to members (default 5, 1…64)
 *   --seed N           nemesis schedule and client choices (default random; printed)
 *   --check-seconds N  checker budget (default 120)
 *   --reads MODE       default | consistent | stale: the clients' read consistency (stale is not
 *                      linearizable: a way to see the checker catch an anomaly); kv only
 *
 * Exit status: 0 linearizable (lock: exclusive) and converged, 1 anomaly (not linearizable, two
 * lock holders at once, members disagree or do not converge), 2 bad flags, 3 the checker ran out
 * of time (inconclusive).
 *
 * @example
 * ```sh
 * deno task chaos --seconds 300 --members 5 --clients 10 --seed 7
 * ```
 *
 * @module
 */
import { type AgentProc, memberTls, startCluster } from "../test/harness.ts";
import { formatCounts, runJepsen, staleReadsAgree, stopMembers } from "../test/jepsen.ts";
import { checkMutualExclusion, runLockWorkload } from "../test/jepsen_lock.ts";
import { checkOperations, kvModel } from "../test/linearizability.ts";
import { errorText } from "../src/lib/error_text.ts";
import { parseFlags, parseIntIn } from "../src/lib/flags.ts";

const SECONDS_MAX = 86_400;
const CLIENTS_MAX = 64;
const SEED_MAX = 2 ** 31 - 1;

/** The lock workload's cluster: a member silent this long is down and its sessions end. */
const LOCK_NODE_TIMEOUT_S = 3;
/** The lock workload's lock-delay, short so that a leader frozen past it keeps runs bounded. */
const LOCK_DELAY_S = 1;
/** The lock workload's long leader freeze: past node-timeout + lock-delay, with a margin. */
const LEADER_FREEZE_MS = (LOCK_NODE_TIMEOUT_S + LOCK_DELAY_S) * 1000 + 3_000;

const FLAGS = ["seconds", "members", "clients", "seed", "check-seconds", "reads", "workload"].map((
  name,
) => ({
  name,
  kind: "string",
}));

function chaosFlags(argv: string[]) {
  const { values } = parseFlags(argv, FLAGS, { positionals: false });
  const int = (name: string, def: number, range: [number, number]): number => {
    const raw = values.get(name);
    if (raw === undefined) return def;
    try {
      return parseIntIn(raw, range);
    } catch (e) {
      throw new Error(
        `--${name} ${raw}: ${errorText(e)}; expected an integer in ${range.join("..")}`,
      );
    }
  };
  const members = int("members", 3, [3, 5]);
  if (members !== 3 && members !== 5) throw new Error(`--members ${members}: expected 3 or 5`);
  const reads = values.get("reads") ?? "default";
  if (reads !== "default" && reads !== "consistent" && reads !== "stale") {
    throw new Error(`--reads ${reads}: expected default, consistent or stale`);
  }
  const workload = values.get("workload") ?? "kv";
  if (workload !== "kv" && workload !== "lock") {
    throw new Error(`--workload ${workload}: expected kv or lock`);
  }
  return {
    workload: workload as "kv" | "lock",
    reads: reads as "default" | "consistent" | "stale",
    seconds: int("seconds", 120, [1, SECONDS_MAX]),
    members,
    clients: int("clients", 5, [1, CLIENTS_MAX]),
    seed: int("seed", Math.floor(Math.random() * SEED_MAX), [0, SEED_MAX]),
    checkSeconds: int("check-seconds", 120, [1, SECONDS_MAX]),
  };
}

let flags: ReturnType<typeof chaosFlags>;
try {
  flags = chaosFlags(Deno.args);
} catch (e) {
  console.error(`chaos: ${errorText(e)}`);
  Deno.exit(2);
}

console.log(
  `chaos: ${flags.workload} workload, ${flags.members} members, ${flags.clients} clients, ` +
    `${flags.seconds}s, ${flags.workload === "kv" ? `${flags.reads} reads, ` : ""}` +
    `seed ${flags.seed} (re-run the schedule with --seed ${flags.seed})`,
);
const args = ["--voters", String(flags.members)];
if (flags.workload === "lock") args.push("--node-timeout", `${LOCK_NODE_TIMEOUT_S}s`);
const members = await startCluster(flags.members, { args });
let code = 0;
try {
  const plain = members.filter((a) => !memberTls(a)).length;
  console.log(
    plain === 0
      ? "chaos: members talk mutual TLS (each holds its certificate of the cluster CA)"
      : `chaos: ${plain} of ${members.length} members talk plain TCP (no node.crt)`,
  );
  code = flags.workload === "kv" ? await kvWorkload(members) : await lockWorkload(members);
  if (code === 1) {
    console.log(`member logs: ${members.map((a) => a.logPath).join(" ")}`);
  }
} catch (e) {
  console.error(`chaos: ${errorText(e)}`);
  code = 1;
} finally {
  await stopMembers(members);
}
if (code === 0) { for (const a of members) Deno.removeSync(a.dataDir, { recursive: true }); }
Deno.exit(code);

async function kvWorkload(members: AgentProc[]): Promise<number> {
  let code = 0;
  const run = await runJepsen(members, {
    durationMs: flags.seconds * 1000,
    clients: flags.clients,
    seed: flags.seed,
    reads: flags.reads,
    args,
    log: (line) => console.log(line),
  });
  console.log(`ops: ${formatCounts(run.counts)}; history ${run.history.length} ops`);
  const t0 = performance.now();
  const result = checkOperations(kvModel, run.history, { timeoutMs: flags.checkSeconds * 1000 });
  const checkMs = (performance.now() - t0).toFixed(0);
  if (result.ok === true) {
    console.log(`linearizable: yes (checked in ${checkMs} ms)`);
  } else if (result.ok === "unknown") {
    console.log(`linearizable: unknown (checker budget of ${flags.checkSeconds}s spent)`);
    code = 3;
  } else {
    console.log(`linearizable: NO\n${result.explanation}`);
    code = 1;
  }
  const agree = staleReadsAgree(run);
  console.log(
    `converged: ${run.converged ? "yes" : "NO"}; stale reads agree: ${agree ? "yes" : "NO"}`,
  );
  if (!agree) console.log(JSON.stringify(Object.fromEntries(run.staleReads)));
  if (!run.converged || !agree) code = 1;
  return code;
}

async function lockWorkload(members: AgentProc[]): Promise<number> {
  const run = await runLockWorkload(members, {
    durationMs: flags.seconds * 1000,
    clients: flags.clients,
    seed: flags.seed,
    args,
    lockDelayS: LOCK_DELAY_S,
    leaderFreezeMs: LEADER_FREEZE_MS,
    log: (line) => console.log(line),
  });
  console.log(
    `lock: ${run.sections.length} critical sections in ${run.acquisitions} acquisitions, ` +
      `${run.refused} acquires refused, ${run.lost} holds lost, ${run.errors} failed requests`,
  );
  const result = checkMutualExclusion(run.sections);
  if (result.ok) {
    console.log(
      `mutual exclusion: yes (${result.acquisitions} acquisitions checked, ` +
        `${result.sections} sections)`,
    );
  } else {
    console.log(`mutual exclusion: NO\n${result.explanation}`);
  }
  console.log(`converged: ${run.converged ? "yes" : "NO"}`);
  return result.ok && run.converged ? 0 : 1;
}
