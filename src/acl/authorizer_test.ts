import assert from "node:assert/strict";
import {
  type Access,
  fromDefault,
  MANAGEMENT,
  policyAuthorizer,
  type Resource,
} from "./authorizer.ts";
import { parseRules } from "./rules.ts";

const authz = (defaultPolicy: "allow" | "deny", ...rules: string[]) =>
  policyAuthorizer(rules.map(parseRules), fromDefault(defaultPolicy));

Deno.test("policyAuthorizer() decides by Consul's precedence: exact, then longest prefix, then default", () => {
  const a = authz(
    "deny",
    `key_prefix "" { policy = "read" }
     key_prefix "app/" { policy = "write" }
     key_prefix "app/secret/" { policy = "deny" }
     key "app/secret/open" { policy = "read" }
     key_prefix "app/secret/open" { policy = "write" }
     key "exact" { policy = "write" }
     service_prefix "web" { policy = "read" }
     service "web-admin" { policy = "deny" }
     node "n1" { policy = "write" }
     operator = "read"`,
  );
  const table: [Resource, string, Access, boolean][] = [
    ["kv", "other", "read", true], // key_prefix "" matches everything
    ["kv", "other", "write", false],
    ["kv", "app/x", "write", true], // longest prefix app/ (write implies read)
    ["kv", "app/x", "read", true],
    ["kv", "app/secret/x", "read", false], // longer prefix denies
    ["kv", "app/secret/open", "read", true], // exact beats the prefix of the same text
    ["kv", "app/secret/open", "write", false],
    ["kv", "app/secret/openx", "write", true], // prefix app/secret/open
    ["kv", "exact", "write", true],
    ["kv", "exactly", "write", false], // exact rule does not act as a prefix
    ["service", "web", "read", true],
    ["service", "webapp", "read", true],
    ["service", "web", "write", false],
    ["service", "web-admin", "read", false],
    ["service", "db", "read", false], // default deny
    ["node", "n1", "write", true],
    ["node", "n10", "read", false],
    ["session", "n1", "read", false],
    ["operator", "", "read", true],
    ["operator", "", "write", false],
    ["acl", "", "read", false],
    ["none", "", "write", true],
  ];
  for (const [res, seg, access, want] of table) {
    assert.equal(a.allows(res, seg, access), want, `${res} ${seg} ${access}`);
  }
  assert.equal(a.management, false);
});

Deno.test("policyAuthorizer() merges policies with deny over write over read", () => {
  const a = authz(
    "allow",
    `key_prefix "a/" { policy = "read" }`,
    `key_prefix "a/" { policy = "write" }`,
    `service "s" { policy = "write" }`,
    `service "s" { policy = "deny" }`,
    `operator = "write"`,
    `operator = "read"`,
  );
  assert.equal(a.allows("kv", "a/b", "write"), true);
  assert.equal(a.allows("service", "s", "read"), false);
  assert.equal(a.allows("operator", "", "write"), true);
  // No rule: the default (allow) decides.
  assert.equal(a.allows("node", "x", "write"), true);
  assert.equal(a.allows("kv", "b", "write"), true);
  // A deny rule under default allow wins for what it matches.
  assert.equal(
    authz("allow", `key_prefix "p" { policy = "deny" }`).allows("kv", "p1", "read"),
    false,
  );
});

Deno.test("fromDefault() allows all but acl, or nothing but none; MANAGEMENT allows all", () => {
  for (const res of ["kv", "service", "node", "session", "agent", "operator"] as const) {
    assert.equal(fromDefault("allow").allows(res, "x", "write"), true);
    assert.equal(fromDefault("deny").allows(res, "x", "read"), false);
    assert.equal(MANAGEMENT.allows(res, "x", "write"), true);
  }
  assert.equal(fromDefault("allow").allows("acl", "", "read"), false);
  assert.equal(fromDefault("deny").allows("none", "", "write"), true);
  assert.equal(MANAGEMENT.allows("acl", "", "write"), true);
  assert.equal(MANAGEMENT.management, true);
  assert.equal(fromDefault("allow").management, false);
});

Deno.test("Authorizer.allowsPrefixWrite() decides a tree from the rules, as Consul's KeyWritePrefix", () => {
  const a = authz(
    "deny",
    `key_prefix "app/" { policy = "write" }
     key "app/locked" { policy = "deny" }
     key_prefix "app/ro/" { policy = "read" }
     key "exact" { policy = "write" }
     key_prefix "open" { policy = "write" }`,
  );
  const table: [string, boolean, string][] = [
    ["app/x/", true, "covered by app/ write, no rule under it"],
    ["app/", false, "app/locked (deny) lies under it, existing or not"],
    ["app/ro", false, "app/ro/ (read) lies under it"],
    ["app/ro/y", false, "covered by app/ro/ read"],
    ["app/l", false, "app/locked lies under it"],
    ["exact", false, "an exact rule covers one key, not the tree: the default (deny) decides"],
    ["open/", true, "covered by open (write)"],
    ["", false, "app/locked under the root"],
    ["other", false, "no rule covers it: the default"],
  ];
  for (const [prefix, want, why] of table) {
    assert.equal(a.allowsPrefixWrite("kv", prefix), want, `${JSON.stringify(prefix)}: ${why}`);
  }
  // Under default allow an uncovered tree is writable unless a rule under it grants less.
  const allow = authz("allow", `key "keep/me" { policy = "read" }`);
  assert.equal(allow.allowsPrefixWrite("kv", "free/"), true);
  assert.equal(allow.allowsPrefixWrite("kv", "keep/"), false);
  assert.equal(allow.allowsPrefixWrite("kv", "keep/me/"), true);
  assert.equal(MANAGEMENT.allowsPrefixWrite("kv", ""), true);
  assert.equal(fromDefault("allow").allowsPrefixWrite("kv", ""), true);
  assert.equal(fromDefault("deny").allowsPrefixWrite("kv", "a"), false);
});
