/**
 * `berth.http.strip-prefix=true` (README "Middlewares"): the path prefix of the route the
 * request matched is removed before forwarding (`/api/x?q` → `/x?q`, `/api` → `/`), and
 * `X-Forwarded-Prefix: /api` tells the instance what was removed (as Traefik's stripPrefix;
 * a client's own X-Forwarded-Prefix is dropped). A route of a whole host (prefix `/`) is left
 * as it is.
 *
 * @module
 */
import { parseBool, STRIP_PREFIX_KEY } from "../../store/route_keys_http.ts";
import type { MiddlewarePart, RequestState } from "./pipeline.ts";
import { setHeader } from "./header_list.ts";

/** `url` without `prefix` (which it starts with, on a segment boundary), still a path. */
export function stripPrefix(url: string, prefix: string): string {
  if (prefix === "/" || !url.startsWith(prefix)) return url;
  const rest = url.slice(prefix.length);
  if (rest === "") return "/";
  return rest.charCodeAt(0) === 47 ? rest : `/${rest}`; // "/x" stays, "?q" becomes "/?q"
}

export const STRIP_PREFIX: MiddlewarePart = {
  name: "strip-prefix",
  build(settings) {
    const value = settings.get(STRIP_PREFIX_KEY);
    let on = false;
    try {
      on = value !== undefined && parseBool(value);
    } catch {
      on = false;
    }
    if (!on) return null;
    return {
      name: "strip-prefix",
      request(s: RequestState) {
        if (s.prefix === "/") return null;
        s.url = stripPrefix(s.url, s.prefix);
        s.headers = setHeader(s.headers, "x-forwarded-prefix", s.prefix);
        return null;
      },
    };
  },
};
