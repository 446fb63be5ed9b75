/**
 * One simulated server: a {@link RawNode}, its simulated disk (a MemoryStorage holding only
 * what was persisted) and a tiny replicated state machine (its applied index and membership).
 *
 * Ready handling is split in two explicit steps so a crash can fall between them:
 * `takeReady()` (ready() is called; nothing persisted yet) and `processReady()` (persist →
 * send → apply → advance). A crash discards the RawNode, the untaken work and the in-memory
 * state machine; a restart rebuilds them from the disk and its latest snapshot.
 *
 * @module
 */
import { decodeConfChange } from "../confchange.ts";
import type { Config } from "../config.ts";
import { RawNode } from "../node.ts";
import type { Ready } from "../node.ts";
import { MemoryStorage } from "../storage.ts";
import type {
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ReadState,
  Snapshot,
} from "../types.ts";
import type { Rng } from "./prng.ts";

/** What the checkers get to see. Implemented by checkers.ts; the node never judges itself. */
export interface NodeObserver {
  onPersist(node: SimNode, entries: readonly Entry[], hs: HardState | undefined): void;
  onApply(node: SimNode, e: Entry): void;
  onSnapshotApplied(node: SimNode, s: Snapshot): void;
  onReadState(node: SimNode, rs: ReadState): void;
  violation(what: string): void;
}

/** Raft options shared by every node of a run. */
export type NodeOptions = Omit<Config, "id" | "storage" | "random" | "applied">;

function encodeApplied(index: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, index);
  return b;
}

function decodeApplied(data: Uint8Array): number {
  if (data.byteLength !== 8) return -1;
  return new DataView(data.buffer, data.byteOffset, 8).getFloat64(0);
}

/** A simulated server. */
export class SimNode {
  readonly disk: MemoryStorage;
  raw: RawNode | undefined = undefined;
  pending: Ready | undefined = undefined;
  appliedIndex = 0;
  confState: ConfState;
  /** Down since this step (crash) or -1. */
  downSince = -1;
  incarnation = 0;
  /** Taken permanently out of service (removed from the cluster). */
  decommissioned = false;

  constructor(
    readonly id: NodeId,
    initial: ConfState,
    readonly opts: NodeOptions,
    readonly rng: Rng,
    readonly compactEvery: number,
  ) {
    this.disk = new MemoryStorage({ confState: initial });
    this.confState = initial;
  }

  get up(): boolean {
    return this.raw !== undefined;
  }

  /** (Re)starts from the disk: state machine restored from the latest snapshot. */
  start(): void {
    const snap = this.disk.snapshot();
    this.appliedIndex = snap.metadata.index;
    this.confState = snap.metadata.confState;
    this.raw = new RawNode({
      ...this.opts,
      id: this.id,
      storage: this.disk,
      random: (n) => this.rng.int(n),
      applied: snap.metadata.index,
    });
    this.pending = undefined;
    this.downSince = -1;
    this.incarnation++;
  }

  /** Loses everything not persisted. */
  crash(now: number): void {
    this.raw = undefined;
    this.pending = undefined;
    this.downSince = now;
  }

  /** Phase 1: take a ready (nothing is durable yet). Returns whether there was one. */
  takeReady(): boolean {
    const raw = this.raw;
    if (raw === undefined || this.pending !== undefined || !raw.hasReady()) return false;
    this.pending = raw.ready();
    return true;
  }

  /**
   * Phase 2: persist, then send, then apply, then advance (the contract in mod.ts).
   * `send` returns false if the network lost the message at once.
   */
  processReady(obs: NodeObserver, send: (m: Message) => boolean): void {
    const raw = this.raw;
    const rd = this.pending;
    if (raw === undefined || rd === undefined) return;
    this.pending = undefined;
    // 1. Persist.
    if (rd.snapshot !== undefined) this.disk.applySnapshot(rd.snapshot);
    this.disk.append(rd.entries);
    if (rd.hardState !== undefined) this.disk.setHardState(rd.hardState);
    obs.onPersist(this, rd.entries, rd.hardState);
    // 2. Send.
    for (const m of rd.messages) {
      const ok = send(m);
      if (!ok && m.type === "MsgSnap") raw.reportSnapshot(m.to, "failure");
    }
    // 3. Apply.
    if (rd.snapshot !== undefined) {
      const s = rd.snapshot;
      if (decodeApplied(s.data) !== s.metadata.index) {
        obs.violation(
          `node ${this.id}: snapshot data ${decodeApplied(s.data)} != index ${s.metadata.index}`,
        );
      }
      this.appliedIndex = s.metadata.index;
      this.confState = s.metadata.confState;
      obs.onSnapshotApplied(this, s);
    }
    for (const e of rd.committedEntries) {
      if (e.index !== this.appliedIndex + 1) {
        obs.violation(`node ${this.id}: applied ${e.index} after ${this.appliedIndex} (gap)`);
        return;
      }
      this.appliedIndex = e.index;
      if (e.type === "confChange") this.confState = raw.applyConfChange(decodeConfChange(e.data));
      obs.onApply(this, e);
    }
    for (const rs of rd.readStates) obs.onReadState(this, rs);
    // 4. Advance.
    raw.advance();
    this.#maybeCompact();
  }

  #maybeCompact(): void {
    const snapIndex = this.disk.snapshot().metadata.index;
    if (this.appliedIndex - snapIndex < this.compactEvery) return;
    if (this.appliedIndex > this.disk.lastIndex()) return;
    this.disk.createSnapshot(this.appliedIndex, this.confState, encodeApplied(this.appliedIndex));
    const keep = this.rng.int(6);
    const at = this.appliedIndex - keep;
    if (at > snapIndex) this.disk.compact(at);
  }
}
