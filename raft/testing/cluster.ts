/**
 * RawNode-level in-process cluster for scenario tests and the benchmark: every node persists
 * to a MemoryStorage, follows the ready contract, and messages are delivered synchronously
 * (optionally filtered) until the cluster is quiet.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { bootstrapEntries, decodeConfChange } from "../confchange.ts";
import { RawNode } from "../node.ts";
import { MemoryStorage } from "../storage.ts";
import type { ConfState, Entry, Message, NodeId, ReadState } from "../types.ts";
import { Rng } from "../sim/prng.ts";

/** One member of a {@link RawCluster}. */
export interface Member {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  confState: ConfState;
}

/** Options for every node of the cluster. */
export type ClusterOptions = Partial<Omit<Config, "id" | "storage" | "random">>;

/** A synchronous cluster of RawNodes. */
export class RawCluster {
  readonly members = new Map<NodeId, Member>();
  /** Directed cuts "from->to". */
  readonly cuts = new Set<string>();
  /** Return false to drop a message. */
  filter: ((m: Message) => boolean) | undefined = undefined;
  #queue: Message[] = [];
  readonly #rng = new Rng(7);

  constructor(readonly opts: ClusterOptions = {}) {}

  /** Creates members `ids` sharing the membership `cs`. */
  static create(ids: NodeId[], opts: ClusterOptions = {}, learners: NodeId[] = []): RawCluster {
    const c = new RawCluster(opts);
    for (const id of [...ids, ...learners]) c.add(id, { voters: ids, learners });
    return c;
  }

  /**
   * Creates members `ids` the production way: each persists `bootstrapEntries` (the membership
   * lives in the log, so nodes added later learn it by replication).
   */
  static bootstrap(ids: NodeId[], opts: ClusterOptions = {}): RawCluster {
    const c = new RawCluster(opts);
    const { entries, hardState } = bootstrapEntries({ voters: ids, learners: [] });
    for (const id of ids) {
      const m = c.add(id, { voters: [], learners: [] });
      m.storage.append(entries);
      m.storage.setHardState(hardState);
      m.raw = c.#newRaw(id, m.storage);
    }
    c.stabilize();
    return c;
  }

  #newRaw(id: NodeId, storage: MemoryStorage): RawNode {
    return new RawNode({
      electionTick: 10,
      heartbeatTick: 1,
      ...this.opts,
      id,
      storage,
      random: (n) => this.#rng.int(n),
    });
  }

  /** Adds a node whose storage starts with membership `cs` (empty for a joining node). */
  add(id: NodeId, cs: ConfState): Member {
    const storage = new MemoryStorage({ confState: cs });
    const m: Member = {
      id,
      storage,
      raw: this.#newRaw(id, storage),
      applied: [],
      readStates: [],
      confState: cs,
    };
    this.members.set(id, m);
    return m;
  }

  get(id: NodeId): Member {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  /** The node that believes it leads with the highest term, if any. */
  leader(): Member | undefined {
    let best: Member | undefined;
    for (const m of this.members.values()) {
      const r = m.raw.raft;
      if (r.state === "leader" && (best === undefined || r.term > best.raw.raft.term)) best = m;
    }
    return best;
  }

  isolate(id: NodeId): void {
    for (const other of this.members.keys()) {
      if (other !== id) {
        this.cuts.add(`${id}->${other}`);
        this.cuts.add(`${other}->${id}`);
      }
    }
  }

  heal(): void {
    this.cuts.clear();
    this.filter = undefined;
  }

  /** Handles one ready of `m` following the contract; returns whether there was one. */
  processReady(m: Member): boolean {
    if (!m.raw.hasReady()) return false;
    const rd = m.raw.ready();
    if (rd.snapshot !== undefined) m.storage.applySnapshot(rd.snapshot);
    m.storage.append(rd.entries);
    if (rd.hardState !== undefined) m.storage.setHardState(rd.hardState);
    for (const msg of rd.messages) {
      if (this.cuts.has(`${msg.from}->${msg.to}`)) continue;
      if (this.filter !== undefined && !this.filter(msg)) continue;
      this.#queue.push(msg);
    }
    if (rd.snapshot !== undefined) {
      m.applied = [];
      m.confState = rd.snapshot.metadata.confState;
    }
    for (const e of rd.committedEntries) {
      m.applied.push(e);
      if (e.type === "confChange") m.confState = m.raw.applyConfChange(decodeConfChange(e.data));
    }
    m.readStates.push(...rd.readStates);
    m.raw.advance();
    return true;
  }

  /** Delivers queued messages and handles readies until nothing is left. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const m of this.members.values()) busy = this.processReady(m) || busy;
      const q = this.#queue;
      this.#queue = [];
      for (const msg of q) {
        busy = true;
        const to = this.members.get(msg.to);
        if (to === undefined) continue;
        to.raw.step(msg);
        if (msg.type === "MsgSnap") {
          this.members.get(msg.from)?.raw.reportSnapshot(msg.to, "finish");
        }
      }
      if (!busy) return;
    }
    throw new Error("cluster did not stabilize");
  }

  /** Ticks every node `n` times, stabilizing after each tick. */
  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const m of this.members.values()) m.raw.tick();
      this.stabilize();
    }
  }

  /** Campaigns at `id` and stabilizes. */
  elect(id: NodeId): void {
    this.get(id).raw.campaign();
    this.stabilize();
  }

  /** Snapshots member `id` at its applied index and compacts its log there. */
  compact(id: NodeId, data: Uint8Array = new Uint8Array(0)): void {
    const m = this.get(id);
    const applied = m.raw.raft.raftLog.applied;
    m.storage.createSnapshot(applied, m.confState, data);
    m.storage.compact(applied);
  }

  /** Payloads of the normal, non-empty entries `id` applied. */
  appliedData(id: NodeId): string[] {
    return this.get(id).applied
      .filter((e) => e.type === "normal" && e.data.byteLength > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}
