/**
 * ZoneView: keeps a Zone current from the store's change feed. A change's instance and node
 * deltas are applied to the zone at once (O(rows changed)); a reset (snapshot install, restore)
 * and, with `--dns-acl`, an ACL change that changes the filter (its `key`: the anonymous token's
 * rights) rebuild it: a new zone is filled from the store in slices of REBUILD_SLICE instances
 * with a turn of the event loop between slices, the old zone answering meanwhile; deltas
 * announced during the rebuild are queued and replayed on the new zone, in slices of about as
 * many rows (they set rows to their after state, so replaying one the slices already read changes
 * nothing), and then the new zone takes over. A reset during a rebuild starts it over (what it
 * read is gone); a filter change during a rebuild lets it finish with the filter it began with
 * and then starts one more, however many filter changes came meanwhile, so ACL writes faster
 * than a rebuild cannot keep the zone from ever being swapped in. More than
 * REBUILD_QUEUE_ROWS_MAX rows queued start the rebuild over (it reads them anyway). A store
 * smaller than one slice is rebuilt at once.
 *
 * `onChange` hears which answers changed: the dependency keys of a delta (zone.ts), or null when
 * a rebuilt zone took over (everything may have changed). `listen()` hands out the same events
 * as data for replicas (DNS worker threads): each delta applied to the answering zone, or the
 * new zone when one took over (its `rows()` fill a replica).
 *
 * @module
 */
import type { Change, Store } from "../store/mod.ts";
import { errorText } from "../lib/error_text.ts";
import { Zone, type ZoneOptions } from "./zone.ts";
import { fillDelta, type ZoneDelta, zoneDelta, type ZoneFilter } from "./zone_delta.ts";

/** Instances read and applied per slice of a rebuild. */
export const REBUILD_SLICE = 2000;
/** Rows queued during a rebuild past which it starts over (it reads them anyway). */
export const REBUILD_QUEUE_ROWS_MAX = 100_000;
/** Wait before a failed rebuild is tried again. */
export const REBUILD_RETRY_MS = 1000;

/** The store reads and feed a view needs. */
export type ZoneSource = Pick<Store, "subscribe" | "nodes" | "instancesPage" | "appliedIndex">;

export interface ZoneViewOptions {
  store: ZoneSource;
  /** Instances per rebuild slice (default REBUILD_SLICE). */
  sliceInstances?: number;
  /** Rows queued during a rebuild past which it starts over (default REBUILD_QUEUE_ROWS_MAX). */
  queueRowsMax?: number;
  /** The zone's naming options (the filter is `visible`'s). */
  zone: Omit<ZoneOptions, "visible">;
  /** `--dns-acl`: what the zone may name, asked at every rebuild; absent: everything. */
  visible?: () => ZoneFilter;
  /** Told after each applied change: the dependency keys it changed, or null for all. */
  onChange?: (deps: ReadonlySet<string> | null) => void;
}

/** What a replica of the answering zone is told: a delta applied to it, or a new zone. */
export type ZoneEvent = { delta: ZoneDelta } | { zone: Zone };

export class ZoneView {
  #opts: ZoneViewOptions;
  #zone: Zone;
  /** The filter of the zone answering (and of the rebuild under way). */
  #filter: ZoneFilter | undefined;
  /** The key of the newest filter asked for (an ACL change with the same key changes nothing). */
  #wantedKey: string | undefined;
  /** A filter change came during the rebuild under way: one more rebuild after it. */
  #again = false;
  /** Deltas announced while a rebuild runs, in order; null when none runs. */
  #queue: ZoneDelta[] | null = null;
  #queuedRows = 0;
  /** Bumped by every reset and by close(): a rebuild of an older generation stops. */
  #generation = 0;
  #scheduled = false;
  #retry: ReturnType<typeof setTimeout> | null = null;
  #unsubscribe: (() => void) | null = null;
  #waiters: (() => void)[] = [];
  readonly #listeners = new Set<(e: ZoneEvent) => void>();
  /** Longest slice of the last rebuild, in ms (the bench reads it). */
  worstSliceMs = 0;

  /** Builds the zone at once when the store holds less than one slice, else starts empty. */
  constructor(opts: ZoneViewOptions) {
    this.#opts = opts;
    this.#filter = opts.visible?.();
    this.#wantedKey = this.#filter?.key;
    const { zone, done } = this.#firstSlice();
    this.#zone = done ? zone : this.#emptyZone(opts.store.appliedIndex());
  }

  /** The zone answers come from now (replaced by a rebuild: read it per question). */
  get zone(): Zone {
    return this.#zone;
  }

  /** Whether a rebuild is under way (the zone answering is the one from before it). */
  get rebuilding(): boolean {
    return this.#queue !== null;
  }

  /** Calls `fn` after each delta applied to the answering zone and when a new zone took over. */
  listen(fn: (e: ZoneEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Subscribes to the feed and rebuilds; resolves once the rebuilt zone answers. */
  start(): Promise<void> {
    this.#unsubscribe ??= this.#opts.store.subscribe((c) => this.#onChange(c));
    const built = new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#restart();
    return built;
  }

  /**
   * New naming options (SIGHUP: `--dns-ttl`, `--dns-service-ttl`): a zone built with them takes
   * over as after a reset, the old one answering meanwhile. Resolves once it answers.
   */
  reconfigure(zone: ZoneViewOptions["zone"]): Promise<void> {
    this.#opts = { ...this.#opts, zone };
    if (this.#unsubscribe === null) return Promise.resolve(); // not started, or closed
    const built = new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#restart();
    return built;
  }

  /** Unsubscribes and stops a running rebuild. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#generation++;
    this.#queue = null;
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#retry = null;
    this.#wake();
  }

  #onChange(c: Change): void {
    if (c.reset) {
      this.#restart();
      return;
    }
    if (c.tables.has("acl") && this.#filterChanged()) {
      if (this.#queue === null) {
        this.#restart(); // it reads this change's rows too
        return;
      }
      // The rebuild under way finishes with its filter (this change's rows queue under it).
      this.#again = true;
    }
    const delta = zoneDelta(c, this.#filter);
    if (this.#queue !== null) {
      this.#queue.push(delta);
      this.#queuedRows += delta.instances.length + delta.nodes.length + 1;
      if (this.#queuedRows > (this.#opts.queueRowsMax ?? REBUILD_QUEUE_ROWS_MAX)) this.#restart();
      return;
    }
    const changed = this.#zone.apply(delta);
    if (changed.size > 0) this.#opts.onChange?.(changed);
    for (const fn of this.#listeners) fn({ delta });
  }

  /** Whether the newest filter's key differs from the last one asked for (no key: it may). */
  #filterChanged(): boolean {
    if (this.#opts.visible === undefined) return false;
    const key = this.#opts.visible().key;
    if (key !== undefined && key === this.#wantedKey) return false;
    this.#wantedKey = key;
    return true;
  }

  /**
   * Starts a rebuild with the newest filter (once per turn of the microtask queue; a running one
   * is dropped).
   */
  #restart(): void {
    this.#filter = this.#opts.visible?.();
    this.#wantedKey = this.#filter?.key;
    this.#again = false;
    this.#generation++;
    this.#queue = [];
    this.#queuedRows = 0;
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (this.#unsubscribe !== null) void this.#rebuild();
    });
  }

  async #rebuild(): Promise<void> {
    const generation = this.#generation;
    const size = this.#opts.sliceInstances ?? REBUILD_SLICE;
    const turn = async () => {
      await new Promise((resolve) => setTimeout(resolve, 0));
      return generation === this.#generation;
    };
    try {
      let { zone, done, last } = this.#firstSlice();
      while (!done) {
        if (!await turn()) return;
        ({ done, last } = this.#slice(zone, last));
      }
      // The queue grows while this yields; replayed in slices of about `size` rows too.
      const queue = this.#queue ?? [];
      let next = 0;
      for (;;) {
        const start = performance.now();
        for (let rows = 0; next < queue.length && rows < size; next++) {
          const d = queue[next]!;
          zone.fill(d);
          rows += d.instances.length + d.nodes.length + 1;
        }
        this.worstSliceMs = Math.max(this.worstSliceMs, performance.now() - start);
        if (next === queue.length) break;
        if (!await turn()) return;
      }
      zone.fill({ version: this.#opts.store.appliedIndex(), instances: [], nodes: [] });
      this.#queue = null;
      this.#zone = zone;
      this.#opts.onChange?.(null);
      for (const fn of this.#listeners) fn({ zone });
      this.#wake();
      if (this.#again) {
        this.#again = false;
        const key = this.#opts.visible?.().key;
        // Changed and changed back (the newest key is the one built): nothing more to do.
        if (key === undefined || key !== this.#filter?.key) this.#restart();
      }
    } catch (e) {
      if (generation !== this.#generation) return;
      console.error(
        `dns: zone rebuild failed, still answering from index ${this.#zone.version}, ` +
          `trying again in ${REBUILD_RETRY_MS} ms: ${errorText(e)}`,
      );
      this.#retry = setTimeout(() => {
        this.#retry = null;
        if (this.#unsubscribe !== null) this.#restart();
      }, REBUILD_RETRY_MS);
    }
  }

  /** A new zone with the store's nodes and first slice of instances. */
  #firstSlice(): { zone: Zone; done: boolean; last: string } {
    const store = this.#opts.store;
    const start = performance.now();
    const zone = this.#emptyZone(store.appliedIndex());
    zone.fill(
      fillDelta({ instances: [], nodes: store.nodes(), version: zone.version }, this.#filter),
    );
    this.worstSliceMs = performance.now() - start;
    return { zone, ...this.#slice(zone, "") };
  }

  /** Applies the slice of instances after id `after`; full when it was the last one. */
  #slice(zone: Zone, after: string): { done: boolean; last: string } {
    const start = performance.now();
    const size = this.#opts.sliceInstances ?? REBUILD_SLICE;
    const page = this.#opts.store.instancesPage(after, size);
    zone.fill(fillDelta({ instances: page, nodes: [], version: zone.version }, this.#filter));
    this.worstSliceMs = Math.max(this.worstSliceMs, performance.now() - start);
    return { done: page.length < size, last: page.at(-1)?.id ?? after };
  }

  #emptyZone(version: number): Zone {
    return new Zone({ instances: [], nodes: [], version }, this.#opts.zone);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
