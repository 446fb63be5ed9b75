/**
 * The "you were removed" notice a member sends a removed member that still talks to it
 * (restarted with its old data): it stops instead of retrying or serving stale data. At most
 * once per REMOVED_NOTICE_MS per member id.
 *
 * @module
 */
import type { ClusterCore } from "./_core.ts";

/** Least time between two "you were removed" notices to the same member. */
export const REMOVED_NOTICE_MS = 1000;
/** Members remembered for rate-limiting notices. */
const NOTICED_MAX = 1024;

export class RemovedNotices {
  readonly #c: ClusterCore;
  /** Member id → when it was last told. */
  readonly #last = new Map<number, number>();

  constructor(core: ClusterCore) {
    this.#c = core;
  }

  /** Tells member `id` at `to` that it was removed; false when nothing is sent. */
  tell(id: number, to: string): boolean {
    const c = this.#c;
    const now = c.o.now();
    const last = this.#last.get(id);
    if (last !== undefined && now - last < REMOVED_NOTICE_MS) return false;
    if (this.#last.size >= NOTICED_MAX) this.#last.clear();
    this.#last.set(id, now);
    // Not from inside the caller (a handshake check or a frame handler) but right after it.
    queueMicrotask(() => {
      if (!c.closed) c.transport.send(to, { t: "removed", id });
    });
    return true;
  }
}
