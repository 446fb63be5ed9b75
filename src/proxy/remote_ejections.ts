/**
 * Ejections another proxy worker made (UpstreamPool `eject`) of targets that have no pool in
 * this worker yet: target key → ejected until (ms). The pool consults it in `isEjected`, hands
 * the ejection to a target's pool when it makes one (`take`), and lists it in `ejected()`.
 * Bounded: at REMOTE_EJECTIONS_MAX entries the expired ones go, and a further one is dropped
 * (this worker's own failures still eject the target).
 *
 * @module
 */
export const REMOTE_EJECTIONS_MAX = 4096;

/** A target passive health skips now (for the routes API). */
export interface EjectedTarget {
  instance: string;
  address: string;
  port: number;
  /** Ejected until this time (ms since the epoch). */
  untilMs: number;
}

export class RemoteEjections {
  readonly #until = new Map<string, number>();

  get size(): number {
    return this.#until.size;
  }

  /** Records that `key` is ejected until `until` (the later of two ejections wins). */
  set(key: string, until: number, now: number): void {
    if (this.#until.size >= REMOTE_EJECTIONS_MAX) {
      for (const [k, t] of this.#until) if (t <= now) this.#until.delete(k);
      if (this.#until.size >= REMOTE_EJECTIONS_MAX) return;
    }
    this.#until.set(key, Math.max(until, this.#until.get(key) ?? 0));
  }

  /** Whether `key` is ejected at `now`. */
  ejected(key: string, now: number): boolean {
    return (this.#until.get(key) ?? 0) > now;
  }

  /** Removes and returns the ejection of `key` (its pool takes it over), if any. */
  take(key: string): number | undefined {
    const until = this.#until.get(key);
    this.#until.delete(key);
    return until;
  }

  /** The ejections still running at `now`. */
  list(now: number): EjectedTarget[] {
    const out: EjectedTarget[] = [];
    for (const [key, untilMs] of this.#until) {
      // `id|address|port` (Target.key); the id may hold "|", the address and port do not.
      const p = key.lastIndexOf("|");
      const a = key.lastIndexOf("|", p - 1);
      if (untilMs > now && a > 0) {
        out.push({
          instance: key.slice(0, a),
          address: key.slice(a + 1, p),
          port: Number(key.slice(p + 1)),
          untilMs,
        });
      }
    }
    return out;
  }

  clear(): void {
    this.#until.clear();
  }
}
