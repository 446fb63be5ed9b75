/**
 * The lock workload of the chaos suite (`deno task chaos --workload lock`): mutual exclusion
 * through Consul sessions and `?acquire`, under the nemesis of test/jepsen_nemesis.ts (kill -9 of
 * the leader, SIGSTOP, partitions).
 *
 * - Clients: client `i` is bound to member `i % members.length`. It creates a session there
 *   (TTL `ttlS`, LockDelay `lockDelayS`, Behavior `release`; the session also ends when that
 *   member is marked down), tries `PUT ?acquire` on one key, and once it holds the key works in
 *   short critical sections: before each one it renews the session, and it enters only if the
 *   section ends within `lockDelayS` of the moment that renewal was *sent*. It then releases
 *   (`?release`) and starts over; a failed renewal ends its hold at once (no more sections).
 * - Why that bound is safe: a renewal the leader accepted at time t means the session was alive
 *   at t; whatever invalidates it later (TTL, node down, a check), the key refuses every other
 *   session for the lock-delay after that, so no one else can hold it before t + lock-delay.
 *   An explicit `?release` needs no delay: the holder stopped its sections before sending it.
 * - With `leaderFreezeMs` the nemesis also freezes the leader for longer than node-timeout +
 *   lock-delay, and the clients wait that long (plus a margin) for an answer instead of
 *   LOCK_CLIENT_TIMEOUT_MS, and a holder renews on a timer (every RENEW_EVERY_MS, not waiting
 *   for the previous answer): renewals sent to the frozen leader after the others ended its
 *   session are answered when it resumes, where a leader that answered from its stale state
 *   without confirming its leadership would let two holders overlap.
 * - Checker: every critical section is an interval `[enter, exit]` on this process's clock
 *   (all clients run here); sections of different acquisitions must not overlap.
 *
 * @module
 */
import type { AgentProc } from "./harness.ts";
import { seededRandom } from "../raft/sim/prng.ts";
import {
  heal,
  HEAL_TIMEOUT_MS_DEFAULT,
  type Live,
  nemesis,
  note,
  waitForVoters,
} from "./jepsen_nemesis.ts";
import { sleep } from "./wait.ts";

/** The key the clients contend for. */
export const LOCK_KEY = "chaos/lock";
/** Session TTL of a client, seconds (Consul's minimum). */
export const LOCK_TTL_S_DEFAULT = 10;
/** Lock-delay of a client's session, seconds. */
export const LOCK_DELAY_S_DEFAULT = 3;
/** Per-request timeout of a client. */
export const LOCK_CLIENT_TIMEOUT_MS = 2_000;
/** Length of one critical section. */
export const SECTION_MS = 30;
/** Most critical sections in one hold before the client releases. */
export const SECTIONS_PER_HOLD_MAX = 8;
/** With a long leader freeze: a holder's renewal period (renewals on a timer). */
export const RENEW_EVERY_MS = 200;
/** Pause after a refused acquire or a failed request. */
export const LOCK_BACKOFF_MS = 100;

export interface LockWorkloadOptions {
  durationMs: number;
  clients: number;
  seed: number;
  /** Flags a restarted member gets (the cluster's). */
  args: string[];
  ttlS?: number;
  lockDelayS?: number;
  nemesisIntervalMs?: number;
  killDownMs?: number;
  freezeMs?: number;
  partitionMs?: number;
  /** > 0: the nemesis also freezes the leader this long (module doc). */
  leaderFreezeMs?: number;
  healTimeoutMs?: number;
  log?: (line: string) => void;
}

/** One critical section: who held the lock (acquisition number) and when it worked. */
export interface Section {
  client: number;
  acquisition: number;
  enter: number;
  exit: number;
}

export interface LockRun {
  sections: Section[];
  /** Acquisitions that held at least one critical section. */
  acquisitions: number;
  /** Acquire attempts refused (held by another, or within a lock-delay). */
  refused: number;
  /** Holds that ended because a renewal failed (session gone or agent unreachable). */
  lost: number;
  /** Requests that failed or timed out. */
  errors: number;
  events: string[];
  converged: boolean;
}

type Counts = Pick<LockRun, "refused" | "lost" | "errors">;

/** A PUT through member `a`: the body text, or null when it failed, timed out or was not 200. */
async function putTo(
  a: AgentProc,
  path: string,
  body = "",
  timeoutMs = LOCK_CLIENT_TIMEOUT_MS,
): Promise<string | null> {
  try {
    const r = await fetch(`${a.httpUrl}${path}`, {
      method: "PUT",
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await r.text();
    return r.status === 200 ? text : null;
  } catch {
    return null;
  }
}

interface ClientState {
  id: number;
  live: Live;
  endAt: number;
  ttlS: number;
  lockDelayMs: number;
  timeoutMs: number;
  /** > 0: renewals on a timer this often while holding (holdRenewingOnTimer); 0: one before each section. */
  renewEveryMs: number;
  random: () => number;
  sections: Section[];
  nextAcquisition: () => number;
  counts: Counts;
}

async function lockClient(c: ClientState): Promise<void> {
  const member = () => c.live.members[c.id % c.live.members.length]!;
  const put = (a: AgentProc, path: string, body = "") => putTo(a, path, body, c.timeoutMs);
  let session: string | null = null;
  while (performance.now() < c.endAt) {
    if (session === null) {
      const body = JSON.stringify({
        Name: `chaos-${c.id}`,
        TTL: `${c.ttlS}s`,
        LockDelay: `${c.lockDelayMs / 1000}s`,
        Behavior: "release",
      });
      const text = await put(member(), "/v1/session/create", body);
      session = text === null ? null : (JSON.parse(text) as { ID: string }).ID;
      if (session === null) {
        c.counts.errors++;
        await sleep(LOCK_BACKOFF_MS);
        continue;
      }
    }
    const sent = performance.now();
    const acquired = await put(member(), `/v1/kv/${LOCK_KEY}?acquire=${session}`, `${c.id}`);
    if (acquired === null) {
      c.counts.errors++;
      session = null; // maybe gone; a new one costs little
      await sleep(LOCK_BACKOFF_MS);
      continue;
    }
    if (acquired.trim() !== "true") {
      c.counts.refused++;
      await sleep(LOCK_BACKOFF_MS * (0.5 + c.random()));
      continue;
    }
    // Held since some time after `sent`; the session was alive when the acquire was sent.
    const acquisition = c.nextAcquisition();
    let validUntil = sent + c.lockDelayMs;
    const holds = 1 + Math.floor(c.random() * SECTIONS_PER_HOLD_MAX);
    let held = true;
    if (c.renewEveryMs > 0) {
      held = await holdRenewingOnTimer(c, { session, acquisition, sent, holds, put, member });
      if (!held) {
        c.counts.lost++;
        session = null;
      }
    }
    for (let i = 0; i < holds && held && c.renewEveryMs === 0; i++) {
      const renewSent = performance.now();
      if (await put(member(), `/v1/session/renew/${session}`) === null) {
        c.counts.lost++;
        held = false;
        session = null;
        break;
      }
      validUntil = renewSent + c.lockDelayMs;
      const enter = performance.now();
      if (enter + SECTION_MS > validUntil) continue; // the renewal took too long: not safe
      await sleep(SECTION_MS);
      c.sections.push({ client: c.id, acquisition, enter, exit: performance.now() });
    }
    if (held) {
      if (await put(member(), `/v1/kv/${LOCK_KEY}?release=${session}`) === null) {
        c.counts.errors++;
        session = null;
      }
    }
    await sleep(LOCK_BACKOFF_MS * c.random());
  }
  if (session !== null) await put(member(), `/v1/session/destroy/${session}`);
}

/**
 * One hold with a renewal sent every `renewEveryMs` whether or not the previous one was answered
 * (a timer-driven renewer): renewals queue up at a frozen member and are all answered when it
 * resumes. A section is entered only within the lock-delay of the send time of a renewal answered
 * 200; the first failed renewal ends the hold (false).
 */
async function holdRenewingOnTimer(
  c: ClientState,
  h: {
    session: string;
    acquisition: number;
    sent: number;
    holds: number;
    put: (a: AgentProc, path: string) => Promise<string | null>;
    member: () => AgentProc;
  },
): Promise<boolean> {
  let confirmedSent = h.sent;
  let failed = false;
  let holding = true;
  const inflight: Promise<void>[] = [];
  const renewer = (async () => {
    while (holding && !failed) {
      const at = performance.now();
      inflight.push(
        h.put(h.member(), `/v1/session/renew/${h.session}`).then((r) => {
          if (r === null) failed = true;
          else confirmedSent = Math.max(confirmedSent, at);
        }),
      );
      await sleep(c.renewEveryMs);
    }
  })();
  let entered = 0;
  while (entered < h.holds && !failed && performance.now() < c.endAt) {
    const enter = performance.now();
    if (enter + SECTION_MS > confirmedSent + c.lockDelayMs) {
      await sleep(c.renewEveryMs / 4); // not confirmed recently enough: wait for a renewal
      continue;
    }
    await sleep(SECTION_MS);
    c.sections.push({ client: c.id, acquisition: h.acquisition, enter, exit: performance.now() });
    entered++;
  }
  holding = false;
  await renewer;
  await Promise.all(inflight);
  return !failed;
}

/** Runs the lock clients under the nemesis, then heals the cluster. See the module doc. */
export async function runLockWorkload(
  members: AgentProc[],
  opts: LockWorkloadOptions,
): Promise<LockRun> {
  const master = seededRandom(opts.seed);
  const nemesisRandom = seededRandom(Math.floor(master() * 2 ** 32));
  await waitForVoters(members);
  const live: Live = {
    members,
    down: new Set(),
    frozen: new Set(),
    args: opts.args,
    events: [],
    log: opts.log ?? (() => {}),
    t0: performance.now(),
  };
  const endAt = live.t0 + opts.durationMs;
  const sections: Section[] = [];
  const counts: Counts = { refused: 0, lost: 0, errors: 0 };
  let acquisitions = 0;
  note(
    live,
    `lock workload, seed ${opts.seed}: ${opts.clients} clients, ${members.length} members`,
  );
  const clients = Array.from({ length: opts.clients }, (_, id) =>
    lockClient({
      id,
      live,
      endAt,
      ttlS: opts.ttlS ?? LOCK_TTL_S_DEFAULT,
      lockDelayMs: (opts.lockDelayS ?? LOCK_DELAY_S_DEFAULT) * 1000,
      timeoutMs: Math.max(LOCK_CLIENT_TIMEOUT_MS, (opts.leaderFreezeMs ?? 0) + 2_000),
      renewEveryMs: (opts.leaderFreezeMs ?? 0) > 0 ? RENEW_EVERY_MS : 0,
      random: seededRandom(Math.floor(master() * 2 ** 32)),
      sections,
      nextAcquisition: () => ++acquisitions,
      counts,
    }));
  await Promise.all([
    nemesis(live, nemesisRandom, {
      endAt,
      intervalMs: opts.nemesisIntervalMs ?? 4_000,
      killDownMs: opts.killDownMs ?? 2_000,
      freezeMs: opts.freezeMs ?? 3_000,
      partitionMs: opts.partitionMs ?? 4_000,
      leaderFreezeMs: opts.leaderFreezeMs ?? 0,
    }),
    ...clients,
  ]);
  const converged = await heal(live, opts.healTimeoutMs ?? HEAL_TIMEOUT_MS_DEFAULT);
  const held = new Set(sections.map((s) => s.acquisition)).size;
  return { sections, acquisitions: held, ...counts, events: live.events, converged };
}

export type ExclusionResult =
  | { ok: true; acquisitions: number; sections: number }
  | { ok: false; explanation: string };

/** No two critical sections of different acquisitions overlap. */
export function checkMutualExclusion(sections: readonly Section[]): ExclusionResult {
  const sorted = [...sections].sort((a, b) => a.enter - b.enter || a.exit - b.exit);
  // The section reaching furthest so far: with it, any later overlap is found in one pass.
  let reach: Section | null = null;
  for (const s of sorted) {
    if (s.exit < s.enter) {
      return { ok: false, explanation: `a section of acquisition ${s.acquisition} ends first` };
    }
    if (reach !== null && reach.acquisition !== s.acquisition && s.enter < reach.exit) {
      const ms = (t: number) => `${t.toFixed(1)} ms`;
      return {
        ok: false,
        explanation: `client ${s.client} (acquisition ${s.acquisition}) entered at ` +
          `${ms(s.enter)} while client ${reach.client} (acquisition ${reach.acquisition}) ` +
          `worked until ${ms(reach.exit)}`,
      };
    }
    if (reach === null || s.exit > reach.exit) reach = s;
  }
  return {
    ok: true,
    acquisitions: new Set(sections.map((s) => s.acquisition)).size,
    sections: sections.length,
  };
}
