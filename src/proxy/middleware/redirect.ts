/**
 * `berth.http.redirect=REGEX REPLACEMENT [STATUS]` (README "Middlewares"): when the RE2 regex
 * matches the request's full URL `scheme://host/path?query` (the Host header as sent, port
 * included; the path before strip-prefix and rewrite), the client gets STATUS (302 unless
 * 301, 303, 307 or 308 is named) with `Location:` the URL with every match replaced, as
 * Traefik's redirectRegex. A request the regex does not match, or whose URL the replacement
 * leaves unchanged, goes on. (`berth.http.redirect=https` is the edge's own rule, answered
 * before any middleware: edge_rules.ts.)
 *
 * @module
 */
import { parseRedirect, REDIRECT_KEY, type RedirectSpec } from "../../store/route_keys_http.ts";
import { replaceAll } from "../../store/regex_replace.ts";
import type { PlainAnswer } from "../exchange.ts";
import type { MiddlewarePart, RequestState } from "./pipeline.ts";
import { readSetting } from "../route_settings.ts";

/** What a Location may hold: visible ASCII (the Host header could bring anything else). */
const LOCATION_RE = /^[\x21-\x7e]+$/;

/** The full URL a redirect regex sees. */
export function fullUrl(s: Pick<RequestState, "conn" | "host" | "url">): string {
  return `${s.conn.secure ? "https" : "http"}://${s.host ?? ""}${s.url}`;
}

/** The answer of a regex redirect for `s`, or null when it does not apply. */
export function redirectAnswer(
  spec: Extract<RedirectSpec, { kind: "regex" }>,
  s: Pick<RequestState, "conn" | "host" | "url">,
): PlainAnswer | null {
  const url = fullUrl(s);
  const location = replaceAll(spec.rule, url);
  if (location === null || location === url) return null;
  if (!LOCATION_RE.test(location)) {
    return { status: 400, text: "no redirect: the request's Host makes no URL" };
  }
  return { status: spec.status, text: `see ${location}`, headers: ["location", location] };
}

export const REDIRECT: MiddlewarePart = {
  name: "redirect",
  build(settings) {
    const spec = readSetting(settings, REDIRECT_KEY, parseRedirect);
    if (spec === null || spec.kind !== "regex") return null;
    return { name: "redirect", request: (s) => redirectAnswer(spec, s) };
  },
};
