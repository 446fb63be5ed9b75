/**
 * Small helpers shared by the raft tests (etcd's raft_paper_test.go helpers).
 *
 * @module
 */
import type { Raft } from "../raft.ts";
import type { MemoryStorage } from "../storage.ts";
import type { Entry, Message } from "../types.ts";
import { makeMessage } from "../types.ts";

/** The MsgAppResp a follower would send after accepting `m`. */
export function acceptAndReply(m: Message): Message {
  if (m.type !== "MsgApp") throw new Error(`type ${m.type}, want MsgApp`);
  return makeMessage({
    type: "MsgAppResp",
    from: m.to,
    to: m.from,
    term: m.term,
    index: m.index + m.entries.length,
  });
}

/** Leader `r` replicates and commits its no-op entry; the log is persisted to `s`. */
export function commitNoopEntry(r: Raft, s: MemoryStorage): void {
  if (r.state !== "leader") throw new Error("it should only be used when it is the leader");
  r.bcastAppend();
  for (const m of r.readMessages()) {
    if (m.type !== "MsgApp" || m.entries.length !== 1 || m.entries[0]?.data.byteLength !== 0) {
      throw new Error("not a message to append noop entry");
    }
    r.step(acceptAndReply(m));
  }
  r.readMessages();
  persist(r, s);
}

/** Persists the unstable entries of `r` to `s` and marks them stable and applied. */
export function persist(r: Raft, s: MemoryStorage): void {
  const ents = r.raftLog.unstableEntries();
  s.append(ents);
  const last = ents[ents.length - 1];
  if (last !== undefined) r.raftLog.stableTo(last.index, last.term);
  r.raftLog.appliedTo(r.raftLog.committed);
}

/** A normal entry with `data`. */
export function ent(term: number, index: number, data: Uint8Array = new Uint8Array(0)): Entry {
  return { term, index, type: "normal", data };
}

/** Encodes a short string. */
export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Message types of `msgs`, in order. */
export function types(msgs: readonly Message[]): string[] {
  return msgs.map((m) => m.type);
}
