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
  const token = tokenRules(store, secret);
  if (token === null) return { error: "not found" };
  const { accessorId, management, rules } = token;
  if (management) return { authz: MANAGEMENT, accessorId };
  return {
    authz: rules.length === 0
      ? fromDefault(aclDefault)
      : policyAuthorizer(rules.map(cachedRules), fromDefault(aclDefault)),
    accessorId,
  };
}

/**
 * A fingerprint of the rights resolveToken() gives `secret`: the default, whether the token is
 * management, and its policies' rules in order. Equal keys give equal rights, so a view built
 * from a token's rights (`--dns-acl`'s zone) needs rebuilding after an ACL change only when its
 * token's key changed (a write to another token or policy leaves it alone).
 */
export function tokenRightsKey(
  store: Store,
  secret: string | undefined,
  aclDefault: AclDefault,
): string {
  const token = tokenRules(store, secret);
  return JSON.stringify(
    token === null ? null : [aclDefault, token.management, token.management ? [] : token.rules],
  );
}

/**
 * The token `secret` names, with its existing policies' rules texts; null when there is none.
 * No secret is the anonymous token, which without its row has no policy.
 */
function tokenRules(
  store: Store,
  secret: string | undefined,
): { accessorId: string; management: boolean; rules: string[] } | null {
  const hash = hashSecret(secret === undefined || secret === "" ? ANONYMOUS_SECRET : secret);
  const found = store.aclTokenByHash(hash);
  if (found === undefined || !sameHash(found.secretHash, hash)) {
    if (secret === undefined || secret === "") {
      // The anonymous token is built in; without its row it still has the default's rights.
      return { accessorId: ANONYMOUS_ACCESSOR, management: false, rules: [] };
    }
    return null;
  }
  const { token } = found;
  const rules: string[] = [];
  const management = token.policyIds.includes(GLOBAL_MANAGEMENT_ID);
  if (!management) {
    for (const id of token.policyIds) {
      const p = store.aclPolicy(id);
      if (p !== undefined) rules.push(p.rules);
    }
  }
  return { accessorId: token.accessorId, management, rules };
}

/** Most secrets a TokenCache remembers (the oldest is forgotten first). */
export const TOKEN_CACHE_MAX = 1024;

/**
 * resolveToken() remembered per presented secret until the ACL tables change (a change that
 * names the `acl` table, and every restore or snapshot install): a request's token then costs
 * a map lookup instead of a SHA-256 and two queries. Unknown secrets are remembered too (as not
 * found), so a flood of wrong tokens costs no more; at most TOKEN_CACHE_MAX of either. The
 * secrets stay in this process's memory only, as they do while their requests are served.
 */
export class TokenCache {
  readonly #store: Store;
  readonly #aclDefault: AclDefault;
  readonly #found = new Map<string, TokenLookup>();
  readonly #unsubscribe: () => void;

  constructor(store: Store, aclDefault: AclDefault) {
    this.#store = store;
    this.#aclDefault = aclDefault;
    this.#unsubscribe = store.subscribe((c) => {
      if (c.reset || c.tables.has("acl")) this.#found.clear();
    });
  }

  /** resolveToken(store, secret, aclDefault), from memory when the tables did not change. */
  resolve(secret: string | undefined): TokenLookup {
    const key = secret ?? "";
    let r = this.#found.get(key);
    if (r === undefined) {
      r = resolveToken(this.#store, secret, this.#aclDefault);
      if (this.#found.size >= TOKEN_CACHE_MAX) this.#found.delete(this.#found.keys().next().value!);
      this.#found.set(key, r);
    }
    return r;
  }

  /** Stops following the store's changes (the cache is not used after). */
  close(): void {
    this.#unsubscribe();
    this.#found.clear();
  }
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
