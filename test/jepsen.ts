/**
 * A Jepsen-style workload and nemesis against a real berth cluster, shared by
 * test/e2e_linearizability_test.ts (bounded, in CI) and scripts/chaos.ts (long runs by hand).
 *
 * - Clients: `clients` concurrent clients, client `i` bound to member `i % members.length`
 *   (it keeps talking to that slot, also while the member there is down or frozen). Each does
 *   random get / put / cas on `keys` keys through the Consul KV API with `clientTimeoutMs`:
 *   - get: `GET /v1/kv/KEY` (default consistency: ReadIndex) → `{ value }`; a failed get is
 *     dropped (it observed nothing).
 *   - put: `PUT /v1/kv/KEY` with a unique value `${clientId}-${seq}` → `{ ok: true }`.
 *   - cas: a get (recorded as its own op), then `PUT ?cas=ModifyIndex` (0 when absent) with a new
 *     unique value, recorded as `cas { expect: value read, value }` → `{ ok: true|false }`.
 *   A write that times out or fails with anything but a 4xx has an unknown outcome
 *   (`{ unknown: true }`); a 4xx surely changed nothing and is not recorded.
 * - Nemesis: a fault starts every `nemesisIntervalMs` (±25 %, from the seed; later if the previous
 *   one is still going: never two at once):
 *   kill -9 the current leader and restart it (same node, data and ports) after `killDownMs`,
 *   or SIGSTOP a random member for `freezeMs` then SIGCONT.
 * - Start: waits until every member is a voter following one leader (`waitForVoters()`).
 * - Healing: after `durationMs` every member is thawed and restarted, the run waits until all
 *   members report the same leader and applied index, records one linearizable read of every
 *   key through every member, and collects every member's `?stale` read of every key.
 *
 * `runJepsen()` replaces restarted members in the `members` array it is given (so the caller's
 * cleanup reaches the live processes). One seed drives the nemesis schedule and every client's
 * choices; timing is real, so a seed replays the schedule, not the interleaving.
 *
 * @example
 * ```ts
 * const members = await startCluster(3);
 * try {
 *   const run = await runJepsen(members, { durationMs: 20_000, seed: 42 });
 *   console.log(formatCounts(run.counts), checkOperations(kvModel, run.history));
 * } finally {
 *   await stopMembers(members);
 * }
 * ```
 *
 * @module
 */
import { type AgentProc, leaderOf, portsOf, signalAgent, startAgent, stopAll } from "./harness.ts";
import type { KvInput, KvOutput, Operation } from "./linearizability.ts";
import { sleep } from "./wait.ts";
import { errorText } from "../src/lib/error_text.ts";
import { seededRandom } from "../raft/sim/prng.ts";

export type KvOperation = Operation<KvInput, KvOutput>;

/** Per-request client timeout. */
export const CLIENT_TIMEOUT_MS_DEFAULT = 3_000;
/** Mean time between two faults. */
export const NEMESIS_INTERVAL_MS_DEFAULT = 4_000;
/** How long a killed leader stays down before its restart. */
export const KILL_DOWN_MS_DEFAULT = 2_000;
/** How long a frozen member stays frozen. */
export const FREEZE_MS_DEFAULT = 3_000;
export const KEYS_DEFAULT = 3;
export const CLIENTS_DEFAULT = 5;
/** Pause of a client after a failed request (bounds unknown outcomes while a member is down). */
export const ERROR_BACKOFF_MS = 200;
/** Upper bound of a client's random pause between two operations. */
export const THINK_MS_MAX = 5;
/** Operations one client performs at most (bounds the history the checker must search). */
export const CLIENT_OPS_MAX = 20_000;
/** How long healing may take until every member agrees. */
export const HEAL_TIMEOUT_MS_DEFAULT = 30_000;
/** Timeout of a nemesis or healing status query. */
const STATUS_TIMEOUT_MS = 1_000;
/** Attempts to restart a killed member before giving up. */
const RESTART_ATTEMPTS_MAX = 3;
/** Poll period while waiting for convergence. */
const CONVERGE_POLL_MS = 200;

export interface JepsenOptions {
  /** Client workload duration (default 20 s). */
  durationMs?: number;
  /** Concurrent clients (default `CLIENTS_DEFAULT`). */
  clients?: number;
  /** Keys the clients share (default `KEYS_DEFAULT`). */
  keys?: number;
  /** Seed of the nemesis schedule and the clients' choices (default: random). */
  seed?: number;
  clientTimeoutMs?: number;
  nemesisIntervalMs?: number;
  killDownMs?: number;
  freezeMs?: number;
  healTimeoutMs?: number;
  /** Flags a restarted member gets (the cluster's `args`). */
  args?: string[];
  /** Key prefix (default `jepsen/`). */
  prefix?: string;
  /**
   * Consistency of the clients' reads (default `"default"`: ReadIndex). `"stale"` reads the
   * local replica, which is not linearizable: use it to see the checker catch stale reads.
   */
  reads?: "default" | "consistent" | "stale";
  /** Progress lines (nemesis events, healing); default silent. */
  log?: (line: string) => void;
}

export interface OpCounts {
  /** Operations with a definite outcome (get with a value, put ok, cas ok or failed). */
  ok: number;
  gets: number;
  puts: number;
  casOk: number;
  casFailed: number;
  /** Writes with an unknown outcome. */
  unknown: number;
  /** Gets that failed (dropped) and writes that surely failed (4xx, not recorded). */
  failed: number;
}

export interface JepsenRun {
  seed: number;
  /** Every recorded operation (call/return from performance.now(); `kvModel` normalizes unknowns). */
  history: KvOperation[];
  counts: OpCounts;
  /** Nemesis and healing events, in order. */
  events: string[];
  /** After healing: key → each member's `?stale` value (null: absent; undefined: no answer). */
  staleReads: Map<string, (string | null | undefined)[]>;
  /** Whether every member reported the same leader and applied index before the deadline. */
  converged: boolean;
}

// ---------------------------------------------------------------------------------------------
// The KV client

type Outcome<T> = { kind: "ok"; value: T } | { kind: "failed" } | { kind: "unknown" };

async function kvRead(
  a: AgentProc,
  key: string,
  timeoutMs: number,
  mode = "",
): Promise<Outcome<{ value: string | null; index: number }>> {
  try {
    const r = await fetch(`${a.httpUrl}/v1/kv/${key}${mode}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (r.status === 404) {
      await r.body?.cancel();
      return { kind: "ok", value: { value: null, index: 0 } };
    }
    const text = await r.text();
    if (r.status !== 200) return { kind: r.status < 500 ? "failed" : "unknown" };
    const [e] = JSON.parse(text) as { Value: string | null; ModifyIndex: number }[];
    if (e === undefined) return { kind: "unknown" };
    const value = e.Value === null
      ? ""
      : new TextDecoder().decode(Uint8Array.from(atob(e.Value), (c) => c.charCodeAt(0)));
    return { kind: "ok", value: { value, index: e.ModifyIndex } };
  } catch {
    return { kind: "unknown" };
  }
}

async function kvWrite(
  a: AgentProc,
  key: string,
  value: string,
  opts: { cas?: number; timeoutMs: number },
): Promise<Outcome<boolean>> {
  try {
    const q = opts.cas === undefined ? "" : `?cas=${opts.cas}`;
    const r = await fetch(`${a.httpUrl}/v1/kv/${key}${q}`, {
      method: "PUT",
      body: value,
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    const text = (await r.text()).trim();
    if (r.status === 200 && (text === "true" || text === "false")) {
      return { kind: "ok", value: text === "true" };
    }
    // A 4xx was refused before (or at) apply without changing anything; anything else may
    // have been committed.
    return { kind: r.status >= 400 && r.status < 500 ? "failed" : "unknown" };
  } catch {
    return { kind: "unknown" };
  }
}

// ---------------------------------------------------------------------------------------------
// The cluster under faults

interface Live {
  members: AgentProc[];
  down: Set<number>;
  frozen: Set<number>;
  args: string[];
  events: string[];
  log: (line: string) => void;
  t0: number;
}

function note(live: Live, what: string): void {
  const line = `[${((performance.now() - live.t0) / 1000).toFixed(1)}s] ${what}`;
  live.events.push(line);
  live.log(line);
}

/** GET a JSON route on a member; null when it does not answer in time or answers an error. */
async function jsonOrNull<T>(a: AgentProc, path: string): Promise<T | null> {
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

function statusOf(
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

async function nemesis(
  live: Live,
  random: () => number,
  o: { endAt: number; intervalMs: number; killDownMs: number; freezeMs: number },
): Promise<void> {
  // Faults start every intervalMs (±25 %) from the start, or as soon as the previous one ends.
  let startAt = performance.now();
  for (;;) {
    startAt += o.intervalMs * (0.75 + 0.5 * random());
    const kill = random() < 0.5;
    const faultMs = kill ? o.killDownMs : o.freezeMs;
    const at = Math.max(startAt, performance.now());
    if (at + faultMs > o.endAt) return;
    await sleep(at - performance.now());
    if (kill) await killLeader(live, random, o.killDownMs);
    else await freeze(live, random, o.freezeMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Clients

function emptyCounts(): OpCounts {
  return { ok: 0, gets: 0, puts: 0, casOk: 0, casFailed: 0, unknown: 0, failed: 0 };
}

async function client(
  id: number,
  live: Live,
  o: {
    endAt: number;
    keys: string[];
    timeoutMs: number;
    readQuery: string;
    random: () => number;
    history: KvOperation[];
    counts: OpCounts;
  },
): Promise<void> {
  const slot = id % live.members.length;
  let seq = 0;
  for (let n = 0; n < CLIENT_OPS_MAX && performance.now() < o.endAt; n++) {
    const a = live.members[slot]!;
    const key = o.keys[Math.floor(o.random() * o.keys.length)]!;
    const dice = o.random();
    let good = true;
    if (dice < 0.7) {
      // get (alone, or as the first half of a cas)
      const call = performance.now();
      const read = await kvRead(a, key, o.timeoutMs, o.readQuery);
      const ret = performance.now();
      if (read.kind !== "ok") {
        o.counts.failed++;
        good = false;
      } else {
        o.history.push({
          clientId: id,
          input: { key, op: "get" },
          call,
          output: { value: read.value.value },
          return: ret,
        });
        o.counts.ok++;
        o.counts.gets++;
        if (dice >= 0.4 && performance.now() < o.endAt) {
          good = await write(id, a, key, `${id}-${++seq}`, read.value, o);
        }
      }
    } else {
      good = await write(id, a, key, `${id}-${++seq}`, undefined, o);
    }
    await sleep(good ? Math.floor(o.random() * THINK_MS_MAX) : ERROR_BACKOFF_MS);
  }
}

/** A put (`read` undefined) or a cas against what `read` saw; records it; returns success. */
async function write(
  id: number,
  a: AgentProc,
  key: string,
  value: string,
  read: { value: string | null; index: number } | undefined,
  o: { timeoutMs: number; history: KvOperation[]; counts: OpCounts },
): Promise<boolean> {
  const input: KvInput = read === undefined
    ? { key, op: "put", value }
    : { key, op: "cas", expect: read.value, value };
  const call = performance.now();
  const r = await kvWrite(a, key, value, { cas: read?.index, timeoutMs: o.timeoutMs });
  const ret = performance.now();
  if (r.kind === "failed") {
    o.counts.failed++;
    return false;
  }
  if (r.kind === "unknown") {
    o.history.push({ clientId: id, input, call, output: { unknown: true }, return: ret });
    o.counts.unknown++;
    return false;
  }
  if (read === undefined && !r.value) {
    // A plain put never answers false; treat it as not understood.
    o.history.push({ clientId: id, input, call, output: { unknown: true }, return: ret });
    o.counts.unknown++;
    return false;
  }
  o.history.push({ clientId: id, input, call, output: { ok: r.value }, return: ret });
  o.counts.ok++;
  if (read === undefined) o.counts.puts++;
  else if (r.value) o.counts.casOk++;
  else o.counts.casFailed++;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Healing

async function heal(live: Live, healTimeoutMs: number): Promise<boolean> {
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
 * Runs clients and the nemesis against `members` (a running cluster), heals it and collects
 * the history. See the module doc. Replaces restarted members inside `members`.
 */
export async function runJepsen(
  members: AgentProc[],
  opts: JepsenOptions = {},
): Promise<JepsenRun> {
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const master = seededRandom(seed);
  const nemesisRandom = seededRandom(Math.floor(master() * 2 ** 32));
  const clients = opts.clients ?? CLIENTS_DEFAULT;
  const clientRandoms = Array.from(
    { length: clients },
    () => seededRandom(Math.floor(master() * 2 ** 32)),
  );
  const prefix = opts.prefix ?? "jepsen/";
  const keys = Array.from({ length: opts.keys ?? KEYS_DEFAULT }, (_, i) => `${prefix}k${i}`);
  const timeoutMs = opts.clientTimeoutMs ?? CLIENT_TIMEOUT_MS_DEFAULT;
  const readQuery = opts.reads === undefined || opts.reads === "default" ? "" : `?${opts.reads}`;
  await waitForVoters(members);
  const live: Live = {
    members,
    down: new Set(),
    frozen: new Set(),
    args: opts.args ?? [],
    events: [],
    log: opts.log ?? (() => {}),
    t0: performance.now(),
  };
  const endAt = live.t0 + (opts.durationMs ?? 20_000);
  const history: KvOperation[] = [];
  const counts = emptyCounts();
  note(live, `seed ${seed}: ${clients} clients, ${keys.length} keys, ${members.length} members`);

  const nemesisDone = nemesis(live, nemesisRandom, {
    endAt,
    intervalMs: opts.nemesisIntervalMs ?? NEMESIS_INTERVAL_MS_DEFAULT,
    killDownMs: opts.killDownMs ?? KILL_DOWN_MS_DEFAULT,
    freezeMs: opts.freezeMs ?? FREEZE_MS_DEFAULT,
  });
  await Promise.all([
    nemesisDone,
    ...clientRandoms.map((random, id) =>
      client(id, live, { endAt, keys, timeoutMs, readQuery, random, history, counts })
    ),
  ]);
  note(live, `workload done: ${formatCounts(counts)}`);

  const converged = await heal(live, opts.healTimeoutMs ?? HEAL_TIMEOUT_MS_DEFAULT);
  // One linearizable read of every key through every member, after every write ended.
  for (const [i, a] of members.entries()) {
    for (const key of keys) {
      const call = performance.now();
      const read = await kvRead(a, key, timeoutMs);
      const ret = performance.now();
      if (read.kind !== "ok") continue;
      history.push({
        clientId: clients + i,
        input: { key, op: "get" },
        call,
        output: { value: read.value.value },
        return: ret,
      });
    }
  }
  const staleReads = new Map<string, (string | null | undefined)[]>();
  for (const key of keys) {
    staleReads.set(
      key,
      await Promise.all(members.map(async (a) => {
        const r = await kvRead(a, key, timeoutMs, "?stale");
        return r.kind === "ok" ? r.value.value : undefined;
      })),
    );
  }
  return { seed, history, counts, events: live.events, staleReads, converged };
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

/** Whether every member's stale read of every key is the same (and answered). */
export function staleReadsAgree(run: JepsenRun): boolean {
  for (const values of run.staleReads.values()) {
    if (values.some((v) => v === undefined || v !== values[0])) return false;
  }
  return true;
}

export function formatCounts(c: OpCounts): string {
  return `${c.ok} ok (${c.gets} get, ${c.puts} put, ${c.casOk} cas ok, ${c.casFailed} cas ` +
    `failed), ${c.unknown} unknown, ${c.failed} failed`;
}

/** Thaws every member (a stopped process ignores SIGTERM), stops them, then kills leftovers. */
export async function stopMembers(members: AgentProc[]): Promise<void> {
  for (const a of members) signalAgent(a, "SIGCONT");
  await Promise.race([stopAll(members), sleep(10_000)]);
  await Promise.all(members.map((a) => a.kill().catch(() => {})));
}
