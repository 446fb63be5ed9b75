/**
 * The rules for the cluster-security commands (`pki.init`, `token.create`, `token.revoke`,
 * `token.use`, `cert.record`), called by validateCommand on every replica. An error never quotes
 * a key, a certificate or a hash: it names the field and what it expects.
 *
 * @module
 */
import { nodeNameProblem } from "../lib/node_name.ts";
import { TOKEN_ID_RE } from "../lib/join_token.ts";
import { CommandError, fail, int, obj } from "./rule_basics.ts";
import type { CertRecord, Command } from "./types.ts";

/** Longest PEM text (a P-256 certificate or key is well under 2 KiB). */
export const PEM_CHARS_MAX = 16_384;
/** Longest token description. */
export const TOKEN_DESCRIPTION_CHARS_MAX = 256;
/** Shortest and longest token lifetime. */
export const TOKEN_TTL_MIN_MS = 1000;
export const TOKEN_TTL_MAX_MS = 10 * 365 * 86_400_000;
/** Most joins one token allows when limited. */
export const TOKEN_USES_MAX = 1_000_000;

const TYPES = new Set(["pki.init", "token.create", "token.revoke", "token.use", "cert.record"]);
const CERT_RE =
  /^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\r?\n?$/;
const KEY_RE =
  /^-----BEGIN (EC )?PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END (EC )?PRIVATE KEY-----\r?\n?$/;
const HASH_RE = /^[0-9a-f]{64}$/;
const SERIAL_RE = /^[0-9a-f]{1,64}$/;
// deno-lint-ignore no-control-regex
const CONTROL_RE = /[\x00-\x1f\x7f]/;

/** Whether `type` is one of the commands this module checks. */
export function isPkiCommand(type: unknown): boolean {
  return typeof type === "string" && TYPES.has(type);
}

/** A field that must match `re`; its value is never shown (it may be a secret). */
function secretText(x: unknown, path: string, re: RegExp, want: string): string {
  if (typeof x !== "string" || x.length > PEM_CHARS_MAX || !re.test(x)) {
    throw new CommandError(`${path}: expected ${want}`, want);
  }
  return x;
}

export function tokenId(x: unknown, path: string): string {
  if (typeof x !== "string" || !TOKEN_ID_RE.test(x)) fail(path, "6 of a-z0-9", x);
  return x;
}

function nodeName(x: unknown, path: string): string {
  if (typeof x !== "string") fail(path, "a member name", x);
  const problem = nodeNameProblem(x);
  if (problem !== undefined) throw new CommandError(`${path}: not a member name: ${problem}`);
  return x;
}

const now = (x: unknown, path: string) => int(x, path, 0, Number.MAX_SAFE_INTEGER);

export function certRecord(x: unknown, path: string): CertRecord {
  const o = obj(x, path);
  if (typeof o.serial !== "string" || !SERIAL_RE.test(o.serial)) {
    fail(`${path}.serial`, "1 to 64 lower-case hex digits", o.serial);
  }
  return {
    serial: o.serial,
    node: nodeName(o.node, `${path}.node`),
    notAfter: now(o.notAfter, `${path}.notAfter`),
    key: secretText(o.key, `${path}.key`, HASH_RE, "64 lower-case hex digits"),
  };
}

function description(x: unknown, path: string): string {
  if (x === undefined) return "";
  if (typeof x !== "string") fail(path, "a string", x);
  if (x.length > TOKEN_DESCRIPTION_CHARS_MAX) {
    fail(path, `at most ${TOKEN_DESCRIPTION_CHARS_MAX} characters`, x);
  }
  if (CONTROL_RE.test(x)) fail(path, "text without control characters", x);
  return x;
}

/** Checks a cluster-security command (`o.type` passed isPkiCommand). */
export function validatePkiCommand(o: Record<string, unknown>, path: string): Command {
  const hash = (x: unknown, p: string) => secretText(x, p, HASH_RE, "64 lower-case hex digits");
  switch (o.type) {
    case "pki.init":
      return {
        type: "pki.init",
        caCert: secretText(o.caCert, `${path}.caCert`, CERT_RE, "a PEM certificate"),
        caKey: secretText(o.caKey, `${path}.caKey`, KEY_RE, "a PEM private key"),
      };
    case "token.create":
      return {
        type: "token.create",
        id: tokenId(o.id, `${path}.id`),
        hash: hash(o.hash, `${path}.hash`),
        ttlMs: o.ttlMs === null || o.ttlMs === undefined
          ? null
          : int(o.ttlMs, `${path}.ttlMs`, TOKEN_TTL_MIN_MS, TOKEN_TTL_MAX_MS),
        uses: o.uses === null || o.uses === undefined
          ? null
          : int(o.uses, `${path}.uses`, 1, TOKEN_USES_MAX),
        description: description(o.description, `${path}.description`),
        nowMs: now(o.nowMs, `${path}.nowMs`),
      };
    case "token.revoke":
      return {
        type: "token.revoke",
        id: tokenId(o.id, `${path}.id`),
        nowMs: now(o.nowMs, `${path}.nowMs`),
      };
    case "token.use":
      return {
        type: "token.use",
        id: tokenId(o.id, `${path}.id`),
        hash: hash(o.hash, `${path}.hash`),
        cert: certRecord(o.cert, `${path}.cert`),
        nowMs: now(o.nowMs, `${path}.nowMs`),
      };
    case "cert.record":
      return {
        type: "cert.record",
        cert: certRecord(o.cert, `${path}.cert`),
        nowMs: now(o.nowMs, `${path}.nowMs`),
      };
    default:
      return fail(`${path}.type`, "a cluster-security command", o.type);
  }
}
