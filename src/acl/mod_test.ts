import assert from "node:assert/strict";
import { ANONYMOUS_ACCESSOR, type Command, GLOBAL_MANAGEMENT_ID, Store } from "../store/mod.ts";
import {
  hashSecret,
  resolveToken,
  sameHash,
  TOKEN_CACHE_MAX,
  TokenCache,
  tokenRightsKey,
} from "./mod.ts";

const P1 = "11111111-1111-4111-8111-111111111111";
const T1 = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const T2 = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const T3 = "cccccccc-cccc-4ccc-8ccc-cccccccccccc";

function store(): Store {
  const s = Store.open(":memory:");
  const cmds: Command[] = [
    {
      type: "acl.policy.set",
      policy: {
        id: P1,
        name: "app-read",
        description: "",
        rules: `key_prefix "app/" { policy = "read" }`,
        datacenters: [],
      },
    },
    ...([[T1, "mgmt", GLOBAL_MANAGEMENT_ID], [T2, "reader", P1], [T3, "bare", null]] as const).map((
      [accessorId, secret, p],
    ): Command => ({
      type: "acl.token.set",
      token: {
        accessorId,
        secretHash: hashSecret(secret),
        description: "",
        policies: p === null ? [] : [{ id: p }],
        local: false,
        createTimeMs: 0,
      },
    })),
  ];
  for (const c of cmds) assert.deepEqual(s.apply(s.appliedIndex() + 1, c), { ok: true });
  return s;
}

const rights = (s: Store, secret: string | undefined, d: "allow" | "deny") => {
  const r = resolveToken(s, secret, d);
  if ("error" in r) return r.error;
  return [
    r.accessorId,
    r.authz.management,
    r.authz.allows("kv", "app/x", "read"),
    r.authz.allows("kv", "app/x", "write"),
    r.authz.allows("kv", "other", "read"),
    r.authz.allows("acl", "", "read"),
  ];
};

Deno.test("resolveToken() gives management, policy rights over the default, or not found", () => {
  const s = store();
  assert.deepEqual(rights(s, "mgmt", "deny"), [T1, true, true, true, true, true]);
  assert.deepEqual(rights(s, "reader", "deny"), [T2, false, true, false, false, false]);
  // Where the policy says nothing, the default decides.
  assert.deepEqual(rights(s, "reader", "allow"), [T2, false, true, false, true, false]);
  assert.deepEqual(rights(s, "bare", "deny"), [T3, false, false, false, false, false]);
  assert.deepEqual(rights(s, "bare", "allow"), [T3, false, true, true, true, false]);
  assert.equal(rights(s, "wrong", "allow"), "not found");
  assert.equal(rights(s, "mgmt ", "allow"), "not found");
});

Deno.test("resolveToken() without a secret is the anonymous token: the default plus its policies", () => {
  const s = store();
  for (const secret of [undefined, ""]) {
    assert.deepEqual(rights(s, secret, "deny"), [
      ANONYMOUS_ACCESSOR,
      false,
      false,
      false,
      false,
      false,
    ]);
    assert.deepEqual(rights(s, secret, "allow"), [
      ANONYMOUS_ACCESSOR,
      false,
      true,
      true,
      true,
      false,
    ]);
  }
  s.apply(s.appliedIndex() + 1, {
    type: "acl.token.set",
    token: {
      accessorId: ANONYMOUS_ACCESSOR,
      description: "Anonymous Token",
      policies: [{ name: "app-read" }],
      local: false,
      createTimeMs: 0,
    },
  });
  assert.deepEqual(rights(s, undefined, "deny"), [
    ANONYMOUS_ACCESSOR,
    false,
    true,
    false,
    false,
    false,
  ]);
});

Deno.test("tokenRightsKey() changes with the token's rights only, not with other tokens or policies", () => {
  const s = store();
  const apply = (c: Command) => assert.deepEqual(s.apply(s.appliedIndex() + 1, c), { ok: true });
  const policy = (id: string, name: string, rules: string, description = ""): Command => ({
    type: "acl.policy.set",
    policy: { id, name, description, rules, datacenters: [] },
  });
  const anon = () => tokenRightsKey(s, undefined, "deny");
  const before = anon();
  assert.equal(tokenRightsKey(s, "", "deny"), before);
  assert.notEqual(tokenRightsKey(s, undefined, "allow"), before);
  assert.notEqual(tokenRightsKey(s, "wrong", "deny"), before);
  // The anonymous token linked to app-read: its key changes.
  apply({
    type: "acl.token.set",
    token: {
      accessorId: ANONYMOUS_ACCESSOR,
      description: "Anonymous Token",
      policies: [{ id: P1 }],
      local: false,
      createTimeMs: 0,
    },
  });
  const linked = anon();
  assert.notEqual(linked, before);
  // Another policy, another token, app-read's description: the anonymous key stays.
  const P2 = "22222222-2222-4222-8222-222222222222";
  apply(policy(P2, "other", `service_prefix "" { policy = "read" }`));
  apply({
    type: "acl.token.set",
    token: {
      accessorId: T3,
      secretHash: hashSecret("bare"),
      description: "now with a policy",
      policies: [{ id: P2 }],
      local: false,
      createTimeMs: 0,
    },
  });
  apply(policy(P1, "app-read", `key_prefix "app/" { policy = "read" }`, "edited"));
  assert.equal(anon(), linked);
  // app-read's rules change: the anonymous key changes.
  apply(policy(P1, "app-read", `key_prefix "app/" { policy = "write" }`));
  assert.notEqual(anon(), linked);
});

Deno.test("hashSecret() is sha256 hex; sameHash() compares whole strings", () => {
  assert.equal(
    hashSecret("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(sameHash(hashSecret("a"), hashSecret("a")), true);
  assert.equal(sameHash(hashSecret("a"), hashSecret("b")), false);
  assert.equal(sameHash("ab", "abc"), false);
});

const cachedRights = (c: TokenCache, secret: string | undefined) => {
  const r = c.resolve(secret);
  return "error" in r ? r.error : [r.accessorId, r.authz.allows("kv", "app/x", "read")];
};

Deno.test("TokenCache.resolve() answers as resolveToken() and follows ACL changes", () => {
  const s = store();
  const c = new TokenCache(s, "deny");
  assert.deepEqual(cachedRights(c, "reader"), [T2, true]);
  assert.deepEqual(cachedRights(c, undefined), [ANONYMOUS_ACCESSOR, false]);
  assert.equal(cachedRights(c, "later"), "not found");
  // A token created, a policy removed: each seen at the next request.
  s.apply(s.appliedIndex() + 1, {
    type: "acl.token.set",
    token: {
      accessorId: "dddddddd-dddd-4ddd-8ddd-dddddddddddd",
      secretHash: hashSecret("later"),
      description: "",
      policies: [{ id: P1 }],
      local: false,
      createTimeMs: 0,
    },
  });
  assert.deepEqual(cachedRights(c, "later"), ["dddddddd-dddd-4ddd-8ddd-dddddddddddd", true]);
  s.apply(s.appliedIndex() + 1, { type: "acl.policy.delete", id: P1 });
  assert.deepEqual(cachedRights(c, "reader"), [T2, false]);
  // A change to other tables keeps what it knows (the same object, not looked up again).
  const before = c.resolve("reader");
  s.apply(s.appliedIndex() + 1, { type: "kv.put", key: "k", value: new Uint8Array(1), flags: 0 });
  assert.equal(c.resolve("reader"), before);
  c.close();
});

Deno.test("TokenCache follows a snapshot install", async () => {
  const dir = Deno.makeTempDirSync();
  const other = Store.open(":memory:");
  const s = store();
  try {
    await other.writeSnapshotFile(`${dir}/snap`, "raft");
    const c = new TokenCache(s, "deny");
    assert.deepEqual(cachedRights(c, "reader"), [T2, true]);
    // The installed store has no such token.
    s.installSnapshotFile(`${dir}/snap`);
    assert.equal(cachedRights(c, "reader"), "not found");
    c.close();
  } finally {
    other.close();
    s.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("TokenCache keeps at most TOKEN_CACHE_MAX secrets, forgetting the oldest", () => {
  const s = store();
  const c = new TokenCache(s, "deny");
  const first = c.resolve("reader");
  for (let i = 0; i < TOKEN_CACHE_MAX; i++) c.resolve(`wrong-${i}`);
  assert.notEqual(c.resolve("reader"), first);
  c.close();
});
