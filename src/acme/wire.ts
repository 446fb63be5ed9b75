/**
 * The ACME resources berth reads (RFC 8555 §7.1): directory, account, order, authorization,
 * challenge, as typed values checked field by field. Everything a CA sends passes through here:
 * a missing or mistyped field, an oversized list or a URL that is not http(s) becomes an
 * AcmeError of type badResponse naming the field, never a crash further on.
 *
 * @module
 */
import { AcmeError, PROBLEM, problemFrom } from "./error.ts";

/** Limits on what a CA may send (Let's Encrypt's largest orders are 100 names). */
export const WIRE_LIMITS = {
  urlChars: 2048,
  identifiers: 100,
  authorizations: 100,
  challenges: 16,
  tokenChars: 256,
  stringChars: 1024,
} as const;

/** The endpoints a CA publishes (RFC 8555 §7.1.1). */
export interface Directory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  revokeCert?: string;
  keyChange?: string;
  termsOfService?: string;
  externalAccountRequired: boolean;
}

export type OrderStatus = "pending" | "ready" | "processing" | "valid" | "invalid";
export type AuthorizationStatus =
  | "pending"
  | "valid"
  | "invalid"
  | "deactivated"
  | "expired"
  | "revoked";
export type ChallengeStatus = "pending" | "processing" | "valid" | "invalid";

/** An order (RFC 8555 §7.1.3) and where it lives. */
export interface Order {
  url: string;
  status: OrderStatus;
  /** DNS names, lower-case as the CA lists them. */
  names: string[];
  authorizations: string[];
  finalize: string;
  /** Set once the order is valid. */
  certificate?: string;
  expires?: string;
  /** Why the order is invalid, when it is. */
  error?: AcmeError;
  /** From Retry-After: when to poll again (RFC 8555 §7.4). */
  retryAfterMs?: number;
}

/** One challenge of an authorization (RFC 8555 §8). */
export interface Challenge {
  url: string;
  type: string;
  status: ChallengeStatus;
  /** Present for http-01, tls-alpn-01 and dns-01 (base64url, at most 256 characters). */
  token?: string;
  error?: AcmeError;
}

/** An authorization (RFC 8555 §7.1.4). */
export interface Authorization {
  url: string;
  status: AuthorizationStatus;
  name: string;
  wildcard: boolean;
  challenges: Challenge[];
  expires?: string;
  retryAfterMs?: number;
}

/** An account (RFC 8555 §7.1.2). */
export interface Account {
  url: string;
  status: "valid" | "deactivated" | "revoked";
  contact: string[];
  /** True when this call created it (HTTP 201), false when the key already had one. */
  created: boolean;
}

/** Reads one JSON object of a CA's answer; `what` names it in errors ("order", …). */
class Fields {
  constructor(
    readonly v: Record<string, unknown>,
    readonly what: string,
    readonly base: URL,
    readonly status: number,
  ) {}

  static of(value: unknown, what: string, base: URL, status: number): Fields {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw bad(`the ${what} is not a JSON object`, status);
    }
    return new Fields(value as Record<string, unknown>, what, base, status);
  }

  fail(field: string, expected: string): never {
    throw bad(`the ${this.what}'s "${field}" is not ${expected}`, this.status);
  }

  string(field: string, max: number = WIRE_LIMITS.stringChars): string {
    const s = this.v[field];
    if (typeof s !== "string" || s.length === 0 || s.length > max) {
      this.fail(field, `a string of 1-${max} characters`);
    }
    return s;
  }

  optString(field: string): string | undefined {
    return this.v[field] === undefined ? undefined : this.string(field);
  }

  url(field: string): string {
    return checkUrl(this.v[field], this.base, () => this.fail(field, "an http(s) URL"));
  }

  optUrl(field: string): string | undefined {
    return this.v[field] === undefined ? undefined : this.url(field);
  }

  oneOf<T extends string>(field: string, values: readonly T[]): T {
    const s = this.v[field];
    if (typeof s !== "string" || !values.includes(s as T)) this.fail(field, values.join("|"));
    return s as T;
  }

  list(field: string, max: number): unknown[] {
    const a = this.v[field];
    if (!Array.isArray(a) || a.length > max) this.fail(field, `a list of at most ${max}`);
    return a;
  }

  error(field: string): AcmeError | undefined {
    const e = this.v[field];
    if (e === undefined) return undefined;
    // An embedded problem's own status (RFC 7807 §3.1), not the status of the answer holding it.
    const status = (e as { status?: unknown } | null)?.status;
    return problemFrom(e, { status: Number.isInteger(status) ? status as number : 0 });
  }
}

function bad(detail: string, status: number): AcmeError {
  return new AcmeError({ type: PROBLEM.badResponse, detail, status });
}

/**
 * `value` as an absolute URL with the directory's scheme or https (an https directory never
 * sends berth to plain http), at most WIRE_LIMITS.urlChars long; else `fail()`.
 */
export function checkUrl(value: unknown, base: URL, fail: () => never): string {
  if (typeof value !== "string" || value.length > WIRE_LIMITS.urlChars) fail();
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    fail();
  }
  if (u.protocol !== "https:" && u.protocol !== base.protocol) fail();
  if (u.protocol !== "https:" && u.protocol !== "http:") fail();
  return value;
}

/** The directory object. A CA that demands external account binding is refused here. */
export function parseDirectory(value: unknown, base: URL, status: number): Directory {
  const f = Fields.of(value, "directory", base, status);
  const meta = f.v.meta === undefined
    ? undefined
    : Fields.of(f.v.meta, "directory meta", base, status);
  const ear = meta?.v.externalAccountRequired;
  if (ear !== undefined && typeof ear !== "boolean") {
    meta!.fail("externalAccountRequired", "a boolean");
  }
  const d: Directory = {
    newNonce: f.url("newNonce"),
    newAccount: f.url("newAccount"),
    newOrder: f.url("newOrder"),
    externalAccountRequired: ear === true,
  };
  const revokeCert = f.optUrl("revokeCert");
  if (revokeCert !== undefined) d.revokeCert = revokeCert;
  const keyChange = f.optUrl("keyChange");
  if (keyChange !== undefined) d.keyChange = keyChange;
  const tos = meta?.optString("termsOfService");
  if (tos !== undefined) d.termsOfService = tos;
  return d;
}

/** An account object answered at `url`. */
export function parseAccount(
  value: unknown,
  o: { url: string; base: URL; status: number },
): Account {
  const f = Fields.of(value, "account", o.base, o.status);
  const contact = f.v.contact === undefined ? [] : f.list("contact", 16);
  if (contact.some((c) => typeof c !== "string" || c.length > 256)) {
    f.fail("contact", "a list of strings");
  }
  return {
    url: o.url,
    status: f.oneOf("status", ["valid", "deactivated", "revoked"] as const),
    contact: contact as string[],
    created: o.status === 201,
  };
}

function parseIdentifier(value: unknown, f: Fields, field: string): string {
  const id = Fields.of(value, `${f.what}'s ${field}`, f.base, f.status);
  if (id.string("type") !== "dns") f.fail(field, 'an identifier of type "dns"');
  return id.string("value", 253).toLowerCase();
}

/** An order object answered at `url`. */
export function parseOrder(
  value: unknown,
  o: { url: string; base: URL; status: number; retryAfterMs?: number },
): Order {
  const f = Fields.of(value, "order", o.base, o.status);
  const ids = f.list("identifiers", WIRE_LIMITS.identifiers);
  const authzs = f.list("authorizations", WIRE_LIMITS.authorizations);
  const order: Order = {
    url: o.url,
    status: f.oneOf("status", ["pending", "ready", "processing", "valid", "invalid"] as const),
    names: ids.map((v) => parseIdentifier(v, f, "identifiers")),
    authorizations: authzs.map((a) =>
      checkUrl(a, o.base, () => f.fail("authorizations", "a list of URLs"))
    ),
    finalize: f.url("finalize"),
  };
  const certificate = f.optUrl("certificate");
  if (certificate !== undefined) order.certificate = certificate;
  const expires = f.optString("expires");
  if (expires !== undefined) order.expires = expires;
  const error = f.error("error");
  if (error !== undefined) order.error = error;
  if (o.retryAfterMs !== undefined) order.retryAfterMs = o.retryAfterMs;
  return order;
}

/** A challenge object; `url` falls back to the one it was fetched from. */
export function parseChallenge(value: unknown, base: URL, status: number): Challenge {
  const f = Fields.of(value, "challenge", base, status);
  const c: Challenge = {
    url: f.url("url"),
    type: f.string("type", 64),
    status: f.oneOf("status", ["pending", "processing", "valid", "invalid"] as const),
  };
  if (f.v.token !== undefined) {
    const token = f.string("token", WIRE_LIMITS.tokenChars);
    if (!/^[A-Za-z0-9_-]+$/.test(token)) f.fail("token", "base64url");
    c.token = token;
  }
  const error = f.error("error");
  if (error !== undefined) c.error = error;
  return c;
}

/** An authorization object answered at `url`. */
export function parseAuthorization(
  value: unknown,
  o: { url: string; base: URL; status: number; retryAfterMs?: number },
): Authorization {
  const f = Fields.of(value, "authorization", o.base, o.status);
  const wildcard = f.v.wildcard;
  if (wildcard !== undefined && typeof wildcard !== "boolean") f.fail("wildcard", "a boolean");
  const a: Authorization = {
    url: o.url,
    status: f.oneOf(
      "status",
      ["pending", "valid", "invalid", "deactivated", "expired", "revoked"] as const,
    ),
    name: parseIdentifier(f.v.identifier, f, "identifier"),
    wildcard: wildcard === true,
    challenges: f.list("challenges", WIRE_LIMITS.challenges).map((c) =>
      parseChallenge(c, o.base, o.status)
    ),
  };
  const expires = f.optString("expires");
  if (expires !== undefined) a.expires = expires;
  if (o.retryAfterMs !== undefined) a.retryAfterMs = o.retryAfterMs;
  return a;
}

/** Longest Retry-After berth honours (a day); a longer one is cut to it. */
export const RETRY_AFTER_MS_MAX = 24 * 3600_000;

/**
 * Retry-After (RFC 9110 §10.2.3) in ms from `nowMs`: delay-seconds or an HTTP-date, cut to
 * [0, RETRY_AFTER_MS_MAX]; undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const t = header.trim();
  let ms: number;
  if (/^\d{1,10}$/.test(t)) ms = Number(t) * 1000;
  else {
    const at = /^[A-Za-z]{3}, /.test(t) ? Date.parse(t) : NaN; // IMF-fixdate: "Sun, 06 Nov …"
    if (Number.isNaN(at)) return undefined;
    ms = at - nowMs;
  }
  return Math.min(Math.max(ms, 0), RETRY_AFTER_MS_MAX);
}
