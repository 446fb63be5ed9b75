/**
 * What an apply changed, and who hears of it. Apply functions note the tables, services and KV
 * keys they touch, and every instance and node row they write, in a `ChangeSet`; after the
 * transaction commits, the store hands one `Change` to every subscriber of its `ChangeFeed` (the
 * DNS zone, the proxy's route table and blocking API queries update from its rows, or rebuild
 * on a `reset`).
 *
 * @module
 */
import type { Change, Instance, InstanceDelta, NodeDelta, NodeInfo, Table } from "./types.ts";

/** A row's first `before` and last `after` within one change set. */
interface Touch<T> {
  before: T | null;
  after: T | null;
}

/**
 * The tables, services and keys one transaction changed, and the instance and node rows it
 * wrote (first `before`, last `after`), built up while it applies.
 */
export class ChangeSet {
  readonly tables = new Set<Table>();
  readonly services = new Set<string>();
  readonly keys = new Set<string>();
  /** The whole state may have changed (a restore committed): views rebuild, rows not kept. */
  reset = false;
  readonly #instances = new Map<string, Touch<Instance>>();
  readonly #nodes = new Map<string, Touch<NodeInfo>>();

  /** Notes a write of instance `id`: `before` counts only on its first touch. */
  instance(id: string, before: Instance | null, after: Instance | null): void {
    touch(this.#instances, id, before, after);
  }

  /** Notes a write of node `name`, like `instance`. */
  node(name: string, before: NodeInfo | null, after: NodeInfo | null): void {
    touch(this.#nodes, name, before, after);
  }

  /**
   * Adds everything `other` changed (a batch's sub-commands, once the batch holds): a row this
   * set touched already keeps its `before` and takes `other`'s `after`.
   */
  merge(other: ChangeSet): void {
    for (const t of other.tables) this.tables.add(t);
    for (const s of other.services) this.services.add(s);
    for (const k of other.keys) this.keys.add(k);
    if (other.reset) this.reset = true;
    for (const [id, t] of other.#instances) touch(this.#instances, id, t.before, t.after);
    for (const [name, t] of other.#nodes) touch(this.#nodes, name, t.before, t.after);
  }

  /** The instance rows whose `after` differs from their `before`, in first-touch order. */
  instanceDeltas(): InstanceDelta[] {
    const out: InstanceDelta[] = [];
    for (const [id, t] of this.#instances) {
      if (!sameRow(t.before, t.after)) out.push({ id, before: t.before, after: t.after });
    }
    return out;
  }

  /** The node rows whose `after` differs from their `before`, in first-touch order. */
  nodeDeltas(): NodeDelta[] {
    const out: NodeDelta[] = [];
    for (const [name, t] of this.#nodes) {
      if (!sameRow(t.before, t.after)) out.push({ name, before: t.before, after: t.after });
    }
    return out;
  }

  /** The `Change` announced for this set at `index` (rows left out when it is a reset). */
  toChange(index: number): Change {
    return {
      index,
      tables: this.tables,
      services: this.services,
      keys: this.keys,
      instances: this.reset ? [] : this.instanceDeltas(),
      nodes: this.reset ? [] : this.nodeDeltas(),
      reset: this.reset,
    };
  }
}

function touch<T>(
  rows: Map<string, Touch<T>>,
  key: string,
  before: T | null,
  after: T | null,
): void {
  const t = rows.get(key);
  if (t === undefined) rows.set(key, { before, after });
  else t.after = after;
}

/**
 * Whether two rows are the same. Every write sets the row's modify index to the entry's, later
 * than any `before`'s, so rows with different indexes differ; others are compared whole (rows
 * come from JSON text, queries.ts, so equal rows give equal JSON: meta is stored sorted).
 */
function sameRow(
  a: { modifyIndex: number } | null,
  b: { modifyIndex: number } | null,
): boolean {
  if (a === null || b === null) return a === b;
  if (a.modifyIndex !== b.modifyIndex) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

export class ChangeFeed {
  readonly #subscribers = new Set<(c: Change) => void>();

  /** Calls `fn` with every change announced from now on. Returns an unsubscribe. */
  subscribe(fn: (c: Change) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** Hands `c` to every subscriber; one that throws is logged and the others still hear it. */
  announce(c: Change): void {
    for (const fn of this.#subscribers) {
      try {
        fn(c);
      } catch (e) {
        console.error(`store: change subscriber failed: ${e}`);
      }
    }
  }

  clear(): void {
    this.#subscribers.clear();
  }
}
