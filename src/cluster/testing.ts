/**
 * For tests of the parts above the cluster (Docker watcher, health checker, API, CLI): a
 * single-node `Cluster` without Raft. Proposals commit by being applied to the local store, in
 * order; many that arrive in the same turn of the event loop go in one SQLite transaction. Not
 * exported from mod.ts: the agent runs RaftCluster, a single node included.
 *
 * @module
 */
import type { Command, Session, Store } from "../store/mod.ts";
import type { Cluster, ClusterStatus, MemberStatus, Proposed } from "./types.ts";

/** Most proposals committed in one transaction. */
export const GROUP_COMMIT_MAX = 512;

interface Pending {
  command: Command;
  resolve: (p: Proposed) => void;
  reject: (e: Error) => void;
}

export class LocalCluster implements Cluster {
  readonly #store: Store;
  readonly #node: string;
  readonly #address: string;
  #queue: Pending[] = [];
  #scheduled = false;
  #closed = false;

  constructor(store: Store, opts: { node: string; address: string }) {
    this.#store = store;
    this.#node = opts.node;
    this.#address = opts.address;
  }

  propose(command: Command): Promise<Proposed> {
    if (this.#closed) return Promise.reject(new Error("cluster is closed"));
    return new Promise((resolve, reject) => {
      this.#queue.push({ command, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, GROUP_COMMIT_MAX);
      const first = this.#store.appliedIndex() + 1;
      try {
        const results = this.#store.applyMany(
          batch.map((p, i) => ({ index: first + i, command: p.command })),
        );
        batch.forEach((p, i) => p.resolve({ index: first + i, result: results[i]! }));
      } catch (e) {
        for (const p of batch) p.reject(e as Error);
      }
    }
  }

  status(): ClusterStatus {
    const applied = this.#store.appliedIndex();
    return {
      leader: this.#node,
      leaderAddress: this.#address,
      term: 1,
      commitIndex: applied,
      appliedIndex: applied,
      role: "standalone",
      node: this.#node,
      lastContactMs: 0,
    };
  }

  members(): MemberStatus[] {
    return [{
      id: 1,
      name: this.#node,
      address: this.#address,
      role: "voter",
      state: "leader",
      lastContactMs: 0,
      status: "alive",
      contactFrom: "leader",
    }];
  }

  membersFromLeader(): Promise<MemberStatus[]> {
    return Promise.resolve(this.members());
  }

  /** No leader timers here: the session as the store has it. */
  renewSession(id: string): Promise<Session | undefined> {
    return Promise.resolve(this.#store.sessions.get(id));
  }

  readBarrier(): Promise<number> {
    return Promise.resolve(this.#store.appliedIndex());
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
