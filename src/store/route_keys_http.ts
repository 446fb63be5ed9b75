/**
 * The HTTP middleware keys (labels and API Meta alike; README "Middlewares"): strip-prefix,
 * rewrite, redirect, request and response headers, basic auth, allow list. Each row's `parse`
 * turns a value into its canonical text or throws a CommandError saying what is expected; the
 * typed parsers the proxy compiles routes with (`parseRewrite`, `parseAllow`, …) live here too,
 * pure, so the store and the proxy read a value the same way.
 *
 * Basic auth and the allow list fail closed: a bad label stores `none` (nobody passes) rather
 * than leave the route open, and `none` may be written on purpose too.
 *
 * @module
 */
import type { RouteKey } from "./route_key.ts";
import { REDIRECT_META_KEY } from "./edge_meta.ts";
import { CommandError } from "./rule_basics.ts";
import { type Cidr, CIDR_EXPECTED, cidrText, parseCidr } from "../lib/cidr.ts";
import {
  compileRegexReplace,
  REGEX_REPLACE_EXPECTED,
  type RegexReplace,
  splitRegexReplace,
} from "./regex_replace.ts";

export const STRIP_PREFIX_KEY = "berth.http.strip-prefix";
export const REWRITE_KEY = "berth.http.rewrite";
export const REDIRECT_KEY = REDIRECT_META_KEY;
export const REQUEST_HEADER_PREFIX = "berth.http.request-header.";
export const REQUEST_HEADERS_REMOVE_KEY = "berth.http.request-headers.remove";
export const RESPONSE_HEADER_PREFIX = "berth.http.response-header.";
export const RESPONSE_HEADERS_REMOVE_KEY = "berth.http.response-headers.remove";
export const AUTH_BASIC_KEY = "berth.http.auth.basic";
export const AUTH_REALM_KEY = "berth.http.auth.realm";
export const ALLOW_KEY = "berth.http.allow";
/** The value of a basic auth or allow list that lets nobody in (what a bad label becomes). */
export const NOBODY = "none";

/** `true` or `false`, any case → canonical; throws otherwise. */
export function parseBool(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === "true") return true;
  if (v === "false") return false;
  throw new CommandError("not a boolean", "true|false");
}

// ---- rewrite and redirect ----

/** `REGEX REPLACEMENT` → compiled; throws CommandError. */
export function parseRewrite(value: string): RegexReplace {
  const parts = splitRegexReplace(value);
  if (parts === null) throw new CommandError("no replacement", REGEX_REPLACE_EXPECTED);
  return compileRegexReplace(parts.regex, parts.replacement);
}

/** Statuses a regex redirect may answer with. */
export const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const;
export type RedirectStatus = typeof REDIRECT_STATUSES[number];
/** Status of a regex redirect that names none (Traefik's redirectRegex without `permanent`). */
export const REDIRECT_STATUS_DEFAULT: RedirectStatus = 302;
/** What `berth.http.redirect` takes, for messages. */
export const REDIRECT_EXPECTED = "https, or REGEX REPLACEMENT [301|302|303|307|308]";

/** A parsed `berth.http.redirect`: plain HTTP to HTTPS, or a regex on the full URL. */
export type RedirectSpec =
  | { readonly kind: "https" }
  | { readonly kind: "regex"; readonly rule: RegexReplace; readonly status: RedirectStatus };

const isRedirectStatus = (t: string): boolean =>
  (REDIRECT_STATUSES as readonly number[]).includes(Number(t)) && /^\d{3}$/.test(t);

/** `https` (any case) or `REGEX REPLACEMENT [STATUS]` → the spec; throws CommandError. */
export function parseRedirect(value: string): RedirectSpec {
  if (value.trim().toLowerCase() === "https") return { kind: "https" };
  const parts = splitRegexReplace(value, isRedirectStatus);
  if (parts === null) throw new CommandError("not a redirect", REDIRECT_EXPECTED);
  const rule = compileRegexReplace(parts.regex, parts.replacement);
  const status = parts.tail === null
    ? REDIRECT_STATUS_DEFAULT
    : Number(parts.tail) as RedirectStatus;
  return { kind: "regex", rule, status };
}

/** The canonical text of a redirect spec: `https` or `REGEX REPLACEMENT STATUS`. */
export function redirectText(r: RedirectSpec): string {
  return r.kind === "https" ? "https" : `${r.rule.regex} ${r.rule.replacement} ${r.status}`;
}

// ---- headers ----

/** RFC 9110 §5.6.2 token: a header name. */
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 §5.5 field value without obs-text: visible ASCII, space and tab inside. */
const FIELD_VALUE_RE = /^[\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?$/;

/**
 * Names a header key may neither set nor remove: the message's framing and the hop-by-hop
 * headers (RFC 9110 §7.6.1), which belong to one connection and which the proxy writes itself.
 */
export const FRAMING_HEADERS: ReadonlySet<string> = new Set([
  "connection",
  "content-length",
  "expect",
  "http2-settings",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * A header name → lower case; throws when it is no token, a framing header or Host (the one
 * the route matched; HTTP/1.1 and h2c instances get it as the client sent it).
 */
export function headerName(name: string): string {
  if (!TOKEN_RE.test(name)) {
    throw new CommandError(
      `bad header name ${JSON.stringify(name)}`,
      "a header name (RFC 9110 token)",
    );
  }
  const lower = name.toLowerCase();
  if (FRAMING_HEADERS.has(lower) || lower === "host") {
    throw new CommandError(
      `header ${name} is the proxy's`,
      `a header other than ${name} (framing, hop-by-hop and Host are the proxy's)`,
    );
  }
  return lower;
}

/** A header value: visible ASCII, inner spaces and tabs; no CR, LF, NUL or other controls. */
export function headerValue(value: string): string {
  const v = value.trim();
  if (!FIELD_VALUE_RE.test(v)) {
    throw new CommandError("bad header value", "a header value of visible ASCII characters");
  }
  return v;
}

/** `N1,N2,…` → lower-case names without repeats; throws on a bad or refused name. */
export function parseHeaderList(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(",")) {
    const name = headerName(part.trim());
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/**
 * The names of a header list that are good (`headerName`), without repeats: what a bad
 * `…headers.remove` label still removes (a bad name can never be a header the proxy forwards).
 */
export function goodHeaderNames(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(",")) {
    try {
      const name = headerName(part.trim());
      if (!out.includes(name)) out.push(name);
    } catch {
      // not a token, or a header only the proxy writes: nothing to remove
    }
  }
  return out;
}

// ---- basic auth ----

/** Largest bcrypt cost accepted: each verification at cost 14 takes about a second. */
export const BCRYPT_COST_MAX = 14;
/** htpasswd bcrypt (`htpasswd -B`): `$2y$`, `$2a$` or `$2b$`, cost, 22+31 characters. */
const BCRYPT_RE = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
/** A user name: visible ASCII without `:` (it ends the name in a Basic credential) nor `,`. */
const USER_RE = /^[\x21-\x2b\x2d-\x39\x3b-\x7e]{1,64}$/;
/** What `berth.http.auth.basic` takes, for messages. */
export const AUTH_BASIC_EXPECTED = "USER:BCRYPT_HASH,… (htpasswd -B: $2y$, $2a$ or $2b$)";

/** `user:HASH,…` → users and their bcrypt hashes in order (none for `none`); throws. */
export function parseBasicAuth(value: string): Map<string, string> {
  const users = new Map<string, string>();
  if (value.trim() === NOBODY) return users;
  for (const entry of value.split(",")) {
    const e = entry.trim();
    const colon = e.indexOf(":");
    const user = colon < 0 ? e : e.slice(0, colon);
    const hash = colon < 0 ? "" : e.slice(colon + 1);
    if (!USER_RE.test(user)) {
      throw new CommandError("bad user", `${AUTH_BASIC_EXPECTED}; a user name of visible ASCII`);
    }
    const m = BCRYPT_RE.exec(hash);
    if (m === null) {
      throw new CommandError(`bad hash for ${user}`, `${AUTH_BASIC_EXPECTED} for user ${user}`);
    }
    const cost = Number(m[1]);
    if (cost < 4 || cost > BCRYPT_COST_MAX) {
      throw new CommandError(`cost ${cost}`, `a bcrypt cost from 4 to ${BCRYPT_COST_MAX}`);
    }
    if (users.has(user)) throw new CommandError(`user ${user} twice`, "each user once");
    users.set(user, hash);
  }
  return users;
}

/** Realm of a 401 without `berth.http.auth.realm`. */
export const AUTH_REALM_DEFAULT = "berth";
const REALM_RE = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/;

/** A realm: 1-64 visible ASCII characters or spaces, no `"` nor `\`. */
export function parseRealm(value: string): string {
  const v = value.trim();
  if (!REALM_RE.test(v)) {
    throw new CommandError("bad realm", 'up to 64 visible ASCII characters, no " nor \\');
  }
  return v;
}

// ---- allow list ----

/** `CIDR,…` → the networks, host bits cleared, without repeats (none for `none`); throws. */
export function parseAllow(value: string): Cidr[] {
  const out: Cidr[] = [];
  if (value.trim() === NOBODY) return out;
  const seen = new Set<string>();
  for (const part of value.split(",")) {
    const c = parseCidr(part.trim());
    if (c === null) {
      throw new CommandError(`bad network ${JSON.stringify(part.trim())}`, `${CIDR_EXPECTED}, …`);
    }
    const text = cidrText(c);
    if (seen.has(text)) continue;
    seen.add(text);
    out.push(c);
  }
  return out;
}

// ---- the rows ----

/** `parse` of the set-header keys `PREFIX + NAME`: NAME must be one a key may set. */
const setHeaderValue = (prefix: string) => (v: string, key: string): string => {
  headerName(key.slice(prefix.length));
  return headerValue(v);
};
/** `parse` and `failClosed` of the remove-headers keys. */
const removeHeadersValue = (v: string): string => parseHeaderList(v).join(",");
const removeHeadersFailClosed = (v: string): string => goodHeaderNames(v).join(",");

/** The HTTP middleware keys, for the registry (route_keys.ts) and the README table. */
export const HTTP_KEYS: RouteKey[] = [
  {
    key: STRIP_PREFIX_KEY,
    example: "true",
    doc: "remove the route's path prefix before forwarding (`/api/x` → `/x`)",
    onBad: "no prefix stripped",
    parse: (v) => String(parseBool(v)),
  },
  {
    key: REWRITE_KEY,
    example: "^/old/(.*) /new/$1",
    doc: "rewrite the path (query kept) by an RE2 regex; `$1`…`$9` in the replacement",
    onBad: "no rewrite",
    parse: (v) => {
      const r = parseRewrite(v);
      return `${r.regex} ${r.replacement}`;
    },
  },
  {
    key: REDIRECT_KEY,
    example: "^http://www\\.(.*) https://$1 301",
    doc: "`https` (a 308 to HTTPS), or `REGEX REPLACEMENT [STATUS]` on the full URL (default 302)",
    onBad: "no redirect",
    parse: (v) => redirectText(parseRedirect(v)),
  },
  {
    key: REQUEST_HEADER_PREFIX,
    example: "NAME=VALUE",
    doc: "set a request header for the instance (replacing the client's)",
    onBad: "header not set",
    parse: setHeaderValue(REQUEST_HEADER_PREFIX),
    secret: true,
  },
  {
    key: REQUEST_HEADERS_REMOVE_KEY,
    example: "Cookie,X-Debug",
    doc: "remove request headers before forwarding",
    onBad: "the good names are still removed",
    parse: removeHeadersValue,
    failClosed: removeHeadersFailClosed,
  },
  {
    key: RESPONSE_HEADER_PREFIX,
    example: "NAME=VALUE",
    doc: "set a response header (replacing the instance's)",
    onBad: "header not set",
    parse: setHeaderValue(RESPONSE_HEADER_PREFIX),
  },
  {
    key: RESPONSE_HEADERS_REMOVE_KEY,
    example: "Server",
    doc: "remove response headers before they reach the client",
    onBad: "the good names are still removed",
    parse: removeHeadersValue,
    failClosed: removeHeadersFailClosed,
  },
  {
    key: AUTH_BASIC_KEY,
    example: "alice:$2y$10$…",
    doc: "HTTP basic auth: users and their bcrypt hashes (`htpasswd -nB USER`); 401 otherwise",
    onBad: "every request gets 401 (none)",
    parse: (v) => {
      const users = parseBasicAuth(v);
      return users.size === 0
        ? NOBODY
        : [...users].map(([user, hash]) => `${user}:${hash}`).join(",");
    },
    failClosed: NOBODY,
    secret: true,
  },
  {
    key: AUTH_REALM_KEY,
    example: "staff",
    doc: `realm of the basic auth 401 (default \`${AUTH_REALM_DEFAULT}\`)`,
    onBad: `realm ${AUTH_REALM_DEFAULT}`,
    parse: (v) => parseRealm(v),
  },
  {
    key: ALLOW_KEY,
    example: "10.0.0.0/8,2001:db8::/32",
    doc: "only clients in these networks are served; 403 for others",
    onBad: "every client gets 403 (none)",
    parse: (v) => {
      const cidrs = parseAllow(v);
      return cidrs.length === 0 ? NOBODY : cidrs.map(cidrText).join(",");
    },
    failClosed: NOBODY,
  },
];
