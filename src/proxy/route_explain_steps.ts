/**
 * `berth explain URL`: what the proxy's rules do to one request for the URL, in the order it
 * applies them (README "Middlewares"): the edge's redirect to HTTPS (plain HTTP only), allow,
 * the regex redirect, basic auth, then strip-prefix and rewrite, ending with the path and
 * query the instance gets. The middlewares' own code runs on a request made up for the URL
 * (middleware/order.ts's parts), so explain and the proxy cannot disagree. Pure.
 *
 * @module
 */
import type { ServiceRoute } from "./routes.ts";
import type { RequestState } from "./middleware/pipeline.ts";
import { ALLOW } from "./middleware/allow.ts";
import { REDIRECT } from "./middleware/redirect.ts";
import { STRIP_PREFIX } from "./middleware/strip_prefix.ts";
import { REWRITE } from "./middleware/rewrite.ts";
import { acmeChallengeToken, httpsLocation } from "./edge_rules.ts";
import type { PlainAnswer } from "./exchange.ts";
import { clientBytes } from "../lib/cidr.ts";
import { ALLOW_KEY, AUTH_BASIC_KEY, NOBODY, RATELIMIT_META_KEY } from "../store/mod.ts";

/** A request for the URL as the proxy would see it after routing. */
export interface StepRequest {
  scheme: "http" | "https";
  host: string | null;
  /** Normalized path and query (request_path.ts). */
  url: string;
  /** The matched route's prefix. */
  prefix: string;
  /** The HTTPS listener's port, null when this member serves no HTTPS. */
  httpsPort: number | null;
  /** The client IP to check `allow` with (explain's `--key` when it is an address). */
  client?: string;
}

/** One line per rule the request meets, ending with what the instance gets or the answer. */
export function requestSteps(route: ServiceRoute, r: StepRequest): string[] {
  const out: string[] = [];
  const s = route.settings;
  if (route.redirectHttps) {
    if (r.scheme === "https") out.push("berth.http.redirect=https: applies to plain HTTP only");
    else if (r.httpsPort === null) {
      out.push("berth.http.redirect=https: not applied: this member serves no HTTPS");
    } else if (acmeChallengeToken(r.url) === undefined && r.host !== null) {
      const location = httpsLocation(r.host, r.url, r.httpsPort);
      if (location !== null) {
        out.push(`berth.http.redirect=https: this request gets 308 → ${location}`);
        return out;
      }
    }
  }
  const state: RequestState = {
    req: { method: "GET", url: r.url, rawHeaders: [], remoteAddress: r.client ?? "", body: null },
    conn: { secure: r.scheme === "https" },
    route,
    client: r.client ?? "",
    host: r.host ?? undefined,
    prefix: r.prefix,
    url: r.url,
    headers: [],
    requestId: "explain",
  };
  const answered = (name: string, a: PlainAnswer): string[] => {
    const location = a.headers?.[0] === "location" ? ` → ${a.headers[1]}` : "";
    out.push(`${name}: this request gets ${a.status}${location}`);
    return out;
  };
  const allow = s.get(ALLOW_KEY);
  if (allow !== undefined && allow !== NOBODY) {
    const m = ALLOW.build(s);
    if (r.client === undefined || clientBytes(r.client) === null) {
      out.push(`${ALLOW_KEY}=${allow}: other clients get 403 (--key IP checks one)`);
    } else {
      const a = m?.request?.(state) as PlainAnswer | null | undefined;
      if (a) return answered(`${ALLOW_KEY}: client ${r.client} is not allowed`, a);
      out.push(`${ALLOW_KEY}: client ${r.client} is allowed`);
    }
  }
  const limit = s.get(RATELIMIT_META_KEY);
  if (limit !== undefined) out.push(`${RATELIMIT_META_KEY}=${limit}: 429 past it, per client`);
  const redirect = REDIRECT.build(s)?.request?.(state) as PlainAnswer | null | undefined;
  if (redirect) return answered("berth.http.redirect", redirect);
  if (s.get(AUTH_BASIC_KEY) !== undefined && s.get(AUTH_BASIC_KEY) !== NOBODY) {
    out.push(`${AUTH_BASIC_KEY}: 401 without a listed user's credentials`);
  }
  const before = state.url;
  STRIP_PREFIX.build(s)?.request?.(state);
  const stripped = state.url;
  if (stripped !== before) out.push(`berth.http.strip-prefix: ${before} → ${stripped}`);
  REWRITE.build(s)?.request?.(state);
  if (state.url !== stripped) out.push(`berth.http.rewrite: ${stripped} → ${state.url}`);
  out.push(`the instance gets ${state.url}`);
  return out;
}
