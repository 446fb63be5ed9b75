/**
 * CheckTimers: the time-based decisions about this node's registered checks, made by the node
 * that owns them and proposed as commands (apply() never reads a clock):
 *
 * - a TTL check without a report for `ttlMs` turns critical (`TTL expired`). The TTL restarts
 *   at every report (`renew(id)`, which the API calls) and, in full, whenever this agent starts
 *   or the check is (re)registered, so a restart can delay an expiry but never hasten it;
 * - a service whose check has `deregisterCriticalAfterMs` and stays critical that long (as seen
 *   by this agent, from the moment it saw the check critical) is deregistered.
 *
 * It follows the store like HealthChecker: it reads this node's registered checks on start, then
 * applies the rows of this node each change wrote (node_items.ts: no rescan; a reset reads them
 * all again), arming and clearing only the timers of those checks.
 * A proposal that fails is logged and tried again after RETRY_MS.
 *
 * @module
 */
import type { Proposed } from "../cluster/types.ts";
import type { Change, Command, RegisteredCheck, Store } from "../store/mod.ts";
import { errorText } from "../lib/error_text.ts";
import { REAL_TIMERS, type Timers } from "./probe.ts";
import { type ItemsChanged, NodeItems } from "./node_items.ts";

/** Output of a TTL check whose time ran out (Consul's words). */
export const TTL_EXPIRED_OUTPUT = "TTL expired";
/** Wait before a failed expiry or deregistration is proposed again. */
export const RETRY_MS = 5_000;

export interface CheckTimersOptions {
  store: Store;
  propose: (cmd: Command) => Promise<Proposed>;
  /** Only checks on this node are watched. */
  node: string;
  log?: (line: string) => void;
  timers?: Timers;
}

interface Watch {
  /** What restarts the watch when it changes. */
  key: string;
  timer: unknown;
}

/** A registered check of this node, by its CheckID; `serviceId` null for a node-level one. */
type Owned = { id: string; check: RegisteredCheck; serviceId: string | null };

export class CheckTimers {
  readonly #store: Store;
  readonly #propose: (cmd: Command) => Promise<Proposed>;
  readonly #node: string;
  readonly #log: (line: string) => void;
  readonly #timers: Timers;
  /** TTL checks by id. */
  readonly #ttl = new Map<string, Watch>();
  /** TTL expiries being proposed, by check id: a report waits for its check's (renew()). */
  readonly #expiring = new Map<string, Promise<void>>();
  /** Critical checks with a deregister deadline, by check id. */
  readonly #reap = new Map<string, Watch>();
  /** This node's registered checks. */
  readonly #owned: NodeItems<Owned>;
  #unsubscribe: (() => void) | null = null;
  #closed = false;

  constructor(o: CheckTimersOptions) {
    this.#store = o.store;
    this.#propose = o.propose;
    this.#node = o.node;
    this.#log = o.log ?? ((line) => console.error(line));
    this.#timers = o.timers ?? REAL_TIMERS;
    this.#owned = new NodeItems<Owned>({
      node: o.node,
      ofInstance: (i) => (i.checks ?? []).map((c) => ({ id: c.id, check: c, serviceId: i.id })),
      ofNode: (n) => (n.checks ?? []).map((c) => ({ id: c.id, check: c, serviceId: null })),
    });
  }

  /** Scans the store and follows its changes. Calling it again does nothing. */
  start(): void {
    if (this.#unsubscribe !== null || this.#closed) return;
    this.#unsubscribe = this.#store.subscribe((c) => {
      if (c.reset || c.instances.length > 0 || c.nodes.length > 0) this.#sync(c);
    });
    this.#sync(null);
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    for (const w of [...this.#ttl.values(), ...this.#reap.values()]) {
      this.#timers.clearTimeout(w.timer);
    }
    this.#ttl.clear();
    this.#reap.clear();
  }

  /**
   * A report for TTL check `id` came in: its TTL starts again in full. Answers the check's expiry
   * proposal still in flight (settles, never rejects), which the report's own update must follow
   * (else the expiry, applied after it, would leave the check critical); null when none is.
   */
  renew(id: string): Promise<void> | null {
    const inFlight = this.#expiring.get(id) ?? null;
    const w = this.#ttl.get(id);
    if (w === undefined || this.#closed) return inFlight;
    const owned = this.#owned.get(id);
    if (owned === undefined) return inFlight;
    this.#timers.clearTimeout(w.timer);
    w.timer = this.#armTtl(owned.check);
    return inFlight;
  }

  /** The TTL checks and deregister deadlines being timed, for tests and status pages. */
  watching(): { ttl: string[]; deregister: string[] } {
    return { ttl: [...this.#ttl.keys()].sort(), deregister: [...this.#reap.keys()].sort() };
  }

  /** Brings the timers in line with this node's checks: all (`c` null: start), or those `c` wrote. */
  #sync(c: Change | null): void {
    if (this.#closed) return;
    let delta: ItemsChanged<Owned>;
    try {
      delta = c === null ? this.#owned.load(this.#store) : this.#owned.apply(c, this.#store);
    } catch (e) {
      this.#log(`checks: cannot read this node's checks: ${errorText(e)}`);
      return;
    }
    for (const id of delta.gone) {
      for (const map of [this.#ttl, this.#reap]) {
        const w = map.get(id);
        if (w === undefined) continue;
        this.#timers.clearTimeout(w.timer);
        map.delete(id);
      }
    }
    for (const o of delta.changed) this.#follow(o);
  }

  /** Arms, re-arms or clears the TTL and deregister timers of one check as it is now. */
  #follow({ id, check, serviceId }: Owned): void {
    const w = this.#ttl.get(id);
    if (check.kind === "ttl") {
      const key = `${check.ttlMs}`;
      if (w === undefined || w.key !== key) {
        if (w !== undefined) this.#timers.clearTimeout(w.timer);
        this.#ttl.set(id, { key, timer: this.#armTtl(check) });
      }
    } else if (w !== undefined) {
      this.#timers.clearTimeout(w.timer);
      this.#ttl.delete(id);
    }
    const reapable = serviceId !== null && check.deregisterCriticalAfterMs > 0 &&
      check.status === "critical";
    const key = `${serviceId}/${check.deregisterCriticalAfterMs}`;
    const r = this.#reap.get(id);
    if (reapable && (r === undefined || r.key !== key)) {
      if (r !== undefined) this.#timers.clearTimeout(r.timer);
      this.#reap.set(id, { key, timer: this.#armReap(id, serviceId, check) });
    } else if (!reapable && r !== undefined) {
      this.#timers.clearTimeout(r.timer);
      this.#reap.delete(id);
    }
  }

  #armTtl(check: RegisteredCheck): unknown {
    return this.#timers.setTimeout(() => this.#expire(check.id), check.ttlMs);
  }

  #expire(id: string): void {
    if (this.#closed) return;
    const current = this.#owned.get(id)?.check;
    if (current === undefined || current.kind !== "ttl") return;
    const w = this.#ttl.get(id);
    if (current.status === "critical" && current.output === TTL_EXPIRED_OUTPUT) return;
    if (this.#expiring.has(id)) return;
    const sent = this.#send(
      {
        type: "check.update",
        node: this.#node,
        id,
        status: "critical",
        output: TTL_EXPIRED_OUTPUT,
      },
      `expire TTL check ${id}`,
      () => {
        if (w !== undefined && this.#ttl.get(id) === w) {
          w.timer = this.#timers.setTimeout(() => this.#expire(id), RETRY_MS);
        }
      },
    );
    this.#expiring.set(id, sent);
    sent.then(() => {
      if (this.#expiring.get(id) === sent) this.#expiring.delete(id);
    });
  }

  #armReap(id: string, serviceId: string, check: RegisteredCheck): unknown {
    return this.#timers.setTimeout(() => {
      if (this.#closed) return;
      const now = this.#owned.get(id);
      if (now?.serviceId !== serviceId || now.check.status !== "critical") return;
      this.#log(
        `checks: deregistering service ${serviceId}: check ${id} critical for over ${check.deregisterCriticalAfterMs}ms`,
      );
      this.#send({ type: "deregister", id: serviceId }, `deregister service ${serviceId}`, () => {
        const r = this.#reap.get(id);
        if (r !== undefined) {
          r.timer = this.#armReap(id, serviceId, { ...check, deregisterCriticalAfterMs: RETRY_MS });
        }
      });
    }, check.deregisterCriticalAfterMs);
  }

  /** Proposes `cmd`; the promise settles (never rejects) once the proposal did. */
  #send(cmd: Command, what: string, retry: () => void): Promise<void> {
    return this.#propose(cmd).then((p) => {
      if (!p.result.ok) this.#log(`checks: cannot ${what}: ${p.result.error ?? "refused"}`);
    }, (e) => {
      if (this.#closed) return;
      this.#log(`checks: cannot ${what}: ${errorText(e)}; retrying in ${RETRY_MS}ms`);
      retry();
    });
  }
}
