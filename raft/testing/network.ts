/**
 * Raft-level test harness modelled on etcd's `network` (raft_test.go): peers step messages
 * synchronously until no message is left; links can be cut, nodes isolated, message types
 * ignored. Nothing is persisted: the raft log's unstable part holds everything.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { Raft } from "../raft.ts";
import { MemoryStorage } from "../storage.ts";
import type { Entry, Message, MessageType, NodeId } from "../types.ts";
import { makeMessage, ProposalDroppedError } from "../types.ts";
import { Rng } from "../sim/prng.ts";

/** Options for {@link newTestRaft}. */
export type TestRaftOptions = Partial<Omit<Config, "id" | "storage">>;

/** A MemoryStorage whose initial membership is `voters` (+ `learners`). */
export function newTestStorage(voters: NodeId[], learners: NodeId[] = []): MemoryStorage {
  return new MemoryStorage({ confState: { voters, learners } });
}

/** A Raft with a deterministic random source seeded by its id. */
export function newTestRaft(
  id: NodeId,
  election: number,
  heartbeat: number,
  storage: MemoryStorage,
  opts: TestRaftOptions = {},
): Raft {
  const rng = new Rng(id * 7919);
  return new Raft({
    id,
    storage,
    electionTick: election,
    heartbeatTick: heartbeat,
    random: (n) => rng.int(n),
    ...opts,
  });
}

/** Entries at indexes 1..n with the given terms. */
export function entsWithTerms(...terms: number[]): Entry[] {
  return terms.map((term, i) => ({ term, index: i + 1, type: "normal", data: new Uint8Array(0) }));
}

/** A peer that drops everything it receives. */
export const BLACK_HOLE = null;

/** Synchronous message-passing network of Raft peers. */
export class Network {
  readonly peers = new Map<NodeId, Raft | null>();
  readonly storage = new Map<NodeId, MemoryStorage>();
  /** Probability that a message on link "from->to" is dropped. */
  readonly dropm = new Map<string, number>();
  readonly ignorem = new Set<MessageType>();
  /** Return false to drop a message. */
  msgHook: ((m: Message) => boolean) | undefined = undefined;
  readonly #rng = new Rng(42);

  /**
   * Builds a network of `peers.length` nodes with ids 1..n. A `undefined` entry becomes a fresh
   * voter over all ids; a Raft is used as is; `BLACK_HOLE` swallows messages.
   */
  static create(
    peers: (Raft | null | undefined)[],
    opts: TestRaftOptions & { election?: number; heartbeat?: number } = {},
  ): Network {
    const nw = new Network();
    const ids = peers.map((_, i) => i + 1);
    peers.forEach((p, i) => {
      const id = i + 1;
      if (p === undefined) {
        const s = newTestStorage(ids);
        nw.storage.set(id, s);
        nw.peers.set(id, newTestRaft(id, opts.election ?? 10, opts.heartbeat ?? 1, s, opts));
      } else {
        nw.peers.set(id, p);
      }
    });
    return nw;
  }

  /** The Raft at `id` (throws for a black hole or unknown id). */
  raft(id: NodeId): Raft {
    const p = this.peers.get(id);
    if (p === undefined || p === null) throw new Error(`no raft peer ${id}`);
    return p;
  }

  /** Delivers `msgs` and everything they cause until no message is left. */
  send(...msgs: Message[]): void {
    const queue = [...msgs];
    let budget = 1_000_000;
    while (queue.length > 0) {
      if (--budget === 0) throw new Error("network.send: message storm");
      const m = queue.shift() as Message;
      const p = this.peers.get(m.to);
      if (p === undefined || p === null) continue;
      try {
        p.step(m);
      } catch (e) {
        if (!(e instanceof ProposalDroppedError)) throw e;
      }
      queue.push(...this.filter(p.readMessages()));
    }
  }

  /** Shorthand: steps a local message type at `id`. */
  hup(id: NodeId): void {
    this.send(makeMessage({ type: "MsgHup", from: id, to: id }));
  }

  /** Shorthand: proposes `data` at `id`. */
  propose(id: NodeId, data: Uint8Array = new Uint8Array([1])): void {
    this.send(makeMessage({
      type: "MsgProp",
      from: id,
      to: id,
      entries: [{ term: 0, index: 0, type: "normal", data }],
    }));
  }

  drop(from: NodeId, to: NodeId, perc: number): void {
    this.dropm.set(`${from}->${to}`, perc);
  }

  /** Drops everything between `a` and `b` in both directions. */
  cut(a: NodeId, b: NodeId): void {
    this.drop(a, b, 2);
    this.drop(b, a, 2);
  }

  /** Cuts every link of `id`. */
  isolate(id: NodeId): void {
    for (const other of this.peers.keys()) {
      if (other !== id) this.cut(id, other);
    }
  }

  ignore(t: MessageType): void {
    this.ignorem.add(t);
  }

  recover(): void {
    this.dropm.clear();
    this.ignorem.clear();
    this.msgHook = undefined;
  }

  filter(msgs: Message[]): Message[] {
    return msgs.filter((m) => {
      if (this.ignorem.has(m.type)) return false;
      if (m.type === "MsgHup") throw new Error("unexpected MsgHup on the network");
      const perc = this.dropm.get(`${m.from}->${m.to}`) ?? 0;
      if (perc > 0 && this.#rng.float() < perc) return false;
      if (this.msgHook !== undefined && !this.msgHook(m)) return false;
      return true;
    });
  }
}
