/**
 * Sessions end on the leader's word (its clock; README "Sessions and locks"), as in Consul:
 *
 * - TTL: the leader keeps, in memory, when each session with a TTL expires: 2 × TTL (Consul's
 *   grace) after it first saw the session, or after its last renewal. Renewals come to the
 *   leader (`renew`, forwarded from other members) and only move that deadline: they are not
 *   written to the log. A new leader starts with no deadlines and gives every session a full
 *   2 × TTL from its first tick, so a failover can delay an expiry but never hasten it.
 * - Checks: when a session's node or check turns critical (or the check is gone), the leader
 *   ends the session. Which checks can have changed is read from the store's table indexes
 *   (nodes, instances), so sessions are looked at again only after such a change; each look
 *   costs one pass over the sessions and one read of the checks of each of their nodes.
 *
 * Either way it proposes `session.destroy` stamped with its clock (the start of the keys'
 * lock-delay), only while leader (never forwarded: a deposed leader's timers are not the new
 * leader's). One proposal in flight per session.
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import {
  checksOfNode,
  type CheckStatus,
  type Command,
  type Session,
  type Store,
} from "../store/mod.ts";
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
  /** The table indexes the checks were last looked at with. */
  #checksSeen = "";

  constructor(o: SessionTimersOptions) {
    this.#o = o;
  }

  /** Leadership lost or gained: forget every deadline (the next leader restarts them in full). */
  reset(): void {
    this.#deadlines.clear();
    this.#sessionsSeen = -1;
    this.#checksSeen = "";
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

  /** Each tick while leader: ends the sessions whose TTL passed or whose check is critical. */
  tick(): void {
    const { store } = this.#o;
    const now = this.#o.now();
    const sessionsIndex = store.tableIndex("sessions");
    if (sessionsIndex !== this.#sessionsSeen) this.#sync(now, sessionsIndex);
    for (const [id, at] of this.#deadlines) {
      if (now >= at) this.#end(id, "its TTL passed without a renewal");
    }
    const checks = `${store.tableIndex("nodes")}:${store.tableIndex("instances")}:${sessionsIndex}`;
    if (checks !== this.#checksSeen) {
      this.#checksSeen = checks;
      // Each node's checks are read once per look, however many sessions it has.
      const byNode = new Map<string, Map<string, CheckStatus>>();
      const statusOf = (node: string, id: string) => {
        let m = byNode.get(node);
        if (m === undefined) {
          m = store.node(node) === undefined
            ? new Map()
            : new Map(checksOfNode(store, node).map((c) => [c.id, c.status]));
          byNode.set(node, m);
        }
        return m.get(id);
      };
      for (const s of store.sessions.list()) {
        for (const check of [...s.nodeChecks, ...s.serviceChecks]) {
          const status = statusOf(s.node, check);
          if (status === "critical" || status === undefined) {
            this.#end(s.id, `check '${check}' of ${s.node} is ${status ?? "gone"}`);
            break;
          }
        }
      }
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
        this.#checksSeen = ""; // look at the checks again next tick
      })
      .finally(() => this.#inFlight.delete(id));
  }
}
