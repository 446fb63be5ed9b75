/**
 * ACLs on the API, in Consul's form: policies of rules (rules.ts), tokens linking policies, and
 * what a request's token may do (authorizer.ts). The tables and their commands are the store's
 * (src/store/acl_tables.ts); this module turns a presented secret into an Authorizer.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import {
  ANONYMOUS_ACCESSOR,
  ANONYMOUS_SECRET,
  GLOBAL_MANAGEMENT_ID,
  type Store,
} from "../store/mod.ts";
import {
  type AclDefault,
  type Authorizer,
  fromDefault,
  MANAGEMENT,
  policyAuthorizer,
} from "./authorizer.ts";
import { type ParsedRules, parseRules } from "./rules.ts";

export * from "./authorizer.ts";
export { type ParsedRules, parseRules, RulesError } from "./rules.ts";

export type TokenLookup = { authz: Authorizer; accessorId: string } | { error: "not found" };

/** sha256 of a secret, lowercase hex: what the store keeps of a token's secret. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Whether two hashes are equal, in time that does not depend on where they differ. */
export function sameHash(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.byteLength === y.byteLength && timingSafeEqual(x, y);
}

/**
 * The rights of the token whose secret is `secret`: management when it links the
 * global-management policy, otherwise its policies' rules with `aclDefault` where they say
 * nothing. No secret (undefined, "") is the anonymous token: `aclDefault` plus the anonymous
 * token's policies. An unknown secret is `{error: "not found"}` (Consul: 403 "ACL not found").
 */
export function resolveToken(
  store: Store,
  secret: string | undefined,
  aclDefault: AclDefault,
): TokenLookup {
  const hash = hashSecret(secret === undefined || secret === "" ? ANONYMOUS_SECRET : secret);
  const found = store.aclTokenByHash(hash);
  if (found === undefined || !sameHash(found.secretHash, hash)) {
    if (secret === undefined || secret === "") {
      // The anonymous token is built in; without its row it still has the default's rights.
      return { authz: fromDefault(aclDefault), accessorId: ANONYMOUS_ACCESSOR };
    }
    return { error: "not found" };
  }
  const { token } = found;
  if (token.policyIds.includes(GLOBAL_MANAGEMENT_ID)) {
    return { authz: MANAGEMENT, accessorId: token.accessorId };
  }
  const policies: ParsedRules[] = [];
  for (const id of token.policyIds) {
    const p = store.aclPolicy(id);
    if (p !== undefined) policies.push(cachedRules(p.rules));
  }
  return {
    authz: policies.length === 0
      ? fromDefault(aclDefault)
      : policyAuthorizer(policies, fromDefault(aclDefault)),
    accessorId: token.accessorId,
  };
}

/** Parsed rules by their text: a policy's rules are parsed once, not per request. */
const parsed = new Map<string, ParsedRules>();
const PARSED_MAX = 1024;

function cachedRules(text: string): ParsedRules {
  let r = parsed.get(text);
  if (r === undefined) {
    // The store only holds rules that parsed (acl_commands.ts), so this does not throw.
    r = parseRules(text);
    if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value!);
    parsed.set(text, r);
  }
  return r;
}
