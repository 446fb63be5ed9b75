/**
 * `berth.http.auth.basic=USER:BCRYPT_HASH,…` with `berth.http.auth.realm=TEXT` (README
 * "Middlewares"): HTTP Basic authentication (RFC 7617) against htpasswd bcrypt hashes.
 *
 * - No or a malformed `Authorization: Basic …`, an unknown user or a wrong password: 401 with
 *   `WWW-Authenticate: Basic realm="REALM", charset="UTF-8"`. An unknown user is answered at
 *   once, without a bcrypt run (as nginx and Traefik do: a user name is no secret).
 * - Too many checks under way on this proxy thread, or one under way for this client address
 *   already: 429 with `Retry-After: 1`, without a check
 *   (bcrypt_verifier.ts bounds the CPU and memory checks take and remembers verdicts).
 * - The right password: the request goes on WITHOUT its Authorization header (the instance
 *   does not get the password; Traefik forwards it unless told `removeHeader`), and with
 *   `X-Forwarded-User: USER` (a client's own X-Forwarded-User is dropped on such a route).
 *
 * @module
 */
import {
  AUTH_BASIC_KEY,
  AUTH_REALM_DEFAULT,
  AUTH_REALM_KEY,
  parseBasicAuth,
  parseRealm,
} from "../../store/route_keys_http.ts";
import type { PlainAnswer } from "../exchange.ts";
import type { Middleware, MiddlewarePart, RequestState } from "./pipeline.ts";
import { type BcryptVerifier, sharedVerifier, type Verdict } from "./bcrypt_verifier.ts";
import { dropHeaders, headerOf } from "./header_list.ts";
import { misconfigured } from "./misconfigured.ts";

/** Longest base64 credential read (a user of 64 and a password of 700 characters). */
export const CREDENTIAL_CHARS_MAX = 1024;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;
const DECODER = new TextDecoder("utf-8", { fatal: true });
/** Headers dropped from an authenticated request: the password, and what auth alone sets. */
const DROPPED = new Set(["authorization", "x-forwarded-user"]);

/** A Basic credential: the Authorization value, its user and password. */
export interface BasicCredential {
  readonly value: string;
  readonly user: string;
  readonly password: string;
}

/** The user and password of an `Authorization: Basic …` value; null when it is none. */
export function basicCredential(value: string | undefined): BasicCredential | null {
  if (value === undefined) return null;
  const m = /^basic[ \t]+(\S+)[ \t]*$/i.exec(value);
  const token = m?.[1];
  if (token === undefined || token.length > CREDENTIAL_CHARS_MAX || !BASE64_RE.test(token)) {
    return null;
  }
  let text: string;
  try {
    text = atob(token); // one character per byte
    // deno-lint-ignore no-control-regex
    if (/[^\x00-\x7f]/.test(text)) {
      text = DECODER.decode(Uint8Array.from(text, (c) => c.charCodeAt(0)));
    }
  } catch {
    return null; // no base64, or bytes that are no UTF-8
  }
  const colon = text.indexOf(":");
  if (colon <= 0) return null;
  return { value: token, user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The 401 of `realm`. */
function challenge(realm: string, why: string): PlainAnswer {
  return {
    status: 401,
    text: `authentication required: ${why}`,
    headers: ["www-authenticate", `Basic realm="${realm}", charset="UTF-8"`],
  };
}

const BUSY: PlainAnswer = {
  status: 429,
  text: "too many password checks under way; retry",
  headers: ["retry-after", "1"],
};

/** What a verdict makes of the request: on with the user named, or an answer. */
function afterVerdict(s: RequestState, user: string, v: Verdict, realm: string) {
  if (v === "busy") return BUSY;
  if (!v) return challenge(realm, "wrong user or password");
  s.headers = dropHeaders(s.headers, DROPPED);
  s.headers.push("x-forwarded-user", user);
  return null;
}

/** The basic-auth part checking passwords with `verifier` (this thread's by default). */
export function basicAuthPart(verifier: BcryptVerifier = sharedVerifier): MiddlewarePart {
  return {
    name: "basic-auth",
    build(settings): Middleware | null {
      const value = settings.get(AUTH_BASIC_KEY);
      if (value === undefined) return null;
      let users: Map<string, string>;
      let realm = AUTH_REALM_DEFAULT;
      try {
        users = parseBasicAuth(value);
        const r = settings.get(AUTH_REALM_KEY);
        if (r !== undefined) realm = parseRealm(r);
      } catch {
        return misconfigured("basic-auth", AUTH_BASIC_KEY);
      }
      return {
        name: "basic-auth",
        request(s) {
          const cred = basicCredential(headerOf(s.headers, "authorization"));
          if (cred === null) return challenge(realm, "no Basic credentials");
          const hash = users.get(cred.user);
          if (hash === undefined) return challenge(realm, "wrong user or password");
          const v = verifier.check(cred.value, cred.password, hash, s.client);
          if (!(v instanceof Promise)) return afterVerdict(s, cred.user, v, realm);
          return v.then((verdict) => afterVerdict(s, cred.user, verdict, realm));
        },
      };
    },
  };
}

export const BASIC_AUTH: MiddlewarePart = basicAuthPart();
