/**
 * Sessions end on the leader's word (its clock; README "Sessions and locks"), as in Consul:
 *
 * - TTL: the leader keeps, in memory, when each session with a TTL expires: 2 × TTL (Consul's
 *   grace) after it first saw the session, or after its last renewal. Renewals come to the
 *   leader (`renew`, forwarded from other members) and only move that deadline: they are not
 *   written to the log. A new leader starts with no deadlines and gives every session a full
 *   2 × TTL from its first tick, so a failover can delay an expiry but never hasten it.
 * - Checks are not this unit's: a session bound to a check that turns critical (or is removed,
 *   or whose node is marked down) ends in the apply of that very entry, on every replica
 *   (store/sessions.ts `endSessionsOfFailedChecks`).
 * - Renewals are answered only after a read barrier confirmed this member's leadership
 *   (RaftCluster.renewSession), so a deposed leader never extends a session.
 *
 * It proposes `session.destroy` stamped with its clock (the start of the keys' lock-delay), only
 * while leader (never forwarded: a deposed leader's timers are not the new leader's). One
 * proposal in flight per session.
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import type { Command, Session, Store } from "../store/mod.ts";
import type { Proposed } from "./types.ts";

/** Consul's grace: a session expires after twice its TTL without a renewal. */
export const SESSION_TTL_MULTIPLIER = 2;

export interface SessionTimersOptions {
  store: Store;
  now: () => number;
  /** Proposes on this member as leader (refused when it is not). */
  propose: (cmd: Command) => Promise<Proposed>;
  log: (line: string) => void;
}

export class SessionTimers {
  readonly #o: SessionTimersOptions;
  /** Session id → when it expires on this leader's clock. */
  readonly #deadlines = new Map<string, number>();
  readonly #inFlight = new Set<string>();
  /** The sessions table index the deadlines were last brought up to date with. */
  #sessionsSeen = -1;

  constructor(o: SessionTimersOptions) {
    this.#o = o;
  }

  /** Leadership lost or gained: forget every deadline (the next leader restarts them in full). */
  reset(): void {
    this.#deadlines.clear();
    this.#sessionsSeen = -1;
  }

  /** On the leader: restarts session `id`'s TTL; the session, or undefined when it is gone. */
  renew(id: string): Session | undefined {
    const s = this.#o.store.sessions.get(id);
    if (s !== undefined && s.ttlMs > 0) {
      this.#deadlines.set(id, this.#o.now() + s.ttlMs * SESSION_TTL_MULTIPLIER);
    }
    return s;
  }

  /** When session `id` expires on this leader (undefined: no TTL, or not seen yet). */
  deadline(id: string): number | undefined {
    return this.#deadlines.get(id);
  }

  /** Each tick while leader: ends the sessions whose TTL passed. */
  tick(): void {
    const { store } = this.#o;
    const now = this.#o.now();
    const sessionsIndex = store.tableIndex("sessions");
    if (sessionsIndex !== this.#sessionsSeen) this.#sync(now, sessionsIndex);
    for (const [id, at] of this.#deadlines) {
      if (now >= at) this.#end(id, "its TTL passed without a renewal");
    }
  }

  /** Deadlines for sessions first seen (a full 2 × TTL from now); none for ended ones. */
  #sync(now: number, index: number): void {
    const live = new Set<string>();
    for (const s of this.#o.store.sessions.list()) {
      if (s.ttlMs === 0) continue;
      live.add(s.id);
      if (!this.#deadlines.has(s.id)) {
        this.#deadlines.set(s.id, now + s.ttlMs * SESSION_TTL_MULTIPLIER);
      }
    }
    for (const id of this.#deadlines.keys()) if (!live.has(id)) this.#deadlines.delete(id);
    this.#sessionsSeen = index;
  }

  #end(id: string, why: string): void {
    if (this.#inFlight.has(id)) return;
    this.#inFlight.add(id);
    this.#o.log(`cluster: ending session ${id}: ${why}`);
    this.#o.propose({ type: "session.destroy", id, nowMs: this.#o.now() })
      .then(() => this.#deadlines.delete(id))
      .catch((e) => {
        this.#o.log(`cluster: ending session ${id} failed: ${errorText(e)}`);
      })
      .finally(() => this.#inFlight.delete(id));
  }
}
