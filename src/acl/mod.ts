/**
 * ACLs on the API, in Consul's form: policies of rules (rules.ts), tokens linking policies, and
 * what a request's token may do (authorizer.ts). The tables and their commands are the store's
 * (src/store/acl_tables.ts); this module turns a presented secret into an Authorizer.
 *
 * @module
 */
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
import { hashSecret, sameHash } from "../pki/mod.ts";

export * from "./authorizer.ts";
export { type ParsedRules, parseRules, RulesError } from "./rules.ts";
/** How a token's secret is kept (sha256 hex) and compared (constant time). */
export { hashSecret, sameHash };

export type TokenLookup = { authz: Authorizer; accessorId: string } | { error: "not found" };

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
