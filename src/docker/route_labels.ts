/**
 * Route settings from a container's labels: every label whose key is a route setting
 * (src/store/route_keys.ts) is parsed by the setting's row; a good value goes into each
 * instance's meta as its canonical text, a bad one is one Problem (`KEY="value": expected …;
 * ON_BAD`) and is left out, so the route falls back to the default; a security setting (a row
 * with `failClosed`: basic auth, allow list) takes that value instead, refusing every request.
 * Two labels naming the same header in another case (`…header.X-A`, `…header.x-a`): the first
 * in key order is read, the other is a Problem.
 *
 * @module
 */
import {
  CommandError,
  FamilyTwins,
  ROUTE_KEY_INDEX,
  type RouteKey,
  type RouteKeyIndex,
  routeValue,
} from "../store/mod.ts";
import { badValue, type ContainerSettings } from "./labels.ts";

/** Most route settings read from one container (the store keeps at most 64 meta pairs). */
export const ROUTE_LABELS_MAX = 32;

/** The container's route settings, canonical, by key (sorted). Never throws. */
export function routeLabels(
  s: ContainerSettings,
  index: RouteKeyIndex = ROUTE_KEY_INDEX,
): Record<string, string> {
  const out: Record<string, string> = {};
  const twins = new FamilyTwins();
  let n = 0;
  for (const key of s.labelKeys()) {
    const k = index.find(key);
    if (k === undefined) continue;
    const first = twins.earlier(k, key);
    if (first !== undefined) {
      s.problem(
        key,
        `${key}: names the same header as ${first} (header names ignore case); ignored`,
      );
      continue;
    }
    const value = s.label(key)?.trim() ?? "";
    if (value === "" && typeof k.failClosed !== "string") continue;
    if (n === ROUTE_LABELS_MAX) {
      s.problem(key, `${key}: more than ${ROUTE_LABELS_MAX} route settings; ${k.onBad}`);
      const closed = failClosedValue(k.failClosed, value);
      if (closed !== "") out[key] = closed;
      continue;
    }
    try {
      out[key] = routeValue(k, key, value);
      n++;
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      badValue(s, key, value, e, k.onBad);
      const closed = failClosedValue(k.failClosed, value);
      if (closed !== "") {
        out[key] = closed;
        n++;
      }
    }
  }
  return out;
}

/** What a bad `value` of a row with `failClosed` becomes ("" : left out). */
function failClosedValue(failClosed: RouteKey["failClosed"], value: string): string {
  if (failClosed === undefined) return "";
  return typeof failClosed === "string" ? failClosed : failClosed(value);
}
