/**
 * Keeps the proxy's route table following the store's change feed: each change's instance and
 * node deltas are applied to the table in place (routes.ts, O(changed)); a reset (start,
 * snapshot install, restore) builds a new table and swaps it in with one assignment.
 *
 * A build reads the instances in pages of `sliceSize` (in id order) and yields to the event
 * loop between pages, so 100,000 instances do not stall DNS or the proxy; the old table serves
 * meanwhile. Changes that come in during the build are queued and applied to the new table, in
 * order, before it is swapped in (deltas set rows to their `after`: applying one the pages
 * already saw changes nothing). A reset during a build starts it over. Fewer instances than
 * one page build at once. A build that fails (a page read, or the replay of what came meanwhile)
 * keeps the old table serving and is tried again after ROUTE_RETRY_MS, doubling up to
 * ROUTE_RETRY_MS_MAX while it keeps failing; changes that come in meanwhile are left to that
 * build, which reads them from the store.
 *
 * @module
 */
import type { Change, Instance, NodeInfo } from "../store/mod.ts";
import { errorText } from "../lib/error_text.ts";
import { RouteTable, type RouteTableOptions } from "./routes.ts";

/** Instances read per page of a build. */
export const ROUTE_SLICE_SIZE = 2000;
/** Wait before a failed build is tried again (doubled after each failure in a row). */
export const ROUTE_RETRY_MS = 1000;
/** Longest wait between tries of a build that keeps failing. */
export const ROUTE_RETRY_MS_MAX = 30_000;

/** What the feed reads: the store. */
export interface RouteSource {
  /** Instances with id > `afterId`, in id order, at most `limit`. */
  instancesPage(afterId: string, limit: number): Instance[];
  nodes(): NodeInfo[];
  subscribe(fn: (c: Change) => void): () => void;
}

export interface RouteFeedOptions extends Omit<RouteTableOptions, "previous"> {
  source: RouteSource;
  /** Instances per page of a build. Default ROUTE_SLICE_SIZE. */
  sliceSize?: number;
  /** First wait before a failed build is tried again. Default ROUTE_RETRY_MS. */
  retryMs?: number;
  /** Targets a change stopped (`gone`) or started (`back`) routing to. */
  targetsChanged(gone: readonly string[], back: readonly string[]): void;
  /** A new table was swapped in: `live` are all its targets. */
  targetsReset(live: ReadonlySet<string>): void;
  /** TCP ports whose service changed; undefined: any may have (a new table). */
  tcpChanged(ports?: readonly number[]): void;
  /** UDP ports whose service changed; undefined: any may have (a new table). */
  udpChanged?(ports?: readonly number[]): void;
  log(line: string): void;
}

interface Build {
  table: RouteTable;
  /** Changes announced during the build, applied before the swap. */
  queued: Change[];
  /** A reset came in: the build starts over. */
  restart: boolean;
}

/** The route table in use and its upkeep from the change feed. */
export class RouteFeed {
  readonly #o: RouteFeedOptions;
  readonly #sliceSize: number;
  #table = RouteTable.empty();
  #build: Build | null = null;
  /** Resolved when the build under way is over. */
  #waiting: PromiseWithResolvers<void> | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** A failed build's next try; null when none is due. */
  #retry: ReturnType<typeof setTimeout> | null = null;
  /** Builds failed in a row. */
  #failures = 0;
  #unsubscribe: (() => void) | null = null;

  constructor(opts: RouteFeedOptions) {
    this.#o = opts;
    this.#sliceSize = opts.sliceSize ?? ROUTE_SLICE_SIZE;
  }

  /** The table in use. */
  get table(): RouteTable {
    return this.#table;
  }

  /** Resolves when no build is under way. */
  settled(): Promise<void> {
    return this.#waiting?.promise ?? Promise.resolve();
  }

  /** Builds the first table (at once when small) and follows the change feed. */
  start(): void {
    this.#rebuild();
    this.#unsubscribe = this.#o.source.subscribe(this.#onChange);
  }

  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#retry = null;
    this.#done();
  }

  #onChange = (c: Change): void => {
    if (!c.tables.has("instances") && !c.tables.has("nodes")) return;
    if (this.#retry !== null) return; // the build tried again reads it from the store
    if (this.#build !== null) {
      if (c.reset) this.#build.restart = true;
      else this.#build.queued.push(c);
      return;
    }
    if (c.reset) return this.#rebuild();
    const o = this.#o;
    try {
      const changes = this.#table.apply(c.instances, c.nodes);
      o.targetsChanged(changes.gone, changes.back);
      if (changes.tcpPorts.length > 0) o.tcpChanged(changes.tcpPorts);
      if (changes.udpPorts.length > 0) o.udpChanged?.(changes.udpPorts);
      for (const line of changes.conflicts) o.log(`proxy: ${line}`);
    } catch (e) {
      o.log(`proxy: rebuilding the routes, a change did not apply: ${errorText(e)}`);
      this.#rebuild();
    }
  };

  /** Starts a build from the store (over, when one is under way); small stores finish at once. */
  #rebuild(): void {
    const o = this.#o;
    this.#build = null;
    const table = new RouteTable({
      edgeDomain: o.edgeDomain,
      load: o.load,
      random: o.random,
      rampedWeight: o.rampedWeight,
      previous: this.#table,
    });
    try {
      table.load([], o.source.nodes());
      const page = o.source.instancesPage("", this.#sliceSize);
      table.load(page);
      if (page.length < this.#sliceSize) {
        this.#swap(table);
        return this.#done();
      }
      this.#waiting ??= Promise.withResolvers();
      this.#build = { table, queued: [], restart: false };
      this.#next(page[page.length - 1]!.id);
    } catch (e) {
      this.#failed(e);
    }
  }

  /** The next page of the build, after a turn of the event loop. */
  #next(afterId: string): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const b = this.#build;
      if (b === null) return;
      if (b.restart) return this.#rebuild();
      try {
        const page = this.#o.source.instancesPage(afterId, this.#sliceSize);
        b.table.load(page);
        if (page.length === this.#sliceSize) return this.#next(page[page.length - 1]!.id);
        for (const c of b.queued) b.table.apply(c.instances, c.nodes);
        this.#build = null;
        this.#swap(b.table);
        this.#done();
      } catch (e) {
        this.#failed(e);
      }
    }, 0);
  }

  #failed(e: unknown): void {
    this.#build = null;
    this.#failures++;
    const ms = Math.min(
      (this.#o.retryMs ?? ROUTE_RETRY_MS) * 2 ** (this.#failures - 1),
      ROUTE_RETRY_MS_MAX,
    );
    this.#o.log(
      `proxy: keeping the old routes, rebuilding failed (trying again in ${ms} ms): ${
        errorText(e)
      }`,
    );
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (this.#unsubscribe !== null) this.#rebuild();
    }, ms);
    this.#done();
  }

  /** No build under way any more. */
  #done(): void {
    this.#waiting?.resolve();
    this.#waiting = null;
  }

  #swap(table: RouteTable): void {
    this.#failures = 0;
    const old = this.#table;
    // Invariant: one reference assignment; requests under way keep the routes they matched.
    this.#table = table.loaded();
    this.#o.targetsReset(table.liveKeys());
    this.#o.tcpChanged();
    this.#o.udpChanged?.();
    const logged = new Set(old.conflicts);
    for (const line of table.conflicts) if (!logged.has(line)) this.#o.log(`proxy: ${line}`);
  }
}
