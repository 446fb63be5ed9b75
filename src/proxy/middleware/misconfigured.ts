/**
 * The middleware of a security key (allow list, basic auth) whose stored value no longer
 * parses (written before the key was checked, or by another version): it answers every
 * request 500 rather than serve the route unprotected.
 *
 * @module
 */
import type { Middleware } from "./pipeline.ts";

/** A middleware named `name` that refuses every request, naming `key`. */
export function misconfigured(name: string, key: string): Middleware {
  return {
    name,
    request: () => ({ status: 500, text: `service misconfigured: bad ${key} value` }),
  };
}
