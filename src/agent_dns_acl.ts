/**
 * `--dns-acl`: which names DNS answers without a token, wired by the agent (src/agent.ts).
 *
 * @module
 */
import { type AclDefault, fromDefault, resolveToken, tokenRightsKey } from "./acl/mod.ts";
import type { ZoneFilter } from "./dns/mod.ts";
import type { Store } from "./store/mod.ts";

/** `--dns-acl`: the names the anonymous token may read (service:read, node:read). */
export function anonymousNames(store: Store, aclDefault: AclDefault): ZoneFilter {
  const found = resolveToken(store, undefined, aclDefault);
  const a = "error" in found ? fromDefault("deny") : found.authz;
  return {
    service: (name) => a.allows("service", name, "read"),
    node: (name) => a.allows("node", name, "read"),
    key: tokenRightsKey(store, undefined, aclDefault),
  };
}
