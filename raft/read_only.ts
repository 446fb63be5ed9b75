/**
 * Pending ReadIndex requests on the leader (Raft thesis §6.4): each remembers the commit index
 * when it arrived and which voters acknowledged a heartbeat carrying its context.
 *
 * @module
 */
import type { Message, NodeId, ReadOnlyOption } from "./types.ts";
import { invariant } from "./types.ts";

/** A ReadIndex request waiting for a quorum of heartbeat acks. */
export interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Set<NodeId>;
}

/** Maps request contexts to keys; contexts are compared by content. */
export function ctxKey(ctx: Uint8Array): string {
  let s = "";
  for (const b of ctx) s += String.fromCharCode(b);
  return s;
}

/** Queue of ReadIndex requests awaiting leadership confirmation, in arrival order. */
export class ReadOnly {
  readonly pending = new Map<string, ReadIndexStatus>();
  queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  /**
   * Adds a request that arrived when the commit index was `index`. A request whose context is
   * already pending is ignored (contexts must be unique).
   */
  addRequest(index: number, m: Message): void {
    const key = ctxKey(m.context ?? new Uint8Array(0));
    if (this.pending.has(key)) return;
    this.pending.set(key, { req: m, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Records a heartbeat ack from `id` for context `ctx`; returns the acks so far. */
  recvAck(id: NodeId, ctx: Uint8Array): Set<NodeId> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /**
   * Dequeues and returns every request up to and including the one with context `ctx`: a
   * quorum confirmed leadership after all of them arrived.
   */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = ctxKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    return done.map((k) => {
      const rs = this.pending.get(k);
      invariant(rs !== undefined, "read index queue and map disagree");
      this.pending.delete(k);
      return rs;
    });
  }

  /** Context of the newest pending request, to piggyback on heartbeats. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    if (key === undefined) return undefined;
    return this.pending.get(key)?.req.context;
  }
}
