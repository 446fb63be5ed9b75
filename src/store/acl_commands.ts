/**
 * The rules for the ACL commands (`acl.policy.set|delete`, `acl.token.set|delete`), called by
 * validateCommand on every replica: policy names as Consul allows them, rules that parse
 * (src/acl/rules.ts), UUIDs for ids and accessors, a secret only as its sha256.
 *
 * @module
 */
import { parseRules, RulesError } from "../acl/rules.ts";
import { CommandError, fail, int, str } from "./rule_basics.ts";
import type { AclPolicyLink, AclPolicySpec, AclTokenSpec, Command } from "./types.ts";

/** Consul's policy name rule. */
export const ACL_POLICY_NAME_RE = /^[A-Za-z0-9_-]{1,128}$/;
/** A UUID in its canonical text form (policy ids, token accessors and secrets). */
export const ACL_UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Longest description kept. */
export const ACL_DESCRIPTION_CHARS_MAX = 512;
/** Most policies one token links, and most datacenters a policy names. */
export const ACL_LINKS_MAX = 64;

const SHA256_HEX_RE = /^[0-9a-f]{64}$/;
const TYPES = new Set([
  "acl.policy.set",
  "acl.policy.delete",
  "acl.token.set",
  "acl.token.delete",
  "acl.bootstrap",
]);

/** Whether `type` is one of the commands this module checks. */
export function isAclCommand(type: unknown): boolean {
  return typeof type === "string" && TYPES.has(type);
}

/** A UUID (an ACL policy id or token accessor). */
export function aclUuid(x: unknown, path: string): string {
  if (typeof x !== "string" || !ACL_UUID_RE.test(x)) fail(path, "a UUID", x);
  return x.toLowerCase();
}

/** A policy name: 1 to 128 of A-Z a-z 0-9 _ -. */
export function aclPolicyName(x: unknown, path: string): string {
  if (typeof x !== "string" || !ACL_POLICY_NAME_RE.test(x)) {
    fail(path, "a policy name of 1 to 128 letters, digits, _ or -", x);
  }
  return x;
}

/** Rules text that parses; the parse error is the message. */
export function aclRules(x: unknown, path: string): string {
  if (typeof x !== "string") fail(path, "rules text", x);
  try {
    parseRules(x);
  } catch (e) {
    if (e instanceof RulesError) throw new CommandError(`${path}: ${e.message}`, "valid rules");
    throw e;
  }
  return x;
}

function description(x: unknown, path: string): string {
  if (x === undefined) return "";
  if (typeof x !== "string") fail(path, "a string", x);
  if (x.length > ACL_DESCRIPTION_CHARS_MAX) {
    fail(path, `at most ${ACL_DESCRIPTION_CHARS_MAX} characters`, x);
  }
  return x;
}

function list<T>(x: unknown, path: string, item: (v: unknown, p: string) => T): T[] {
  if (x === undefined) return [];
  if (!Array.isArray(x)) fail(path, "a list", x);
  if (x.length > ACL_LINKS_MAX) fail(path, `at most ${ACL_LINKS_MAX} items`, "list");
  return x.map((v, i) => item(v, `${path}[${i}]`));
}

function object(x: unknown, path: string): Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) fail(path, "an object", x);
  return x as Record<string, unknown>;
}

function policySpec(x: unknown, path: string): AclPolicySpec {
  const o = object(x, path);
  return {
    id: aclUuid(o.id, `${path}.id`),
    name: aclPolicyName(o.name, `${path}.name`),
    description: description(o.description, `${path}.description`),
    rules: aclRules(o.rules, `${path}.rules`),
    datacenters: list(o.datacenters, `${path}.datacenters`, (v, p) => str(v, p)),
  };
}

function link(x: unknown, path: string): AclPolicyLink {
  const o = object(x, path);
  if (o.id !== undefined) return { id: aclUuid(o.id, `${path}.id`) };
  if (o.name !== undefined) return { name: aclPolicyName(o.name, `${path}.name`) };
  return fail(path, "a policy link with an id or a name", "neither");
}

function tokenSpec(x: unknown, path: string): AclTokenSpec {
  const o = object(x, path);
  if (
    o.secretHash !== undefined && (typeof o.secretHash !== "string" ||
      !SHA256_HEX_RE.test(o.secretHash))
  ) {
    fail(`${path}.secretHash`, "a sha256 in lowercase hex", "something else");
  }
  if (typeof o.local !== "boolean") fail(`${path}.local`, "true or false", o.local);
  return {
    accessorId: aclUuid(o.accessorId, `${path}.accessorId`),
    ...(o.secretHash === undefined ? {} : { secretHash: o.secretHash as string }),
    description: description(o.description, `${path}.description`),
    policies: list(o.policies, `${path}.policies`, link),
    local: o.local,
    createTimeMs: int(o.createTimeMs, `${path}.createTimeMs`, 0, Number.MAX_SAFE_INTEGER),
  };
}

/** Checks an ACL command (`o.type` passed isAclCommand). */
export function validateAclCommand(o: Record<string, unknown>, path: string): Command {
  switch (o.type) {
    case "acl.policy.set":
      return { type: "acl.policy.set", policy: policySpec(o.policy, `${path}.policy`) };
    case "acl.policy.delete":
      return { type: "acl.policy.delete", id: aclUuid(o.id, `${path}.id`) };
    case "acl.token.set":
      return { type: "acl.token.set", token: tokenSpec(o.token, `${path}.token`) };
    case "acl.bootstrap": {
      const token = tokenSpec(o.token, `${path}.token`);
      if (token.secretHash === undefined) fail(`${path}.token.secretHash`, "a sha256", "none");
      return { type: "acl.bootstrap", token };
    }
    case "acl.token.delete":
      return {
        type: "acl.token.delete",
        accessorId: aclUuid(o.accessorId, `${path}.accessorId`),
      };
    default:
      return fail(`${path}.type`, "an acl command", o.type);
  }
}
