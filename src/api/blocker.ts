/**
 * Blocking queries: a read that carries `?index=N` waits on the store's change feed until its
 * index passes N or its wait ends. One store subscription serves every waiter. A waiter names
 * what its answer reads (`Watch`: a table, a service, an instance, a node, a KV key or prefix,
 * a view's topic), and the blocker keeps waiters in maps keyed by those names, so a change looks
 * up only the waiters of what it touched: a change to service A does not look at a watch on
 * service B, a KV write outside a watched prefix not at that watch (Consul's per-service and
 * per-key indexes). A change costs O(tables + services + rows + keys × distinct prefix lengths +
 * topics + waiters touched), never O(all waiters); with nothing changing, a waiter costs its one
 * timer (its `?wait`) and memory.
 * A reset (a snapshot restore or install) answers every waiter, as Consul abandons every watch
 * on a restore: any answer may differ, and an index read from a row (a KV key's, an instance's
 * modify index) may have gone back below the one the client waits past.
 *
 * @module
 */
import type { Change, Store, Table } from "../store/mod.ts";
import { HttpError } from "./http_error.ts";

/**
 * Most reads blocked at once; one more gets 429 rather than unbounded memory. Consul sets no
 * such bound; this one is above the 10,000 watches a large fleet opens (consul-template,
 * Prometheus service discovery: a few per host) and bounds memory. Measured over HTTP here
 * (10,000 blocked KV reads, RSS after a forced GC): about 33 KiB each, of which ~19 KiB is
 * Deno.serve's own per open request and ~9 KiB the JS heap (request, context, waiter, timer);
 * so at most ~530 MiB.
 */
export const BLOCKED_READS_MAX = 16_384;

/**
 * What a blocked read's answer depends on. A change wakes the waiter (which then checks its
 * index) only when it touches one of its watches (`watchTouched` says exactly when).
 */
export type Watch =
  /** Any change to the table. */
  | { table: Table }
  /** The instances of one service (the store's per-service index moves with them). */
  | { service: string }
  /** One instance row, by id. */
  | { instance: string }
  /** One node: its row and the instance rows on it (before or after the change). */
  | { node: string }
  /** One KV key. */
  | { key: string }
  /** Every KV key that starts with `prefix` ("" is every key). */
  | { prefix: string }
  /** Every change (reads whose index is the applied index). */
  | { all: true }
  /**
   * A view's own question about a change (BlockerOptions.topics), asked once per change:
   * "services" is whether the service list of /v1/catalog/services changed.
   */
  | { topic: string };

/** Per topic, whether a change moved what the topic's readers read; asked once per change. */
export type Topics = Record<string, (c: Change) => boolean>;

/**
 * Whether `c` touches `w` (`topics`: the blocker's); the blocker's maps give the same answer
 * without looking at each waiter. A topic nobody defined counts as touched.
 */
export function watchTouched(w: Watch, c: Change, topics: Topics = {}): boolean {
  if ("all" in w || c.reset) return true;
  if ("topic" in w) return topics[w.topic]?.(c) ?? true;
  if ("table" in w) return c.tables.has(w.table);
  if ("service" in w) return c.services.has(w.service);
  if ("instance" in w) return c.instances.some((d) => d.id === w.instance);
  if ("node" in w) {
    return c.nodes.some((d) => d.name === w.node) ||
      c.instances.some((d) => d.before?.node === w.node || d.after?.node === w.node);
  }
  if (!c.tables.has("kv")) return false;
  // A KV change that names no key: every key may have changed.
  if (c.keys.size === 0) return true;
  for (const k of c.keys) {
    if ("key" in w ? k === w.key : k.startsWith(w.prefix)) return true;
  }
  return false;
}

interface Waiter {
  readonly watches: readonly Watch[];
  readonly done: () => boolean;
  readonly finish: () => void;
}

/** Waiters by name, one set per name; empty sets are dropped. */
class WaiterMap<K> {
  readonly map = new Map<K, Set<Waiter>>();

  add(k: K, w: Waiter): void {
    const set = this.map.get(k);
    if (set === undefined) this.map.set(k, new Set([w]));
    else set.add(w);
  }

  /** Removes `w` under `k`; true when `k` has no waiter left. */
  delete(k: K, w: Waiter): boolean {
    const set = this.map.get(k);
    if (set === undefined) return false;
    set.delete(w);
    if (set.size > 0) return false;
    this.map.delete(k);
    return true;
  }

  collect(k: K, into: Set<Waiter>): void {
    const set = this.map.get(k);
    if (set !== undefined) { for (const w of set) into.add(w); }
  }

  collectAll(into: Set<Waiter>): void {
    for (const set of this.map.values()) for (const w of set) into.add(w);
  }
}

export interface BlockerOptions {
  /** Most concurrent waiters (default BLOCKED_READS_MAX). */
  waitersMax?: number;
  /** Ends every wait at once (agent shutdown). */
  signal?: AbortSignal;
  /** The questions `{ topic }` watches name (see Watch). */
  topics?: Topics;
}

export class Blocker {
  readonly #all = new Set<Waiter>();
  readonly #tables = new WaiterMap<Table>();
  readonly #services = new WaiterMap<string>();
  readonly #instances = new WaiterMap<string>();
  readonly #nodes = new WaiterMap<string>();
  readonly #keys = new WaiterMap<string>();
  readonly #prefixes = new WaiterMap<string>();
  readonly #topics = new WaiterMap<string>();
  readonly #topicTests: Topics;
  /** Length → number of watched prefixes of that length: a changed key is cut at each. */
  readonly #prefixLengths = new Map<number, number>();
  #size = 0;
  readonly #max: number;
  readonly #signal: AbortSignal | undefined;

  constructor(store: Pick<Store, "subscribe">, opts: BlockerOptions = {}) {
    this.#max = opts.waitersMax ?? BLOCKED_READS_MAX;
    this.#signal = opts.signal;
    this.#topicTests = opts.topics ?? {};
    const unsubscribe = store.subscribe((c) => this.#onChange(c));
    opts.signal?.addEventListener("abort", () => {
      unsubscribe();
      const everyone = new Set<Waiter>();
      this.#collectEvery(everyone);
      for (const w of everyone) w.finish();
    }, { once: true });
  }

  /** Waiters currently blocked (for /metrics). */
  get size(): number {
    return this.#size;
  }

  /**
   * Resolves when `done()` turns true after a change that touches one of `watches`, on a reset
   * (whatever `done()` says), after `waitMs`, or when the request or the server goes away. Throws 429 when too many reads are
   * already blocked.
   */
  wait(
    watches: Watch | readonly Watch[],
    done: () => boolean,
    opts: { waitMs: number; signal?: AbortSignal },
  ): Promise<void> {
    if (done() || this.#signal?.aborted || opts.signal?.aborted) return Promise.resolve();
    if (this.#size >= this.#max) {
      throw new HttpError(429, `too many blocking queries in flight (${this.#max}); retry later`);
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    let waiting = true;
    const onAbort = () => waiter.finish();
    const timer = setTimeout(onAbort, opts.waitMs);
    const waiter: Waiter = {
      watches: Array.isArray(watches) ? watches : [watches as Watch],
      done,
      finish: () => {
        if (!waiting) return;
        waiting = false;
        this.#remove(waiter);
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        resolve();
      },
    };
    this.#add(waiter);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    return promise;
  }

  #add(w: Waiter): void {
    this.#size++;
    for (const x of w.watches) {
      if ("all" in x) this.#all.add(w);
      else if ("topic" in x) this.#topics.add(x.topic, w);
      else if ("table" in x) this.#tables.add(x.table, w);
      else if ("service" in x) this.#services.add(x.service, w);
      else if ("instance" in x) this.#instances.add(x.instance, w);
      else if ("node" in x) this.#nodes.add(x.node, w);
      else if ("key" in x) this.#keys.add(x.key, w);
      else {
        const first = !this.#prefixes.map.has(x.prefix);
        this.#prefixes.add(x.prefix, w);
        const n = x.prefix.length;
        if (first) this.#prefixLengths.set(n, (this.#prefixLengths.get(n) ?? 0) + 1);
      }
    }
  }

  #remove(w: Waiter): void {
    this.#size--;
    for (const x of w.watches) {
      if ("all" in x) this.#all.delete(w);
      else if ("topic" in x) this.#topics.delete(x.topic, w);
      else if ("table" in x) this.#tables.delete(x.table, w);
      else if ("service" in x) this.#services.delete(x.service, w);
      else if ("instance" in x) this.#instances.delete(x.instance, w);
      else if ("node" in x) this.#nodes.delete(x.node, w);
      else if ("key" in x) this.#keys.delete(x.key, w);
      else if (this.#prefixes.delete(x.prefix, w)) {
        const n = x.prefix.length;
        const left = (this.#prefixLengths.get(n) ?? 1) - 1;
        if (left === 0) this.#prefixLengths.delete(n);
        else this.#prefixLengths.set(n, left);
      }
    }
  }

  #collectEvery(into: Set<Waiter>): void {
    for (const w of this.#all) into.add(w);
    for (
      const m of [
        this.#tables,
        this.#services,
        this.#instances,
        this.#nodes,
        this.#keys,
        this.#prefixes,
        this.#topics,
      ]
    ) {
      m.collectAll(into);
    }
  }

  /** The waiters `c` touches: the same set as `watchTouched` over every waiter, found by name. */
  #touched(c: Change): Set<Waiter> {
    const out = new Set<Waiter>(this.#all);
    for (const t of c.tables) this.#tables.collect(t, out);
    for (const topic of this.#topics.map.keys()) {
      if (this.#topicTests[topic]?.(c) ?? true) this.#topics.collect(topic, out);
    }
    for (const s of c.services) this.#services.collect(s, out);
    if (this.#instances.map.size > 0) {
      for (const d of c.instances) this.#instances.collect(d.id, out);
    }
    if (this.#nodes.map.size > 0) {
      for (const d of c.nodes) this.#nodes.collect(d.name, out);
      for (const d of c.instances) {
        if (d.before !== null) this.#nodes.collect(d.before.node, out);
        if (d.after !== null) this.#nodes.collect(d.after.node, out);
      }
    }
    if (c.tables.has("kv")) {
      if (c.keys.size === 0) {
        this.#keys.collectAll(out);
        this.#prefixes.collectAll(out);
      } else {
        for (const k of c.keys) {
          this.#keys.collect(k, out);
          for (const n of this.#prefixLengths.keys()) {
            if (n <= k.length) this.#prefixes.collect(n === k.length ? k : k.slice(0, n), out);
          }
        }
      }
    }
    return out;
  }

  #onChange(c: Change): void {
    if (this.#size === 0) return;
    if (c.reset) {
      // Whatever done() says: a row's index may have gone back below the one waited past.
      const everyone = new Set<Waiter>();
      this.#collectEvery(everyone);
      for (const w of everyone) w.finish();
      return;
    }
    for (const w of this.#touched(c)) if (w.done()) w.finish();
  }
}
