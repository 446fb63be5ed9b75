/**
 * ZoneReplica: a DNS worker's copy of the main thread's answering zone, fed by its messages
 * (protocol.ts): `zone` replaces the whole (a new Zone filled from the rows), `delta` applies one
 * change when its `from` is the version held; any other `from` is a gap (a lost or reordered
 * message: it cannot happen between two threads, but a replica that guessed would answer wrong
 * forever), so the replica asks for the whole zone and ignores deltas until it comes.
 *
 * @module
 */
import { Zone, type ZoneOptions } from "../zone.ts";
import type { ZoneDelta } from "../zone_delta.ts";

export interface ZoneReplicaOptions {
  zone: Omit<ZoneOptions, "visible">;
  /** The answers of these dependency keys changed (null: all of them). */
  onInvalidate: (deps: ReadonlySet<string> | null) => void;
  /** Asks the main thread for the whole zone. */
  resync: () => void;
}

export class ZoneReplica {
  #opts: ZoneReplicaOptions;
  #zone: Zone;
  /** True until a whole zone came (at start, and after a gap). */
  #waiting = true;
  /** Gaps seen (for tests and logs). */
  gaps = 0;

  constructor(opts: ZoneReplicaOptions) {
    this.#opts = opts;
    this.#zone = new Zone({ instances: [], nodes: [], version: 0 }, opts.zone);
  }

  /** The zone answers come from (replaced by `setZone`: read it per question). */
  get zone(): Zone {
    return this.#zone;
  }

  /** Whether a whole zone came and no gap since. */
  get ready(): boolean {
    return !this.#waiting;
  }

  /**
   * Replaces the zone by one filled from `rows` (Zone.rows() of the main thread's), answering
   * with `ttls` from now on when given.
   */
  setZone(rows: ZoneDelta, ttls?: { ttl: number; serviceTtl: ReadonlyMap<string, number> }): void {
    if (ttls !== undefined) this.#opts = { ...this.#opts, zone: { ...this.#opts.zone, ...ttls } };
    const zone = new Zone({ instances: [], nodes: [], version: rows.version }, this.#opts.zone);
    zone.fill(rows);
    this.#zone = zone;
    this.#waiting = false;
    this.#opts.onInvalidate(null);
  }

  /** Applies one delta made against version `from`; a gap asks for the whole zone instead. */
  applyDelta(from: number, delta: ZoneDelta): void {
    if (this.#waiting) return;
    if (from !== this.#zone.version) {
      this.gaps++;
      this.#waiting = true;
      this.#opts.resync();
      return;
    }
    const changed = this.#zone.apply(delta);
    if (changed.size > 0) this.#opts.onInvalidate(changed);
  }
}
