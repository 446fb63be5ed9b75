/**
 * Node liveness from Raft contact, decided by the leader (its clock, see README "Node
 * liveness"): each tick, a member not heard from for longer than `nodeTimeoutMs` has its node
 * proposed `down` (its instances leave DNS and the proxy), and a member heard again is proposed
 * `alive`. A new leader gives every member a full timeout of grace (ClusterCore.leaderSince).
 *
 * The check is driven by the state, not by the events that changed it, so whatever was missed
 * is put right on a later tick (a failed proposal, a leader change, a restore):
 *
 * - a member without a node row (it went silent before registering, or a restore removed the
 *   row) gets one, whatever its status;
 * - a removed member's instances are deregistered and its node marked down (Store.formerMembers):
 *   nobody is left to deregister them, and a failed cleanup or a leader that removed itself
 *   leaves them to the next tick or the next leader.
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import type { Command } from "../store/mod.ts";
import { parseHostPort } from "../lib/host_port.ts";
import type { ClusterCore } from "./_core.ts";
import type { Proposed } from "./types.ts";

/** Pause before a node update that failed is proposed again. */
export const LIVENESS_RETRY_MS = 1000;

export class Liveness {
  readonly #c: ClusterCore;
  readonly #propose: (cmd: Command) => Promise<Proposed>;
  /** Nodes whose update is being proposed (one at a time each). */
  readonly #inFlight = new Set<string>();
  /** Nodes whose last update failed → when to try again (not on every tick). */
  readonly #retryAt = new Map<string, number>();

  constructor(core: ClusterCore, propose: (cmd: Command) => Promise<Proposed>) {
    this.#c = core;
    this.#propose = propose;
  }

  /** On the leader: proposes what the members' and former members' nodes lack (see above). */
  check(): void {
    const c = this.#c;
    const now = c.o.now();
    for (const m of c.store.members()) {
      const silent = m.id === c.self ? 0 : now - (c.heard.get(m.id) ?? c.leaderSince);
      const node = c.store.node(m.name);
      const want = silent > c.o.nodeTimeoutMs ? "down" : "alive";
      if ((node !== undefined && node.status === want) || this.#busy(m.name, now)) continue;
      c.o.log(
        want === "down"
          ? `cluster: no contact with ${m.name} for ${silent} ms; marking its instances critical`
          : node === undefined
          ? `cluster: ${m.name} has no node record; registering it`
          : `cluster: ${m.name} is back`,
      );
      // A member without a node record (silent before registering, or dropped by a restore)
      // gets one here, so that registrations made on its behalf follow its liveness.
      const register: Command[] = node === undefined
        ? [{ type: "node.register", name: m.name, address: hostOf(m.address), meta: {} }]
        : [];
      this.#run(m.name, [...register, { type: "node.status", name: m.name, status: want }]);
    }
    for (const name of c.store.formerMembers()) {
      if (this.#busy(name, now)) continue;
      const instances = c.store.instancesOfNode(name);
      const node = c.store.node(name);
      if (instances.length === 0 && (node === undefined || node.status === "down")) continue;
      c.o.log(
        `cluster: ${name} was removed; deregistering its ${instances.length} instance(s)`,
      );
      this.#run(name, [
        ...instances.map((i) => ({ type: "deregister" as const, id: i.id })),
        ...(node !== undefined && node.status !== "down"
          ? [{ type: "node.status" as const, name, status: "down" as const }]
          : []),
      ]);
    }
  }

  #busy(name: string, now: number): boolean {
    return this.#inFlight.has(name) || (this.#retryAt.get(name) ?? 0) > now;
  }

  /** Proposes `commands` for `name`'s node, one proposal at a time per node. */
  #run(name: string, commands: Command[]): void {
    const c = this.#c;
    const failed = (why: string) => {
      c.o.log(`cluster: liveness update for ${name} failed: ${why}`);
      this.#retryAt.set(name, c.o.now() + LIVENESS_RETRY_MS);
    };
    this.#inFlight.add(name);
    this.#retryAt.delete(name);
    this.#propose({ type: "batch", commands })
      .then((p) => {
        if (!p.result.ok) failed(p.result.error ?? "refused");
      }, (e) => failed(errorText(e)))
      .finally(() => this.#inFlight.delete(name));
  }
}

/** The host of a member's cluster address (`[::1]:8300` → `::1`), or the address as it is. */
function hostOf(address: string): string {
  try {
    return parseHostPort(address).host;
  } catch {
    return address;
  }
}
