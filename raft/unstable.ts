/**
 * The tail of the log not yet persisted by the application (etcd's `unstable`): an optional
 * incoming snapshot and entries starting at `offset`.
 *
 * Invariant: if `snapshot` is set, offset = snapshot.index + 1; entries[i].index = offset + i.
 *
 * @module
 */
import type { Entry, Snapshot } from "./types.ts";
import { invariant } from "./types.ts";

/** Entries and snapshot received but not yet persisted. */
export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];

  constructor(public offset: number) {}

  /** First index if a snapshot is pending (snapshot index + 1). */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  /** Last index held here, if any. */
  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot !== undefined) return this.snapshot.metadata.index;
    return undefined;
  }

  /** Term of entry `i` if held here. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i) {
        return this.snapshot.metadata.term;
      }
      return undefined;
    }
    return this.entries[i - this.offset]?.term;
  }

  /**
   * Marks entries up to `i` as persisted, if entry `i` still has term `t` (it may have been
   * replaced between ready() and advance()).
   */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined) return;
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  /** Marks the pending snapshot at `i` as persisted. */
  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) {
      this.snapshot = undefined;
    }
  }

  /** Replaces everything with an incoming snapshot. */
  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /** Appends `ents`, first truncating anything at or after `ents[0].index`. */
  truncateAndAppend(ents: readonly Entry[]): void {
    const first = ents[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replace the unstable entries; the application will overwrite storage from `after`.
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = this.entries.slice(0, after - this.offset);
      for (const e of ents) this.entries.push(e);
    }
  }

  /** Entries in [lo, hi). Invariant: offset <= lo <= hi <= offset + entries.length. */
  slice(lo: number, hi: number): Entry[] {
    invariant(
      lo <= hi && lo >= this.offset && hi <= this.offset + this.entries.length,
      () =>
        `unstable.slice[${lo},${hi}) out of bound [${this.offset},${
          this.offset + this.entries.length
        }]`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
