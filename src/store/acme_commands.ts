/**
 * The rules for the ACME commands (acme_types.ts), called by validateCommand on every replica.
 * An error never quotes a sealed key: it names the field and what it expects.
 *
 * @module
 */
import { nodeNameProblem } from "../lib/node_name.ts";
import {
  ACME_CHALLENGE_TYPES,
  ACME_COMMAND_TYPES,
  ACME_ORDER_STATUSES,
  type AcmeChallenge,
  type AcmeCommand,
  type AcmeNameSpec,
  type AcmeOrder,
} from "./acme_types.ts";
import { CommandError, fail, int, obj } from "./rule_basics.ts";

/** Longest URL kept (directory, account, order). */
export const ACME_URL_CHARS_MAX = 2048;
/** Longest sealed key kept (a sealed P-256 key is well under 1 KiB). */
export const ACME_SEALED_CHARS_MAX = 16_384;
/** Longest error text kept (the manager cuts the CA's detail to it). */
export const ACME_ERROR_CHARS_MAX = 1024;
/** Longest account email. */
export const ACME_EMAIL_CHARS_MAX = 254;
/** Most challenges recorded for one name (one per authorization and type). */
export const ACME_CHALLENGES_MAX = 4;
/** Longest challenge token (base64url; the RFC asks for at least 128 bits). */
export const ACME_TOKEN_CHARS_MAX = 128;

const TYPES: ReadonlySet<string> = new Set(ACME_COMMAND_TYPES);
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;
const TOKEN_RE = /^[A-Za-z0-9_-]{16,128}$/;
const KEY_AUTH_RE = /^[A-Za-z0-9_-]{16,128}\.[A-Za-z0-9_-]{43}$/;
const SEALED_RE = /^[A-Za-z0-9+/=._:-]+$/;
const EMAIL_RE = /^[^\s@<>,;:"]+@[^\s@<>,;:"]+$/;
// deno-lint-ignore no-control-regex
const CONTROL_RE = /[\x00-\x08\x0b-\x1f\x7f]/;

/** Whether `type` is one of the commands this module checks. */
export function isAcmeCommand(type: unknown): boolean {
  return typeof type === "string" && TYPES.has(type);
}

const now = (x: unknown, path: string) => int(x, path, 0, Number.MAX_SAFE_INTEGER);
const term = (x: unknown, path: string) => int(x, path, 1, Number.MAX_SAFE_INTEGER);
const index = (x: unknown, path: string) => int(x, path, 0, Number.MAX_SAFE_INTEGER);

/** A DNS name ACME orders (lower-case, two labels or more; src/acme/names.ts picks them). */
export function acmeName(x: unknown, path: string): string {
  if (typeof x !== "string" || x.length > 253 || !NAME_RE.test(x)) {
    fail(path, "a lower-case DNS name of two labels or more", x);
  }
  return x;
}

/** An absolute http(s) URL of at most ACME_URL_CHARS_MAX characters. */
export function acmeUrl(x: unknown, path: string): string {
  if (typeof x !== "string" || x.length > ACME_URL_CHARS_MAX) fail(path, "an http(s) URL", x);
  let u: URL | null = null;
  try {
    u = new URL(x);
  } catch {
    // reported below
  }
  if (u === null || (u.protocol !== "https:" && u.protocol !== "http:") || u.hostname === "") {
    fail(path, "an http(s) URL", x);
  }
  return x;
}

function sealed(x: unknown, path: string): string {
  if (typeof x !== "string" || x.length > ACME_SEALED_CHARS_MAX || !SEALED_RE.test(x)) {
    throw new CommandError(`${path}: expected a sealed key`, "a sealed key");
  }
  return x;
}

function email(x: unknown, path: string): string {
  if (x === "" || x === undefined) return "";
  if (typeof x !== "string" || x.length > ACME_EMAIL_CHARS_MAX || !EMAIL_RE.test(x)) {
    fail(path, "an email address", x);
  }
  return x;
}

function errorText(x: unknown, path: string): string {
  if (typeof x !== "string") fail(path, "a string", x);
  if (x.length > ACME_ERROR_CHARS_MAX) fail(path, `at most ${ACME_ERROR_CHARS_MAX} characters`, x);
  if (CONTROL_RE.test(x)) fail(path, "text without control characters", x);
  return x;
}

function order(x: unknown, path: string): AcmeOrder | null {
  if (x === null || x === undefined) return null;
  const o = obj(x, path);
  if (!ACME_ORDER_STATUSES.includes(o.status as AcmeOrder["status"])) {
    fail(`${path}.status`, ACME_ORDER_STATUSES.join("|"), o.status);
  }
  return {
    url: acmeUrl(o.url, `${path}.url`),
    status: o.status as AcmeOrder["status"],
    expiresMs: o.expiresMs === null || o.expiresMs === undefined
      ? null
      : now(o.expiresMs, `${path}.expiresMs`),
    keySealed: sealed(o.keySealed, `${path}.keySealed`),
  };
}

function challenges(x: unknown, path: string): AcmeChallenge[] {
  if (!Array.isArray(x)) fail(path, "a list of challenges", x);
  if (x.length > ACME_CHALLENGES_MAX) fail(path, `at most ${ACME_CHALLENGES_MAX}`, "list");
  const out = x.map((c, i) => {
    const p = `${path}[${i}]`;
    const o = obj(c, p);
    if (!ACME_CHALLENGE_TYPES.includes(o.type as AcmeChallenge["type"])) {
      fail(`${p}.type`, ACME_CHALLENGE_TYPES.join("|"), o.type);
    }
    if (typeof o.token !== "string" || !TOKEN_RE.test(o.token)) {
      fail(`${p}.token`, `16 to ${ACME_TOKEN_CHARS_MAX} base64url characters`, o.token);
    }
    if (typeof o.keyAuthorization !== "string" || !KEY_AUTH_RE.test(o.keyAuthorization)) {
      fail(`${p}.keyAuthorization`, "TOKEN.THUMBPRINT", o.keyAuthorization);
    }
    if (!o.keyAuthorization.startsWith(`${o.token}.`)) {
      fail(`${p}.keyAuthorization`, "the token's own key authorization", o.keyAuthorization);
    }
    return {
      type: o.type as AcmeChallenge["type"],
      token: o.token,
      keyAuthorization: o.keyAuthorization,
    };
  });
  if (new Set(out.map((c) => c.token)).size !== out.length) {
    fail(path, "distinct tokens", "list");
  }
  return out;
}

function nameSpec(x: unknown, path: string): AcmeNameSpec {
  const o = obj(x, path);
  return {
    name: acmeName(o.name, `${path}.name`),
    directory: o.directory === "" ? "" : acmeUrl(o.directory, `${path}.directory`),
    order: order(o.order, `${path}.order`),
    challenges: challenges(o.challenges ?? [], `${path}.challenges`),
    failures: int(o.failures, `${path}.failures`, 0, 1_000_000),
    nextAttemptMs: now(o.nextAttemptMs, `${path}.nextAttemptMs`),
    lastError: errorText(o.lastError ?? "", `${path}.lastError`),
    lastErrorMs: now(o.lastErrorMs ?? 0, `${path}.lastErrorMs`),
    renew: o.renew === true,
  };
}

function nodeName(x: unknown, path: string): string {
  if (typeof x !== "string") fail(path, "a member name", x);
  const problem = nodeNameProblem(x);
  if (problem !== undefined) throw new CommandError(`${path}: not a member name: ${problem}`);
  return x;
}

/** Checks an ACME command (`o.type` passed isAcmeCommand). */
export function validateAcmeCommand(o: Record<string, unknown>, path: string): AcmeCommand {
  switch (o.type) {
    case "acme.claim":
      return {
        type: "acme.claim",
        term: term(o.term, `${path}.term`),
        node: nodeName(o.node, `${path}.node`),
        nowMs: now(o.nowMs, `${path}.nowMs`),
      };
    case "acme.account.create": {
      const a = obj(o.account, `${path}.account`);
      return {
        type: "acme.account.create",
        term: term(o.term, `${path}.term`),
        account: {
          directory: acmeUrl(a.directory, `${path}.account.directory`),
          email: email(a.email, `${path}.account.email`),
          keySealed: sealed(a.keySealed, `${path}.account.keySealed`),
          createdMs: now(a.createdMs, `${path}.account.createdMs`),
        },
      };
    }
    case "acme.account.url":
      return {
        type: "acme.account.url",
        term: term(o.term, `${path}.term`),
        directory: acmeUrl(o.directory, `${path}.directory`),
        url: acmeUrl(o.url, `${path}.url`),
      };
    case "acme.name.set":
      return {
        type: "acme.name.set",
        term: term(o.term, `${path}.term`),
        expectIndex: index(o.expectIndex, `${path}.expectIndex`),
        state: nameSpec(o.state, `${path}.state`),
      };
    case "acme.name.drop":
      return {
        type: "acme.name.drop",
        term: term(o.term, `${path}.term`),
        expectIndex: index(o.expectIndex, `${path}.expectIndex`),
        name: acmeName(o.name, `${path}.name`),
      };
    case "acme.renew":
      return {
        type: "acme.renew",
        name: acmeName(o.name, `${path}.name`),
        nowMs: now(o.nowMs, `${path}.nowMs`),
      };
    default:
      return fail(`${path}.type`, "an ACME command", o.type);
  }
}
