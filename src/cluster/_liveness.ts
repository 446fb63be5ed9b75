/**
 * Node liveness from Raft contact, decided by the leader (its clock, see README "Node
 * liveness"): each tick, a member not heard from for longer than `nodeTimeoutMs` has its node
 * proposed `down` (its instances leave DNS and the proxy), and a member heard again is proposed
 * `alive`. A new leader gives every member a full timeout of grace (ClusterCore.leaderSince).
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import type { Command } from "../store/mod.ts";
import { parseHostPort } from "../lib/host_port.ts";
import type { ClusterCore } from "./_core.ts";
import type { Proposed } from "./types.ts";

export class Liveness {
  readonly #c: ClusterCore;
  readonly #propose: (cmd: Command) => Promise<Proposed>;
  /** Members whose status change is being proposed (one at a time each). */
  readonly #inFlight = new Set<string>();

  constructor(core: ClusterCore, propose: (cmd: Command) => Promise<Proposed>) {
    this.#c = core;
    this.#propose = propose;
  }

  /** On the leader: proposes `down`/`alive` for members whose contact crossed the timeout. */
  check(): void {
    const c = this.#c;
    const now = c.o.now();
    for (const m of c.store.members()) {
      const silent = m.id === c.self ? 0 : now - (c.heard.get(m.id) ?? c.leaderSince);
      const node = c.store.node(m.name);
      const want = silent > c.o.nodeTimeoutMs ? "down" : "alive";
      if ((node?.status ?? "alive") === want || this.#inFlight.has(m.name)) continue;
      this.#inFlight.add(m.name);
      c.o.log(
        want === "down"
          ? `cluster: no contact with ${m.name} for ${silent} ms; marking its instances critical`
          : `cluster: ${m.name} is back`,
      );
      // A member that went silent before registering its node gets a node record here, so
      // that registrations made on its behalf still leave DNS and the proxy.
      const register: Command[] = node === undefined
        ? [{
          type: "node.register",
          name: m.name,
          address: hostOf(m.address),
          meta: {},
        }]
        : [];
      this.#propose({
        type: "batch",
        commands: [...register, { type: "node.status", name: m.name, status: want }],
      })
        .catch((e) => c.o.log(`cluster: liveness update for ${m.name} failed: ${errorText(e)}`))
        .finally(() => this.#inFlight.delete(m.name));
    }
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
