/**
 * The "you were removed" notice a member sends a removed member that still talks to it
 * (restarted with its old data): it stops instead of retrying or serving stale data.
 *
 * The notice goes to the address this replica's membership has on record for that member id,
 * and to the address the peer's hello names only when that is on the host the connection comes
 * from (a member restarted on another port) — never to a third host a peer names, so a peer
 * cannot make this member dial arbitrary addresses. At most once per REMOVED_NOTICE_MS per
 * recorded address and per remote host.
 *
 * @module
 */
import { parseHostPort } from "../lib/host_port.ts";
import type { ClusterCore } from "./_core.ts";
import type { Peer } from "./_transport_shared.ts";

/** Least time between two "you were removed" notices to the same address or remote host. */
export const REMOVED_NOTICE_MS = 1000;
/** Addresses and hosts remembered for rate-limiting notices. */
const NOTICED_MAX = 1024;

export class RemovedNotices {
  readonly #c: ClusterCore;
  /** `addr <address>` / `host <remote host>` → when a notice last went there. */
  readonly #last = new Map<string, number>();

  constructor(core: ClusterCore) {
    this.#c = core;
  }

  /**
   * Tells removed member `id`, which talks to this member as `from`, that it was removed (see
   * the module comment); returns the addresses a notice goes to.
   */
  tell(id: number, from: Pick<Peer, "address" | "remoteHost">): string[] {
    const c = this.#c;
    const now = c.o.now();
    const to: string[] = [];
    const recorded = c.addresses.get(id);
    if (recorded !== undefined && recorded !== "" && this.#due(`addr ${recorded}`, now)) {
      to.push(recorded);
    }
    const host = from.remoteHost;
    if (
      from.address !== recorded && host !== undefined && sameHost(from.address, host) &&
      this.#due(`host ${host}`, now)
    ) {
      to.push(from.address);
    }
    // Not from inside the caller (a handshake check or a frame handler) but right after it.
    if (to.length > 0) {
      queueMicrotask(() => {
        for (const addr of to) if (!c.closed) c.transport.send(addr, { t: "removed", id });
      });
    }
    return to;
  }

  #due(key: string, now: number): boolean {
    const last = this.#last.get(key);
    if (last !== undefined && now - last < REMOVED_NOTICE_MS) return false;
    if (this.#last.size >= NOTICED_MAX) this.#last.clear();
    this.#last.set(key, now);
    return true;
  }
}

/** Whether `address` (host:port) is on `host` (a socket's remote address, maybe v4-mapped). */
function sameHost(address: string, host: string): boolean {
  try {
    const a = parseHostPort(address).host.toLowerCase();
    const h = host.toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "");
    return a === h;
  } catch {
    return false;
  }
}
