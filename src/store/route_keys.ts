/**
 * Every route setting berth knows: the labels that are also API `Meta` keys and that the proxy
 * reads into a route (src/proxy/route_settings.ts). Each topic lists its rows in its own file;
 * `rules.meta` parses every key found here, the Docker watcher reads the same keys from labels,
 * and the README's label table lists the rows.
 *
 * @module
 */
import { HIDDEN_VALUE, isFamily, type RouteKey, RouteKeyIndex, routeValue } from "./route_key.ts";
import { CommandError, fail } from "./rule_basics.ts";
import { HTTP_KEYS } from "./route_keys_http.ts";
import { LIMITS_KEYS } from "./route_keys_limits.ts";
import { LB_KEYS } from "./route_keys_lb.ts";
import { L4_KEYS } from "./route_keys_l4.ts";

/** Every row, in the README's order. */
export const ROUTE_KEYS: readonly RouteKey[] = [
  ...HTTP_KEYS,
  ...LIMITS_KEYS,
  ...LB_KEYS,
  ...L4_KEYS,
];

/** The index of ROUTE_KEYS. */
export const ROUTE_KEY_INDEX: RouteKeyIndex = new RouteKeyIndex(ROUTE_KEYS);

/** The row of a meta key: exact match, else the longest family prefix; undefined when none. */
export function routeKey(metaKey: string): RouteKey | undefined {
  return ROUTE_KEY_INDEX.find(metaKey);
}

/** Whether the value of meta key or label `key` is a secret (RouteKey.secret). */
export function isSecretKey(key: string): boolean {
  return key.startsWith("berth.") && routeKey(key)?.secret === true;
}

/**
 * `meta` as every API read shows it (Consul shapes, /v1/berth/instances, explain): the values
 * of secret settings (`berth.http.auth.basic`, `berth.http.request-header.*`) replaced by
 * HIDDEN_VALUE, whatever the token (a service:read token, or anyone with ACLs off, could
 * otherwise crack the hashes offline). The same object when it has none.
 */
export function shownMeta(meta: Readonly<Record<string, string>>): Record<string, string> {
  let out: Record<string, string> | undefined;
  for (const key in meta) {
    if (!isSecretKey(key)) continue;
    out ??= { ...meta };
    out[key] = HIDDEN_VALUE;
  }
  return out ?? (meta as Record<string, string>);
}

/**
 * The name two keys of a family share when they set the same thing: family keys end in a
 * header name (`berth.http.request-header.X-A`), and header names ignore case, so `…X-A` and
 * `…x-a` are one header. Null for a key of no family.
 */
export function familyTwinKey(k: RouteKey, key: string): string | null {
  return isFamily(k) ? key.toLowerCase() : null;
}

/** The family keys read so far, by the header they name (familyTwinKey). */
export class FamilyTwins {
  readonly #first = new Map<string, string>();

  /** The key read before that names the same header as `key`, else undefined (`key` is kept). */
  earlier(k: RouteKey, key: string): string | undefined {
    const twin = familyTwinKey(k, key);
    if (twin === null) return undefined;
    const first = this.#first.get(twin);
    if (first === undefined) this.#first.set(twin, key);
    return first;
  }
}

/**
 * Replaces each route setting of meta `m` by its canonical text; a bad value throws the
 * CommandError `<path>.<KEY>: expected …, got "value"`, and so do two keys of a family that
 * name the same header (familyTwinKey). Other keys are left as they are.
 */
export function canonicalRouteMeta(
  m: Record<string, string>,
  path: string,
  index: RouteKeyIndex = ROUTE_KEY_INDEX,
): void {
  const twins = new FamilyTwins();
  for (const key of Object.keys(m)) {
    const k = index.find(key);
    if (k === undefined) continue;
    const first = twins.earlier(k, key);
    if (first !== undefined) {
      throw new CommandError(
        `${path}.${key}: names the same header as ${path}.${first} (header names ignore ` +
          "case); give it once",
        "one key per header",
      );
    }
    const value = m[key]!;
    try {
      m[key] = routeValue(k, key, value);
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      const want = e.want || e.message;
      if (k.secret === true) {
        throw new CommandError(`${path}.${key}: expected ${want} (value hidden)`, want);
      }
      fail(`${path}.${key}`, want, value);
    }
  }
}
