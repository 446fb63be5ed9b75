/**
 * `berth.http.rewrite=REGEX REPLACEMENT` (README "Middlewares"): every match of the RE2 regex
 * in the request's path and query (after strip-prefix) is replaced, `$1`…`$9` standing for
 * its groups: `^/old/(.*) /new/$1` sends `/old/a?b=1` as `/new/a?b=1`. A request the regex
 * does not match goes on unchanged. A result not starting with `/` gets one. The path before
 * the rewrite goes along as `X-Replaced-Path` (as Traefik's replacePathRegex).
 *
 * @module
 */
import { parseRewrite, REWRITE_KEY } from "../../store/route_keys_http.ts";
import { type RegexReplace, replaceAll } from "../../store/regex_replace.ts";
import type { MiddlewarePart, RequestState } from "./pipeline.ts";
import { setHeader } from "./header_list.ts";

/** `url` rewritten by `rule`, or null when the regex does not match it. */
export function rewriteUrl(rule: RegexReplace, url: string): string | null {
  const out = replaceAll(rule, url);
  if (out === null) return null;
  return out.charCodeAt(0) === 47 ? out : `/${out}`;
}

export const REWRITE: MiddlewarePart = {
  name: "rewrite",
  build(settings) {
    const value = settings.get(REWRITE_KEY);
    if (value === undefined) return null;
    let rule: RegexReplace;
    try {
      rule = parseRewrite(value);
    } catch {
      return null;
    }
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
