/**
 * Route settings for tests of the registry's plumbing (rules.meta, Docker labels, the proxy's
 * RouteSettings), independent of the real rows: `berth.test.n` (a whole number, canonical
 * without leading zeros), the family `berth.test.h.` (lower-cased) and the longer family
 * `berth.test.h.x.` (upper-cased), so a test sees which row parsed a key.
 *
 * @module
 */
import { CommandError, type RouteKey, RouteKeyIndex } from "../src/store/mod.ts";

export const TEST_ROUTE_KEYS: RouteKey[] = [
  {
    key: "berth.test.n",
    example: "3",
    doc: "a number",
    onBad: "no number",
    parse(value) {
      if (!/^\d{1,6}$/.test(value)) throw new CommandError(value, "a whole number");
      return String(Number(value));
    },
  },
  {
    key: "berth.test.h.",
    example: "NAME=V",
    doc: "a family",
    onBad: "header left out",
    parse: (value) => value.toLowerCase(),
  },
  {
    key: "berth.test.h.x.",
    example: "NAME=V",
    doc: "a longer family",
    onBad: "left out",
    parse: (value) => value.toUpperCase(),
  },
];

export const TEST_ROUTE_INDEX = new RouteKeyIndex(TEST_ROUTE_KEYS);
