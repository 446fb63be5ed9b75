import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  ANONYMOUS_ACCESSOR,
  type Command,
  GLOBAL_MANAGEMENT_ID,
  Store,
  validateCommand,
} from "./mod.ts";

const P1 = "11111111-1111-4111-8111-111111111111";
const P2 = "22222222-2222-4222-8222-222222222222";
const T1 = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const T2 = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const hash = (s: string) => createHash("sha256").update(s).digest("hex");

const policy = (
  id: string,
  name: string,
  rules = `key_prefix "" { policy = "read" }`,
): Command => ({
  type: "acl.policy.set",
  policy: { id, name, description: "", rules, datacenters: [] },
});
const token = (
  accessorId: string,
  secret: string | undefined,
  policies: { id?: string; name?: string }[],
): Command => ({
  type: "acl.token.set",
  token: {
    accessorId,
    ...(secret === undefined ? {} : { secretHash: hash(secret) }),
    description: "d",
    policies,
    local: false,
    createTimeMs: 1000,
  },
});

function store() {
  const s = Store.open(":memory:");
  return { s, apply: (c: Command) => s.apply(s.appliedIndex() + 1, c) };
}

Deno.test("Store has Consul's built-in global-management policy and anonymous token", () => {
  const { s } = store();
  assert.equal(s.aclPolicy(GLOBAL_MANAGEMENT_ID)?.name, "global-management");
  assert.equal(s.aclPolicyByName("global-management")?.id, GLOBAL_MANAGEMENT_ID);
  assert.equal(s.aclToken(ANONYMOUS_ACCESSOR)?.description, "Anonymous Token");
  assert.equal(s.aclTokenByHash(hash("anonymous"))?.token.accessorId, ANONYMOUS_ACCESSOR);
});

Deno.test("Store acl.policy.set creates, updates, keeps names unique; acl.policy.delete removes", () => {
  const { s, apply } = store();
  assert.deepEqual(apply(policy(P1, "readers")), { ok: true });
  assert.equal(s.aclPolicy(P1)?.createIndex, 1);
  assert.deepEqual(apply(policy(P1, "readers2", `key "a" { policy = "write" }`)), { ok: true });
  assert.deepEqual(
    { ...s.aclPolicy(P1)!, createIndex: 0 },
    {
      id: P1,
      name: "readers2",
      description: "",
      rules: `key "a" { policy = "write" }`,
      datacenters: [],
      createIndex: 0,
      modifyIndex: 2,
    },
  );
  assert.match(apply(policy(P2, "readers2")).error ?? "", /a policy named readers2 already exists/);
  assert.match(
    apply(policy(GLOBAL_MANAGEMENT_ID, "global-management", `key "a" { policy = "read" }`)).error ??
      "",
    /cannot change/,
  );
  assert.match(
    apply({ type: "acl.policy.delete", id: GLOBAL_MANAGEMENT_ID }).error ?? "",
    /cannot be deleted/,
  );
  assert.match(apply({ type: "acl.policy.delete", id: P2 }).error ?? "", /no policy with id/);
  assert.deepEqual(s.aclPolicies().map((p) => p.name), ["global-management", "readers2"]);
  assert.deepEqual(apply({ type: "acl.policy.delete", id: P1 }), { ok: true });
  assert.equal(s.aclPolicy(P1), undefined);
  assert.ok(s.tableIndex("acl") > 0);
});

Deno.test("Store acl.token.set links policies by id or name, keeps the secret, drops deleted policies", () => {
  const { s, apply } = store();
  apply(policy(P1, "readers"));
  apply(policy(P2, "writers"));
  assert.deepEqual(apply(token(T1, "s1", [{ name: "readers" }, { id: P2 }, { id: P1 }])), {
    ok: true,
  });
  assert.deepEqual(s.aclToken(T1)?.policyIds, [P1, P2]);
  assert.equal(s.aclTokenByHash(hash("s1"))?.token.accessorId, T1);
  // An update without a secret keeps it; one with another secret is refused.
  assert.deepEqual(apply(token(T1, undefined, [{ id: P2 }])), { ok: true });
  assert.deepEqual(s.aclToken(T1)?.policyIds, [P2]);
  assert.equal(s.aclTokenByHash(hash("s1"))?.token.accessorId, T1);
  assert.match(apply(token(T1, "other", [])).error ?? "", /secret cannot change/);
  assert.match(apply(token(T2, undefined, [])).error ?? "", /needs a secret/);
  assert.match(apply(token(T2, "s1", [])).error ?? "", /another token has this secret/);
  assert.match(apply(token(T2, "s2", [{ name: "nope" }])).error ?? "", /no policy nope/);
  assert.equal(s.aclToken(T2), undefined);
  apply({ type: "acl.policy.delete", id: P2 });
  assert.deepEqual(s.aclToken(T1)?.policyIds, []);
  assert.match(
    apply({ type: "acl.token.delete", accessorId: ANONYMOUS_ACCESSOR }).error ?? "",
    /anonymous token cannot be deleted/,
  );
  assert.deepEqual(apply({ type: "acl.token.delete", accessorId: T1 }), { ok: true });
  assert.match(apply({ type: "acl.token.delete", accessorId: T1 }).error ?? "", /no token/);
  assert.deepEqual(s.aclTokens().map((t) => t.accessorId), [ANONYMOUS_ACCESSOR]);
});

Deno.test("validateCommand() refuses bad ACL commands with one line naming the field", () => {
  const good = { id: P1, name: "n", description: "", rules: "", datacenters: [] };
  const goodToken = {
    accessorId: T1,
    secretHash: hash("x"),
    policies: [],
    local: false,
    createTimeMs: 0,
  };
  const bad: [unknown, RegExp][] = [
    [
      { type: "acl.policy.set", policy: { ...good, id: "x" } },
      /command\.policy\.id: expected a UUID/,
    ],
    [
      { type: "acl.policy.set", policy: { ...good, name: "a b" } },
      /policy\.name: expected a policy name/,
    ],
    [{ type: "acl.policy.set", policy: { ...good, name: "x".repeat(129) } }, /policy\.name/],
    [
      { type: "acl.policy.set", policy: { ...good, rules: `key "a" {` } },
      /policy\.rules: rules: line 1, column 10/,
    ],
    [
      { type: "acl.policy.set", policy: { ...good, rules: 3 } },
      /policy\.rules: expected rules text/,
    ],
    [{ type: "acl.policy.set", policy: { ...good, description: "d".repeat(513) } }, /description/],
    [
      { type: "acl.policy.set", policy: { ...good, datacenters: "dc1" } },
      /datacenters: expected a list/,
    ],
    [{ type: "acl.policy.set", policy: null }, /policy: expected an object/],
    [{ type: "acl.policy.delete", id: 5 }, /id: expected a UUID/],
    [
      { type: "acl.token.set", token: { ...goodToken, secretHash: "abc" } },
      /secretHash: expected a sha256/,
    ],
    [
      { type: "acl.token.set", token: { ...goodToken, local: "no" } },
      /local: expected true or false/,
    ],
    [
      { type: "acl.token.set", token: { ...goodToken, policies: [{}] } },
      /policies\[0\]: expected a policy link/,
    ],
    [
      { type: "acl.token.set", token: { ...goodToken, policies: [{ name: "" }] } },
      /policies\[0\]\.name/,
    ],
    [
      { type: "acl.token.set", token: { ...goodToken, policies: Array(65).fill({ id: P1 }) } },
      /at most 64/,
    ],
    [{ type: "acl.token.set", token: { ...goodToken, createTimeMs: -1 } }, /createTimeMs/],
    [{ type: "acl.token.delete", accessorId: "" }, /accessorId: expected a UUID/],
  ];
  for (const [cmd, want] of bad) {
    assert.throws(() => validateCommand(cmd), want, JSON.stringify(cmd).slice(0, 80));
  }
  // A refused command changes nothing and the store goes on.
  const { s } = store();
  assert.match(s.apply(1, bad[0]![0]).error ?? "", /expected a UUID/);
  assert.equal(s.appliedIndex(), 1);
  assert.equal(s.aclPolicies().length, 1);
});

Deno.test("Store raft snapshot carries ACL policies and tokens; the user snapshot does not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { s, apply } = store();
    apply(policy(P1, "readers"));
    apply(token(T1, "s1", [{ id: P1 }]));
    await s.writeSnapshotFile(`${dir}/raft`, "raft");
    await s.writeSnapshotFile(`${dir}/user`, "user");
    const b = Store.open(":memory:");
    b.installSnapshotFile(`${dir}/raft`);
    assert.deepEqual(b.aclPolicies(), s.aclPolicies());
    assert.deepEqual(b.aclTokens(), s.aclTokens());
    assert.equal(b.aclTokenByHash(hash("s1"))?.token.accessorId, T1);
    const user = new TextDecoder().decode(await Deno.readFile(`${dir}/user`));
    assert.ok(!user.includes("acl_tokens") && !user.includes(hash("s1")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Store acl.bootstrap makes a management token only while none exists", () => {
  const { s, apply } = store();
  const boot = (accessorId: string, secret: string): Command => ({
    type: "acl.bootstrap",
    token: {
      accessorId,
      secretHash: hash(secret),
      description: "b",
      policies: [],
      local: false,
      createTimeMs: 0,
    },
  });
  assert.deepEqual(apply(boot(T1, "s1")), { ok: true });
  assert.deepEqual(s.aclToken(T1)?.policyIds, [GLOBAL_MANAGEMENT_ID]);
  assert.deepEqual(apply(boot(T2, "s2")), { ok: false, error: "ACL bootstrap no longer allowed" });
  assert.equal(s.aclToken(T2), undefined);
  assert.throws(
    () =>
      validateCommand({
        type: "acl.bootstrap",
        token: { ...s.aclToken(T1), secretHash: undefined },
      }),
    /secretHash/,
  );
});

Deno.test("Store acl.bootstrap stays refused once a management token was stored, also after it is deleted", async (t) => {
  const boot = (accessorId: string, secret: string): Command => ({
    type: "acl.bootstrap",
    token: {
      accessorId,
      secretHash: hash(secret),
      description: "b",
      policies: [],
      local: false,
      createTimeMs: 0,
    },
  });
  await t.step("--bootstrap's token (acl.token.set on global-management), then deleted", () => {
    const { s, apply } = store();
    assert.deepEqual(apply(token(T1, "s1", [{ id: GLOBAL_MANAGEMENT_ID }])), { ok: true });
    assert.deepEqual(apply({ type: "acl.token.delete", accessorId: T1 }), { ok: true });
    assert.deepEqual(apply(boot(T2, "s2")), {
      ok: false,
      error: "ACL bootstrap no longer allowed",
    });
    assert.equal(s.aclToken(T2), undefined);
  });
  await t.step("the first acl.bootstrap's token, then stripped of global-management", () => {
    const { s, apply } = store();
    assert.deepEqual(apply(policy(P1, "p1")), { ok: true });
    assert.deepEqual(apply(boot(T1, "s1")), { ok: true });
    assert.deepEqual(apply(token(T1, undefined, [{ id: P1 }])), { ok: true });
    assert.deepEqual(apply(boot(T2, "s2")).ok, false);
    assert.equal(s.aclToken(T2), undefined);
  });
  await t.step(
    "a member installing a raft snapshot of a bootstrapped store refuses too",
    async () => {
      const dir = await Deno.makeTempDir();
      try {
        const { s, apply } = store();
        apply(boot(T1, "s1"));
        apply({ type: "acl.token.delete", accessorId: T1 });
        await s.writeSnapshotFile(`${dir}/raft`, "raft");
        const b = Store.open(":memory:");
        b.installSnapshotFile(`${dir}/raft`);
        assert.deepEqual(b.apply(b.appliedIndex() + 1, boot(T2, "s2")).ok, false);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
  await t.step("a cluster that never had a management token may bootstrap", () => {
    const { s, apply } = store();
    assert.deepEqual(apply(policy(P1, "p1")), { ok: true });
    assert.deepEqual(apply(token(T1, "s1", [{ id: P1 }])), { ok: true });
    assert.deepEqual(apply(boot(T2, "s2")), { ok: true });
    assert.deepEqual(s.aclToken(T2)?.policyIds, [GLOBAL_MANAGEMENT_ID]);
  });
});
