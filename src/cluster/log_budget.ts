/**
 * When to snapshot and how much log to keep behind the snapshot, by entries and by bytes: with
 * large entries (512 KiB KV values, 1 MiB restore chunks) a count alone would let the in-memory
 * log grow to gigabytes before compaction.
 *
 * @module
 */

/** Log bytes applied since the last snapshot that trigger a new one. */
export const SNAPSHOT_LOG_BYTES = 64 * 1024 * 1024;
/** Log bytes kept behind a snapshot at most (so slightly slow followers catch up from the log). */
export const SNAPSHOT_KEEP_BYTES = 16 * 1024 * 1024;

export class LogBudget {
  /** Sizes of applied entries from the last compaction point on, oldest first. */
  #sizes: { index: number; bytes: number }[] = [];
  #sinceSnapshot = 0;
  readonly #logBytes: number;
  readonly #keepBytes: number;

  constructor(opts: { logBytes?: number; keepBytes?: number } = {}) {
    this.#logBytes = opts.logBytes ?? SNAPSHOT_LOG_BYTES;
    this.#keepBytes = opts.keepBytes ?? SNAPSHOT_KEEP_BYTES;
  }

  /** Records an applied entry's size. */
  noteApplied(index: number, bytes: number): void {
    this.#sizes.push({ index, bytes });
    this.#sinceSnapshot += bytes;
  }

  /** Whether a snapshot is due: `entries` applied since the last one, or the byte budget spent. */
  due(applied: number, snapIndex: number, entries: number): boolean {
    return applied - snapIndex >= entries || this.#sinceSnapshot >= this.#logBytes;
  }

  /** Entries to keep behind a snapshot at `index`: at most `keepMax`, at most the byte budget. */
  keepEntries(index: number, keepMax: number): number {
    let n = 0;
    let bytes = 0;
    for (let i = this.#sizes.length - 1; i >= 0 && n < keepMax; i--) {
      const s = this.#sizes[i]!;
      if (s.index > index) continue;
      bytes += s.bytes;
      if (bytes > this.#keepBytes) break;
      n++;
    }
    return n;
  }

  /** A snapshot at `index` compacted the log up to `compactedTo`. */
  snapshotted(index: number, compactedTo: number): void {
    this.#sizes = this.#sizes.filter((s) => s.index > compactedTo);
    this.#sinceSnapshot = this.#sizes.reduce((n, s) => n + (s.index > index ? s.bytes : 0), 0);
  }
}
