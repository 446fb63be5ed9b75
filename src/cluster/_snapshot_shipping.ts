/**
 * Raft snapshots for real: taken, sent to and received from lagging members, and installed, as
 * files in `<data-dir>/snapshots` (snapshot_files.ts), never whole in memory. Sizes follow
 * src/store/snapshot_limits.ts.
 *
 * Taking: when LogBudget says one is due (entries or log bytes since the last), the store writes
 * a "raft" snapshot file through its own read connection while applies go on; the log then
 * records a SnapshotRef to it and compacts behind it, keeping a trailing window bounded by
 * entries and bytes. One snapshot is written at a time.
 *
 * Sending (leader → lagging member): the file streams as `snap.chunk` requests with at most
 * SNAPSHOT_WINDOW_CHUNKS unacknowledged (snapshot_stream.ts); once the receiver has checked the
 * whole file (size and SHA-256), the MsgSnap follows with the transfer's key and raft hears
 * "finish"; any failure reports "failure" and raft tries again later. One transfer per member.
 *
 * Receiving: chunks only from the leader; the checked file becomes `<index>-<term>.snap` when its
 * MsgSnap arrives, and raft sees a ref to it. Installing (after the ready loop persisted the
 * snapshot) replaces the store's tables from the file in one transaction, on the store's
 * snapshot thread (Store.installSnapshotFileAsync), while the ready loop waits.
 *
 * @module
 */
import { type Entry, isEmptySnapshot, type Message, type Snapshot } from "../../raft/mod.ts";
import { createHash } from "node:crypto";
import { errorText } from "../lib/error_text.ts";
import { legacySnapshotFrames } from "../store/mod.ts";
import type { ClusterCore } from "./_core.ts";
import { NotLeaderError } from "./errors.ts";
import { LogBudget } from "./log_budget.ts";
import { decodeRef, encodeRef, SnapshotFiles, type SnapshotRef } from "./snapshot_files.ts";
import {
  sendSnapshotFile,
  SNAPSHOT_CHUNK_TIMEOUT_MS,
  SnapshotReceiver,
} from "./snapshot_stream.ts";
import type { Hello } from "./transport.ts";

/** Wait after a snapshot that could not be written before the next try. */
export const SNAPSHOT_RETRY_MS = 10_000;

export class SnapshotShipping {
  readonly #c: ClusterCore;
  readonly #files: SnapshotFiles;
  readonly #receiver: SnapshotReceiver;
  readonly #budget = new LogBudget();
  /** Members a snapshot is being sent to. */
  readonly #sending = new Set<number>();
  #writing = false;
  /** No snapshot is tried before this time (ms) after one failed (e.g. a full disk). */
  #retryAt = 0;

  /** `dir`: where snapshot files live (`<data-dir>/snapshots`). */
  constructor(core: ClusterCore, dir: string) {
    this.#c = core;
    this.#files = new SnapshotFiles(dir);
    this.#receiver = new SnapshotReceiver({ dir, now: core.o.now, log: core.o.log });
  }

  /**
   * Installs a persisted snapshot into the store: one raft handed over, or (at start) one a
   * crash left persisted but not installed. The store does the work on its snapshot thread (at
   * 100,000 instances it takes seconds), so DNS, the proxy and the API go on serving the old
   * state meanwhile; the ready loop awaits this before it applies anything else.
   */
  async install(snap: Snapshot): Promise<void> {
    const ref = decodeRef(snap.data);
    await this.#c.store.installSnapshotFileAsync(this.#files.path(ref));
    this.#budget.snapshotted(snap.metadata.index, snap.metadata.index);
    this.#prune();
  }

  /** Counts applied entries toward the next snapshot. */
  applied(entries: readonly Entry[]): void {
    for (const e of entries) this.#budget.noteApplied(e.index, e.data.byteLength);
  }

  /** Starts writing a snapshot when one is due and none is being written. */
  maybeSnapshot(applied: number): void {
    const c = this.#c;
    if (this.#writing || c.closed || c.o.now() < this.#retryAt) return;
    const snapIndex = c.storage.snapshot().metadata.index;
    if (!this.#budget.due(applied, snapIndex, c.o.snapshotEntries)) return;
    if (applied > c.storage.lastIndex() || applied <= snapIndex) return;
    this.#writing = true;
    this.#write().catch((e) => {
      if (c.closed) return;
      this.#retryAt = c.o.now() + SNAPSHOT_RETRY_MS;
      c.o.log(
        `cluster: snapshot not taken: ${errorText(e)}; next try in ${SNAPSHOT_RETRY_MS / 1000} s`,
      );
    }).finally(() => this.#writing = false);
  }

  async #write(): Promise<void> {
    const c = this.#c;
    const tmp = this.#files.tempPath("writing");
    try {
      const info = await c.store.writeSnapshotFile(tmp, "raft");
      const current = c.storage.snapshot().metadata.index;
      // Meanwhile a newer snapshot may have been installed, or the member closed.
      if (c.closed || info.index <= current || info.index > c.storage.lastIndex()) return;
      const term = c.storage.term(info.index);
      const ref = this.#files.keep(tmp, info.index, term, info.bytes, info.sha256);
      const keep = this.#budget.keepEntries(info.index, c.o.snapshotKeepEntries);
      // Pruned only once the log names the new snapshot on disk (a crash before keeps the old).
      if (!await c.storage.snapshotAndCompact(info.index, info.confState, encodeRef(ref), keep)) {
        return;
      }
      this.#budget.snapshotted(info.index, info.index - keep);
      this.#prune();
    } finally {
      this.#files.remove(tmp);
    }
  }

  /** Keeps the log's snapshot file and any newer one (received, not yet persisted). */
  #prune(): void {
    const snap = this.#c.storage.snapshot();
    if (!isEmptySnapshot(snap)) this.#files.prune(snap.metadata.index);
  }

  /** Streams MsgSnap `m`'s file to the member at `addr`, then sends the MsgSnap. */
  send(addr: string, m: Message): void {
    const c = this.#c;
    const to = m.to;
    if (this.#sending.has(to)) return; // raft hears about the transfer under way when it ends
    const snap = m.snapshot!;
    let ref: SnapshotRef;
    try {
      ref = decodeRef(snap.data);
    } catch (e) {
      c.o.log(`cluster: cannot send a snapshot to ${c.memberName(to)}: ${errorText(e)}`);
      this.#report(to, false);
      return;
    }
    this.#sending.add(to);
    const key = crypto.randomUUID();
    sendSnapshotFile(this.#files.path(ref), {
      key,
      bytes: ref.bytes,
      sha256: ref.sha256,
      request: (body) => c.transport.request(addr, body, { timeoutMs: SNAPSHOT_CHUNK_TIMEOUT_MS }),
    }).then(() => {
      const head: Message = {
        ...m,
        snapshot: { metadata: snap.metadata, data: new Uint8Array(0) },
      };
      const ok = c.transport.send(addr, { t: "raft", m: head, snap: key });
      if (ok) {
        c.o.log(
          `cluster: sent snapshot at index ${snap.metadata.index} (${ref.bytes} bytes) ` +
            `to ${c.memberName(to)}`,
        );
      }
      this.#report(to, ok);
    }, (e) => {
      if (!c.closed) c.o.log(`cluster: snapshot to ${c.memberName(to)} failed: ${errorText(e)}`);
      this.#report(to, false);
    }).finally(() => this.#sending.delete(to));
  }

  #report(to: number, ok: boolean): void {
    const c = this.#c;
    if (c.node === undefined || c.closed) return;
    c.node.reportSnapshot(to, ok ? "finish" : "failure");
    if (!ok) c.node.reportUnreachable(to);
    c.schedule();
  }

  /** A `snap.chunk` request: only from the leader (or while no leader is known). */
  onChunk(from: Hello, body: unknown): Promise<unknown> {
    const c = this.#c;
    if (c.leader !== 0 && from.nodeId !== c.leader) {
      return Promise.reject(new NotLeaderError(`member ${from.nodeId} is not the leader`));
    }
    return this.#receiver.onChunk(from.nodeId, body);
  }

  /**
   * What a MsgSnap's data becomes here: a ref to the file of transfer `key` from `from`,
   * complete and checked, renamed to its final name. Undefined (and logged) when there is none.
   */
  take(from: Hello, key: unknown, m: Message): Uint8Array | undefined {
    const got = typeof key === "string" ? this.#receiver.take(key, from.nodeId) : undefined;
    if (got === undefined || m.snapshot === undefined) {
      this.#c.o.log(`cluster: dropped an incomplete snapshot from ${from.address}`);
      return undefined;
    }
    const { index, term } = m.snapshot.metadata;
    return encodeRef(this.#files.keep(got.path, index, term, got.bytes, got.sha256));
  }

  /** On every tick: gives up a transfer that went quiet. */
  tick(): void {
    this.#receiver.sweep();
  }

  close(): void {
    this.#receiver.close();
  }
}

/**
 * A Raft log written before snapshots were files holds the snapshot itself (one msgpack map):
 * it is written to a file in `dir` and the log's snapshot becomes a ref to it. Undefined when the
 * snapshot is a ref already.
 */
export function upgradeLegacySnapshot(dir: string, snap: Snapshot): Uint8Array | undefined {
  try {
    decodeRef(snap.data);
    return undefined;
  } catch { /* not a ref: the old format, rewritten below */ }
  const files = new SnapshotFiles(dir);
  const tmp = files.tempPath("upgrading");
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    using file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o600 });
    for (const frame of legacySnapshotFrames(snap.data, "raft")) {
      hash.update(frame);
      bytes += frame.byteLength;
      for (let off = 0; off < frame.byteLength;) off += file.writeSync(frame.subarray(off));
    }
    file.syncSync();
  } catch (e) {
    files.remove(tmp);
    throw new Error(
      `raft log: the snapshot at index ${snap.metadata.index} cannot be read (${errorText(e)})`,
    );
  }
  const { index, term } = snap.metadata;
  return encodeRef(files.keep(tmp, index, term, bytes, hash.digest("hex")));
}
