/**
 * The nemesis of the Jepsen-style workload (test/jepsen.ts) and the cluster under it: kill -9 the
 * leader, a random member, or every member at the same instant (whatever each was writing: the
 * log is written on a worker thread, so a kill lands mid-write) and restart them, SIGSTOP /
 * SIGCONT a member, cut a member off from the others with
 * iptables (when asked: `partitionMs`), SIGSTOP the leader for long (when asked:
 * `leaderFreezeMs`, longer than node-timeout + lock-delay: the others elect a leader, end the
 * frozen node's sessions and hand its lock on, then the old leader resumes with queued
 * requests; test/jepsen_lock.ts), heal (thaw, reconnect, restart, wait until every member
 * agrees), wait until every member is a voter, stop everything.
 *
 * @module
 */
import {
  type AgentProc,
  iptables,
  leaderOf,
  partitionRules,
  portsOf,
  signalAgent,
  startAgent,
  stopAll,
} from "./harness.ts";
import { sleep } from "./wait.ts";
import { errorText } from "../src/lib/error_text.ts";

/** How long healing may take until every member agrees. */
export const HEAL_TIMEOUT_MS_DEFAULT = 30_000;
/** Timeout of a nemesis or healing status query. */
const STATUS_TIMEOUT_MS = 1_000;
/** Attempts to restart a killed member before giving up. */
const RESTART_ATTEMPTS_MAX = 3;
/** Poll period while waiting for convergence. */
const CONVERGE_POLL_MS = 200;

/** The cluster under faults: which slots are down or frozen, and what happened when. */
export interface Live {
  members: AgentProc[];
  down: Set<number>;
  frozen: Set<number>;
  /** iptables rules of the partition in place (removed by the fault or by heal()). */
  cut?: string[][];
  args: string[];
  events: string[];
  log: (line: string) => void;
  t0: number;
}

export function note(live: Live, what: string): void {
  const line = `[${((performance.now() - live.t0) / 1000).toFixed(1)}s] ${what}`;
  live.events.push(line);
  live.log(line);
}

/** GET a JSON route on a member; null when it does not answer in time or answers an error. */
export async function jsonOrNull<T>(a: AgentProc, path: string): Promise<T | null> {
  try {
    const r = await fetch(`${a.httpUrl}${path}`, {
      signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
    });
    if (!r.ok) {
      await r.body?.cancel();
      return null;
    }
    return await r.json() as T;
  } catch {
    return null;
  }
}

export function statusOf(
  a: AgentProc,
): Promise<{ leader: string | null; appliedIndex: number; commitIndex: number } | null> {
  return jsonOrNull(a, "/v1/berth/status");
}

async function currentLeaderSlot(live: Live, random: () => number): Promise<number | null> {
  const up = live.members.map((_, i) => i).filter((i) => !live.down.has(i) && !live.frozen.has(i));
  const start = Math.floor(random() * up.length);
  for (let k = 0; k < up.length; k++) {
    const a = live.members[up[(start + k) % up.length]!]!;
    const name = await Promise.race([
      leaderOf(a).catch(() => null),
      sleep(STATUS_TIMEOUT_MS).then(() => null),
    ]);
    const slot = live.members.findIndex((m) => m.node === name);
    if (slot >= 0) return slot;
  }
  return null;
}

async function restart(live: Live, slot: number): Promise<void> {
  const old = live.members[slot]!;
  for (let attempt = 1;; attempt++) {
    try {
      live.members[slot] = await startAgent({
        node: old.node,
        dataDir: old.dataDir,
        host: old.host,
        ports: portsOf(old),
        bootstrap: false,
        docker: false,
        args: live.args,
      });
      live.down.delete(slot);
      note(live, `restarted ${old.node}`);
      return;
    } catch (e) {
      const first = errorText(e);
      note(live, `restart of ${old.node} failed (attempt ${attempt}): ${first}`);
      if (attempt >= RESTART_ATTEMPTS_MAX) throw e;
    }
  }
}

async function killLeader(live: Live, random: () => number, downMs: number): Promise<void> {
  let slot = await currentLeaderSlot(live, random);
  let what = "leader";
  if (slot === null) {
    slot = Math.floor(random() * live.members.length);
    what = "member (no leader known)";
  }
  const a = live.members[slot]!;
  note(live, `kill -9 ${what} ${a.node}`);
  live.down.add(slot);
  await a.kill();
  await sleep(downMs);
  await restart(live, slot);
}

/** kill -9 the members in `slots` at once, restart them together after `downMs`. */
async function killMembers(
  live: Live,
  slots: number[],
  what: string,
  downMs: number,
): Promise<void> {
  note(live, `kill -9 ${what} ${slots.map((s) => live.members[s]!.node).join(", ")}`);
  for (const s of slots) live.down.add(s);
  await Promise.all(slots.map((s) => live.members[s]!.kill()));
  await sleep(downMs);
  await Promise.all(slots.map((s) => restart(live, s)));
}

async function freeze(live: Live, random: () => number, freezeMs: number): Promise<void> {
  const slot = Math.floor(random() * live.members.length);
  const a = live.members[slot]!;
  note(live, `SIGSTOP ${a.node}`);
  live.frozen.add(slot);
  signalAgent(a, "SIGSTOP");
  await sleep(freezeMs);
  signalAgent(a, "SIGCONT");
  live.frozen.delete(slot);
  note(live, `SIGCONT ${a.node}`);
}

/** SIGSTOP of the leader (a random member when none is known) for `freezeMs`. */
async function freezeLeader(live: Live, random: () => number, freezeMs: number): Promise<void> {
  const slot = await currentLeaderSlot(live, random) ??
    Math.floor(random() * live.members.length);
  const a = live.members[slot]!;
  note(live, `SIGSTOP leader ${a.node} for ${freezeMs} ms`);
  live.frozen.add(slot);
  signalAgent(a, "SIGSTOP");
  await sleep(freezeMs);
  signalAgent(a, "SIGCONT");
  live.frozen.delete(slot);
  note(live, `SIGCONT ${a.node}`);
}

async function partition(live: Live, random: () => number, partitionMs: number): Promise<void> {
  const slot = Math.floor(random() * live.members.length);
  const a = live.members[slot]!;
  const others = live.members.filter((_, i) => i !== slot);
  note(live, `partition ${a.node} from the others`);
  live.cut = partitionRules(a, others);
  for (const r of live.cut) await iptables("-I", ...r);
  await sleep(partitionMs);
  await reconnect(live);
}

/** Removes the partition in place, if any. */
async function reconnect(live: Live): Promise<void> {
  const rules = live.cut ?? [];
  if (rules.length === 0) return;
  live.cut = [];
  for (const r of rules) await iptables("-D", ...r).catch(() => {});
  note(live, "partition healed");
}

export async function nemesis(
  live: Live,
  random: () => number,
  o: {
    endAt: number;
    intervalMs: number;
    killDownMs: number;
    freezeMs: number;
    /** > 0: partitions are a third fault, lasting this long. */
    partitionMs?: number;
    /** > 0: a long SIGSTOP of the leader is another fault, lasting this long. */
    leaderFreezeMs?: number;
    /** kill -9 of a random member and of every member at once are faults too. */
    crashes?: boolean;
  },
): Promise<void> {
  // Faults start every intervalMs (±25 %) from the start, or as soon as the previous one ends.
  const faults: { kind: string; ms: number }[] = [
    { kind: "kill", ms: o.killDownMs },
    { kind: "freeze", ms: o.freezeMs },
  ];
  if (o.crashes) {
    faults.push({ kind: "kill-any", ms: o.killDownMs }, { kind: "kill-all", ms: o.killDownMs });
  }
  if ((o.partitionMs ?? 0) > 0) faults.push({ kind: "partition", ms: o.partitionMs! });
  if ((o.leaderFreezeMs ?? 0) > 0) faults.push({ kind: "leader-freeze", ms: o.leaderFreezeMs! });
  let startAt = performance.now();
  for (;;) {
    startAt += o.intervalMs * (0.75 + 0.5 * random());
    const fault = faults[Math.floor(random() * faults.length)]!;
    const at = Math.max(startAt, performance.now());
    if (at + fault.ms > o.endAt) return;
    await sleep(Math.max(0, at - performance.now()));
    if (fault.kind === "kill") await killLeader(live, random, fault.ms);
    else if (fault.kind === "kill-any") {
      const slot = Math.floor(random() * live.members.length);
      await killMembers(live, [slot], "member", fault.ms);
    } else if (fault.kind === "kill-all") {
      await killMembers(live, live.members.map((_, i) => i), "every member:", fault.ms);
    } else if (fault.kind === "freeze") await freeze(live, random, fault.ms);
    else if (fault.kind === "partition") await partition(live, random, fault.ms);
    else await freezeLeader(live, random, fault.ms);
  }
}

export async function heal(live: Live, healTimeoutMs: number): Promise<boolean> {
  await reconnect(live);
  for (const slot of [...live.frozen]) {
    signalAgent(live.members[slot]!, "SIGCONT");
    live.frozen.delete(slot);
  }
  for (const slot of [...live.down]) await restart(live, slot);
  const deadline = performance.now() + healTimeoutMs;
  while (performance.now() < deadline) {
    const all = await Promise.all(live.members.map(statusOf));
    const first = all[0];
    if (
      first && first.leader !== null &&
      all.every((s) =>
        s !== null && s.leader === first.leader && s.appliedIndex === first.appliedIndex &&
        s.commitIndex === s.appliedIndex
      )
    ) {
      note(live, `converged: leader ${first.leader}, applied index ${first.appliedIndex}`);
      return true;
    }
    await sleep(CONVERGE_POLL_MS);
  }
  note(live, `members did not converge within ${healTimeoutMs} ms`);
  return false;
}

/**
 * Waits until every member is a voter and follows one leader. `startCluster()` resolves once the
 * first member lists everyone, while the others may still be learners (or not have heard the
 * join answer yet): killing the only voter then would stall the cluster for good.
 */
export async function waitForVoters(
  members: AgentProc[],
  opts: { timeoutMs?: number } = {},
): Promise<void> {
  const deadline = performance.now() + (opts.timeoutMs ?? HEAL_TIMEOUT_MS_DEFAULT);
  let last = "";
  while (performance.now() < deadline) {
    const statuses = await Promise.all(members.map(statusOf));
    const leader = statuses[0]?.leader ?? null;
    const slot = members.findIndex((m) => m.node === leader);
    const list = slot < 0 ? null : await membersOf(members[slot]!);
    last = JSON.stringify({ statuses, members: list });
    if (
      leader !== null && statuses.every((s) => s !== null && s.leader === leader) &&
      list !== null && list.length === members.length &&
      list.every((m) => m.role === "voter" && m.status === "alive")
    ) return;
    await sleep(CONVERGE_POLL_MS);
  }
  throw new Error(`members did not all become voters following one leader: ${last}`);
}

function membersOf(a: AgentProc): Promise<{ role: string; status: string }[] | null> {
  return jsonOrNull(a, "/v1/berth/members");
}

/** Thaws every member (a stopped process ignores SIGTERM), stops them, then kills leftovers. */
export async function stopMembers(members: AgentProc[]): Promise<void> {
  for (const a of members) signalAgent(a, "SIGCONT");
  await Promise.race([stopAll(members), sleep(10_000)]);
  await Promise.all(members.map((a) => a.kill().catch(() => {})));
}
