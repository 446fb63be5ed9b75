/**
 * `berth.http.rewrite=REGEX REPLACEMENT` (README "Middlewares"): every match of the RE2 regex
 * in the request's path (after strip-prefix; the query is not matched and is kept as sent) is
 * replaced, `$1`…`$9` standing for its groups: `^/old/(.*) /new/$1` sends `/old/a?b=1` as
 * `/new/a?b=1`, as Traefik's replacePathRegex and nginx's `rewrite` do. A request the regex
 * does not match goes on unchanged. A result not starting with `/` gets one. The path before
 * the rewrite goes along as `X-Replaced-Path`.
 *
 * @module
 */
import { parseRewrite, REWRITE_KEY } from "../../store/route_keys_http.ts";
import { type RegexReplace, replaceAll } from "../../store/regex_replace.ts";
import type { MiddlewarePart, RequestState } from "./pipeline.ts";
import { readSetting } from "../route_settings.ts";
import { setHeader } from "./header_list.ts";

/** `url` with its path rewritten by `rule` (query kept), or null when the path does not match. */
export function rewriteUrl(rule: RegexReplace, url: string): string | null {
  const q = url.indexOf("?");
  const out = replaceAll(rule, q < 0 ? url : url.slice(0, q));
  if (out === null) return null;
  return (out.charCodeAt(0) === 47 ? out : `/${out}`) + (q < 0 ? "" : url.slice(q));
}

export const REWRITE: MiddlewarePart = {
  name: "rewrite",
  build(settings) {
    const rule = readSetting(settings, REWRITE_KEY, parseRewrite);
    if (rule === null) return null;
    return {
      name: "rewrite",
      request(s: RequestState) {
        const url = rewriteUrl(rule, s.url);
        if (url === null || url === s.url) return null;
        const q = s.url.indexOf("?");
        s.headers = setHeader(s.headers, "x-replaced-path", q < 0 ? s.url : s.url.slice(0, q));
        s.url = url;
        return null;
      },
    };
  },
};
