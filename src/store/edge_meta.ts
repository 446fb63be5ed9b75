/**
 * What a service asks of the HTTPS edge (the `berth.http.redirect` and `berth.http.hsts` labels
 * or API Meta): the meta keys and their values. validate.ts holds the rules that use them;
 * src/proxy/routes.ts reads them into each service's route.
 *
 * @module
 */

/**
 * Instance meta key: `https` answers plain HTTP requests with a 308 to https (the regex form
 * and the key's parser: route_keys_http.ts).
 */
export const REDIRECT_META_KEY = "berth.http.redirect";

/** Instance meta key: the Strict-Transport-Security value of the service's HTTPS responses. */
export const HSTS_META_KEY = "berth.http.hsts";
/** What `berth.http.hsts` looks like, for messages. */
export const HSTS_EXPECTED = "max-age=SECONDS[; includeSubDomains][; preload]";
/** Largest max-age accepted (2^31 − 1 seconds, as browsers store it). */
export const HSTS_MAX_AGE_MAX = 2_147_483_647;

/**
 * An HSTS policy (RFC 6797 §6.1: `max-age=N`, optional `includeSubDomains` and `preload`; any
 * case, order and spacing) → its canonical text `max-age=N[; includeSubDomains][; preload]`;
 * null for anything else (unknown or repeated directives, a bad number).
 */
export function parseHsts(s: string): string | null {
  let maxAge: number | null = null;
  let sub = false;
  let preload = false;
  for (const part of s.split(";")) {
    const d = part.trim();
    const m = /^max-age\s*=\s*"?(\d{1,10})"?$/i.exec(d);
    if (m !== null && maxAge === null) {
      maxAge = Number(m[1]);
      if (maxAge > HSTS_MAX_AGE_MAX) return null;
    } else if (/^includesubdomains$/i.test(d) && !sub) sub = true;
    else if (/^preload$/i.test(d) && !preload) preload = true;
    else return null;
  }
  if (maxAge === null) return null;
  return `max-age=${maxAge}${sub ? "; includeSubDomains" : ""}${preload ? "; preload" : ""}`;
}
