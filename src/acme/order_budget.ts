/**
 * The leader's budget of new orders (timing.ts NEW_ORDERS_PER_HOUR): whatever names the
 * services ask for, the cluster makes at most so many new orders at the CA in an hour.
 *
 * @module
 */
import type { AcmeNameState, EdgeCert } from "../store/mod.ts";

const HOUR_MS = 3_600_000;
/** How often a spent budget is logged. */
const LOG_EVERY_MS = 600_000;

export class OrderBudget {
  /** When the new orders of the last hour were made (as far as this leader knows). */
  #times: number[] = [];
  #loggedMs = -Infinity;

  constructor(readonly perHour: number, readonly log: (line: string) => void) {}

  /**
   * The new orders of the last hour as the replicated state shows them, for a leader that just
   * claimed (its predecessor's count is gone): every order in flight, every failure of the last
   * hour, every ACME certificate issued in it (notBefore may be backdated up to an hour). All
   * counted as made now: a new leader may wait longer than needed, never order more.
   */
  seed(rows: readonly AcmeNameState[], certs: Iterable<EdgeCert>, nowMs: number): void {
    const since = nowMs - HOUR_MS;
    let n = 0;
    for (const r of rows) if (r.order !== null || r.lastErrorMs > since) n++;
    for (const c of certs) if (c.source === "acme" && c.notBefore > since - HOUR_MS) n++;
    this.#times = new Array<number>(n).fill(nowMs);
  }

  /** Spends one new order now; false (logged once in ten minutes) when the hour's are spent. */
  take(nowMs: number): boolean {
    this.#times = this.#times.filter((t) => t > nowMs - HOUR_MS);
    if (this.#times.length < this.perHour) {
      this.#times.push(nowMs);
      return true;
    }
    if (nowMs - this.#loggedMs >= LOG_EVERY_MS) {
      this.#loggedMs = nowMs;
      this.log(
        `acme: ${this.perHour} new orders in the last hour, the most allowed; other names wait`,
      );
    }
    return false;
  }
}
