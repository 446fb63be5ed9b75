/**
 * A route's settings: the canonical values of the route settings (src/store/route_keys.ts) its
 * service's instances set, by key, and the compiled forms the proxy's parts make of them
 * (regexes, CIDR lists, header lists), each made once per settings object.
 *
 * Settings are interned per route table (route_member.ts), so members and routes with the same
 * settings share one object and one compiled form. State that must outlive a route rebuild
 * (rate-limit buckets, slow-start clocks, queues) is kept by the proxy keyed by service or target
 * key, never here.
 *
 * @module
 */
import { ROUTE_KEY_INDEX, type RouteKeyIndex } from "../store/mod.ts";

/** A compiled form of settings, made once per settings object (`settings.compiled(part)`). */
export interface RoutePart<T> {
  /** Names the part in errors and tests. */
  readonly name: string;
  /**
   * Pure: the same settings give an equal value. Called at most once per settings object. A
   * value it cannot read (meta stored by an older version) is skipped, never thrown.
   */
  compile(s: RouteSettings): T;
}

/** `parse(value)` of a stored setting, or null when it is absent or unreadable. */
export function readSetting<T>(s: RouteSettings, key: string, parse: (v: string) => T): T | null {
  const v = s.get(key);
  if (v === undefined) return null;
  try {
    return parse(v);
  } catch {
    return null;
  }
}

const SEP = "\u0000";

/** The route setting keys of `meta`, sorted; null when there are none. */
function settingKeys(
  meta: Readonly<Record<string, string>>,
  index: RouteKeyIndex,
): string[] | null {
  let keys: string[] | null = null;
  for (const k of Object.keys(meta)) {
    if (k.startsWith("berth.") && index.find(k) !== undefined) (keys ??= []).push(k);
  }
  return keys?.sort() ?? null;
}

/** The route settings of an instance or a route; immutable. */
export class RouteSettings {
  /** No settings: what an instance without route settings has. */
  static readonly EMPTY: RouteSettings = new RouteSettings(new Map());

  /** Canonical meta values by key, keys sorted. */
  readonly values: ReadonlyMap<string, string>;
  /** The settings' identity: equal keys ⇔ equal settings. */
  readonly key: string;
  readonly #compiled = new Map<RoutePart<unknown>, unknown>();

  private constructor(values: Map<string, string>) {
    this.values = values;
    let key = "";
    for (const [k, v] of values) key += `${k}${SEP}${v}${SEP}`;
    this.key = key;
  }

  /**
   * The route settings among an instance's meta (keys `index` knows, default ROUTE_KEYS),
   * sorted by key; EMPTY when there are none. Values are taken as stored (the store keeps them
   * canonical).
   */
  static fromMeta(
    meta: Readonly<Record<string, string>>,
    index: RouteKeyIndex = ROUTE_KEY_INDEX,
  ): RouteSettings {
    const keys = settingKeys(meta, index);
    if (keys === null) return RouteSettings.EMPTY;
    return new RouteSettings(new Map(keys.map((k) => [k, meta[k]!])));
  }

  /** These settings with `over`'s values set (added or replaced), keys sorted again. */
  with(over: Readonly<Record<string, string>>): RouteSettings {
    const values = new Map(this.values);
    for (const [k, v] of Object.entries(over)) values.set(k, v);
    return new RouteSettings(new Map([...values].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)));
  }

  /** The settings' key without making them (route_member.ts interns by it). */
  static keyOf(
    meta: Readonly<Record<string, string>>,
    index: RouteKeyIndex = ROUTE_KEY_INDEX,
  ): string {
    const keys = settingKeys(meta, index);
    if (keys === null) return "";
    let key = "";
    for (const k of keys) key += `${k}${SEP}${meta[k]!}${SEP}`;
    return key;
  }

  get size(): number {
    return this.values.size;
  }

  get(key: string): string | undefined {
    return this.values.get(key);
  }

  /** Entries of a key family (`berth.http.request-header.` → [[fullKey, value], …]), by key. */
  family(prefix: string): [string, string][] {
    const out: [string, string][] = [];
    for (const [k, v] of this.values) {
      if (k.length > prefix.length && k.startsWith(prefix)) out.push([k, v]);
    }
    return out;
  }

  /** `part.compile(this)`, computed once per settings object and cached. */
  compiled<T>(part: RoutePart<T>): T {
    if (this.#compiled.has(part)) return this.#compiled.get(part) as T;
    const v = part.compile(this);
    this.#compiled.set(part, v);
    return v;
  }
}
