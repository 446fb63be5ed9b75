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
 *   kill -9 the current leader, a random member, or every member at once (acknowledged writes
 *   must survive a crash of the whole cluster mid-write) and restart them (same node, data and
 *   ports) after `killDownMs`, or SIGSTOP a random member for `freezeMs` then SIGCONT.
 * - Start: waits until every member is a voter following one leader (`waitForVoters()`).
 * - Healing: after `durationMs` every member is thawed and restarted, the run waits until all
 *   members report the same leader and applied index, records one linearizable read of every
 *   key through every member, and collects every member's `?stale` read of every key.
 *
 * `runJepsen()` replaces restarted members in the `members` array it is given (so the caller's
 * cleanup reaches the live processes). One seed drives the nemesis schedule and every client's
 * choices; timing is real, so a seed replays the schedule, not the interleaving.
 *
 * The clients live in test/jepsen_client.ts, the nemesis and healing in test/jepsen_nemesis.ts;
 * this file runs them together.
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
import type { AgentProc } from "./harness.ts";
import { seededRandom } from "../raft/sim/prng.ts";
import { client, emptyCounts, type KvOperation, kvRead, type OpCounts } from "./jepsen_client.ts";
import {
  heal,
  HEAL_TIMEOUT_MS_DEFAULT,
  type Live,
  nemesis,
  note,
  waitForVoters,
} from "./jepsen_nemesis.ts";

export type { KvOperation, OpCounts } from "./jepsen_client.ts";
export { stopMembers, waitForVoters } from "./jepsen_nemesis.ts";

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
    crashes: true,
  });
  await Promise.all([
    nemesisDone,
    ...clientRandoms.map((random, id) =>
      client(id, members, { endAt, keys, timeoutMs, readQuery, random, history, counts })
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
