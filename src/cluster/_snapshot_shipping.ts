/**
 * Snapshots sent to a member that is too far behind to catch up from the log.
 *
 * Sending: the snapshot travels as numbered chunks of at most SNAPSHOT_CHUNK_BYTES (`snapChunk`
 * messages), then the MsgSnap without its data but with the transfer's key, chunk count and byte
 * count; raft hears "finish" when everything was queued, "failure" (and the peer unreachable)
 * when the transport dropped a frame.
 *
 * Receiving: chunks must come in order from the leader, one transfer at a time (an unfinished one
 * is replaced by a new key); a gap or more than SNAPSHOT_BYTES_MAX drops it, and raft sends the
 * snapshot again. The MsgSnap takes the reassembled bytes, checked whole (`checkSnapshot`) before
 * raft sees them.
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import type { Message } from "../../raft/mod.ts";
import { checkSnapshot } from "../store/mod.ts";
import type { ClusterCore } from "./_core.ts";
import type { Hello } from "./transport.ts";

/** Snapshot bytes per transport frame when sending a snapshot to a lagging member. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Largest snapshot a member accepts (bounds memory while reassembling chunks). */
export const SNAPSHOT_BYTES_MAX = 1024 * 1024 * 1024;

/** A `snapChunk` message body as it arrives (unchecked). */
type Body = Record<string, unknown>;

export class SnapshotShipping {
  readonly #c: ClusterCore;
  /** The snapshot being received (one at a time). */
  #incoming: { key: string; from: number; parts: Uint8Array[]; bytes: number } | undefined;

  constructor(core: ClusterCore) {
    this.#c = core;
  }

  /** Sends MsgSnap `m` (with its data) to `addr` as chunks, then the head. */
  send(addr: string, m: Message): void {
    const c = this.#c;
    const node = c.node!;
    const snap = m.snapshot!;
    const key = crypto.randomUUID();
    const data = snap.data;
    let ok = true;
    let seq = 0;
    for (let off = 0; ok && off < data.byteLength; off += SNAPSHOT_CHUNK_BYTES, seq++) {
      ok = c.transport.send(addr, {
        t: "snapChunk",
        key,
        seq,
        data: data.subarray(off, Math.min(off + SNAPSHOT_CHUNK_BYTES, data.byteLength)),
      });
    }
    const head: Message = { ...m, snapshot: { metadata: snap.metadata, data: new Uint8Array(0) } };
    ok = ok &&
      c.transport.send(addr, {
        t: "raft",
        m: head,
        snap: key,
        snapChunks: seq,
        snapBytes: data.byteLength,
      });
    node.reportSnapshot(m.to, ok ? "finish" : "failure");
    if (!ok) node.reportUnreachable(m.to);
    else {
      c.o.log(
        `cluster: sent snapshot at index ${snap.metadata.index} (${data.byteLength} bytes) ` +
          `to ${c.memberName(m.to)}`,
      );
    }
  }

  /** One chunk of a snapshot from the leader (see the module comment for the rules). */
  onChunk(from: Hello, b: Body): void {
    const c = this.#c;
    if (!(b.data instanceof Uint8Array) || typeof b.key !== "string" || typeof b.seq !== "number") {
      return;
    }
    if (from.nodeId !== c.leader && c.leader !== 0) return;
    let t = this.#incoming;
    if (t === undefined || t.key !== b.key) {
      if (b.seq !== 0) return;
      t = { key: b.key, from: from.nodeId, parts: [], bytes: 0 };
      this.#incoming = t;
    }
    if (b.seq !== t.parts.length || t.from !== from.nodeId) {
      this.#incoming = undefined;
      c.o.log(`cluster: dropped a snapshot transfer from ${from.address}: chunk out of order`);
      return;
    }
    t.bytes += b.data.byteLength;
    if (t.bytes > SNAPSHOT_BYTES_MAX) {
      this.#incoming = undefined;
      c.o.log(`cluster: dropped a snapshot from ${from.address}: over ${SNAPSHOT_BYTES_MAX} bytes`);
      return;
    }
    t.parts.push(b.data);
  }

  /** The reassembled snapshot a MsgSnap (`b`) announces, checked whole, or undefined (dropped). */
  take(from: Hello, b: Body): Uint8Array | undefined {
    const c = this.#c;
    const t = this.#incoming;
    this.#incoming = undefined;
    if (
      t === undefined || t.key !== b.snap || t.from !== from.nodeId ||
      t.parts.length !== b.snapChunks || t.bytes !== b.snapBytes
    ) {
      c.o.log(`cluster: dropped an incomplete snapshot from ${from.address}`);
      return undefined;
    }
    const data = new Uint8Array(t.bytes);
    let off = 0;
    for (const p of t.parts) {
      data.set(p, off);
      off += p.byteLength;
    }
    try {
      checkSnapshot(data);
    } catch (e) {
      c.o.log(`cluster: dropped a snapshot from ${from.address}: ${errorText(e)}`);
      return undefined;
    }
    return data;
  }
}
