/**
 * What a token may do, decided from its policies' rules the way Consul decides it (pure: no
 * store, no clock).
 *
 * For a resource and a segment (a KV key, a service name…): an exact rule for the segment
 * (`key "a/b"`) decides; otherwise the longest prefix rule that the segment starts with
 * (`key_prefix "a/"`, `key_prefix ""` matches everything); an exact rule beats a prefix rule of
 * the same text. Several policies (or several rules for the same segment) merge with deny over
 * write over read. `write` implies `read`. When no rule matches, the fallback decides: the
 * `--acl-default` (allow: everything, deny: nothing). `acl` (managing tokens and policies) is for
 * management tokens only, whatever the default; `none` (routes that expose nothing) is always
 * allowed.
 *
 * @module
 */
import {
  type ParsedRules,
  type Rule,
  type RulePolicy,
  type RuleResource,
  strongerPolicy,
} from "./rules.ts";

export type Access = "read" | "write";
export type Resource =
  | "kv"
  | "service"
  | "node"
  | "session"
  | "agent"
  | "operator"
  | "acl"
  | "none";
export type AclDefault = "allow" | "deny";

export interface Authorizer {
  /** Whether `access` to `segment` of `resource` is allowed (`segment` ignored for operator/acl/none). */
  allows(resource: Resource, segment: string, access: Access): boolean;
  /**
   * Whether writing every segment that starts with `prefix` is allowed, decided from the rules
   * alone, whatever exists now (Consul's KeyWritePrefix, for recursive deletes): the longest
   * prefix rule covering `prefix` grants write (or, with none, the fallback writes the prefix)
   * and no rule for a segment under `prefix`, exact or prefix, grants less than write.
   */
  allowsPrefixWrite(resource: Resource, prefix: string): boolean;
  /** A management token's: everything, ACLs included. */
  readonly management: boolean;
}

/** The management token's rights: everything. */
export const MANAGEMENT: Authorizer = Object.freeze({
  allows: () => true,
  allowsPrefixWrite: () => true,
  management: true,
});

const ALLOW_ALL: Authorizer = Object.freeze({
  allows: (r: Resource) => r !== "acl",
  allowsPrefixWrite: (r: Resource) => r !== "acl",
  management: false,
});

const DENY_ALL: Authorizer = Object.freeze({
  allows: (r: Resource) => r === "none",
  allowsPrefixWrite: (r: Resource) => r === "none",
  management: false,
});

/** The rights `--acl-default` gives where no rule speaks: allow (all but `acl`) or deny (none). */
export function fromDefault(d: AclDefault): Authorizer {
  return d === "allow" ? ALLOW_ALL : DENY_ALL;
}

const RESOURCE_OF: Readonly<Record<RuleResource, Resource>> = {
  key: "kv",
  service: "service",
  node: "node",
  session: "session",
  agent: "agent",
};

/** One resource's rules: exact segments, and prefixes longest first. */
interface Table {
  exact: Map<string, RulePolicy>;
  prefixes: [string, RulePolicy][];
}

/**
 * The rights of `policies` together; where none of their rules speaks, `fallback` decides
 * (normally `fromDefault(--acl-default)`).
 */
export function policyAuthorizer(
  policies: readonly ParsedRules[],
  fallback: Authorizer,
): Authorizer {
  const tables = new Map<Resource, Table>();
  let operator: RulePolicy | undefined;
  const prefixMaps = new Map<Resource, Map<string, RulePolicy>>();
  for (const p of policies) {
    if (p.operator !== undefined) {
      operator = operator === undefined ? p.operator : strongerPolicy(operator, p.operator);
    }
    for (const r of p.rules) merge(tables, prefixMaps, r);
  }
  for (const [res, m] of prefixMaps) {
    tables.get(res)!.prefixes = [...m].sort((a, b) => b[0].length - a[0].length);
  }
  const decide = (resource: Resource, segment: string): RulePolicy | undefined => {
    if (resource === "operator") return operator;
    const t = tables.get(resource);
    if (t === undefined) return undefined;
    const exact = t.exact.get(segment);
    if (exact !== undefined) return exact;
    return t.prefixes.find(([prefix]) => segment.startsWith(prefix))?.[1];
  };
  return Object.freeze({
    management: false,
    allows(resource: Resource, segment: string, access: Access): boolean {
      if (resource === "none") return true;
      if (resource === "acl") return false;
      const p = decide(resource, segment);
      if (p === undefined) return fallback.allows(resource, segment, access);
      return p === "write" || (p === "read" && access === "read");
    },
    allowsPrefixWrite(resource: Resource, prefix: string): boolean {
      if (resource === "none") return true;
      if (resource === "acl") return false;
      if (resource === "operator") {
        return operator === undefined
          ? fallback.allowsPrefixWrite(resource, prefix)
          : operator === "write";
      }
      const t = tables.get(resource);
      if (t === undefined) return fallback.allowsPrefixWrite(resource, prefix);
      // Every rule about a segment under the prefix (the prefix itself included) must write.
      for (const [segment, p] of [...t.exact, ...t.prefixes]) {
        if (segment.startsWith(prefix) && p !== "write") return false;
      }
      // The rule that covers the prefix: the longest prefix rule it starts with (exact rules
      // name one segment, not the tree).
      const covering = t.prefixes.find(([rule]) => prefix.startsWith(rule))?.[1];
      if (covering === undefined) return fallback.allowsPrefixWrite(resource, prefix);
      return covering === "write";
    },
  });
}

function merge(
  tables: Map<Resource, Table>,
  prefixMaps: Map<Resource, Map<string, RulePolicy>>,
  r: Rule,
): void {
  const res = RESOURCE_OF[r.resource];
  let t = tables.get(res);
  if (t === undefined) {
    t = { exact: new Map(), prefixes: [] };
    tables.set(res, t);
    prefixMaps.set(res, new Map());
  }
  const m = r.prefix ? prefixMaps.get(res)! : t.exact;
  const had = m.get(r.segment);
  m.set(r.segment, had === undefined ? r.policy : strongerPolicy(had, r.policy));
}
