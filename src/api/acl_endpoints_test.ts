import assert from "node:assert/strict";
import Consul from "consul";
import { hashSecret, resolveToken } from "../acl/mod.ts";
import { LocalCluster } from "../cluster/testing.ts";
import { GLOBAL_MANAGEMENT_ID, Store } from "../store/mod.ts";
import { fixture, put } from "./_testing.ts";
import { ApiServer } from "./server.ts";

type F = ReturnType<typeof fixture>;

const MGMT_SECRET = "0f0f0f0f-0000-4000-8000-000000000001";
const MGMT_ACCESSOR = "0f0f0f0f-0000-4000-8000-0000000000aa";
const H = { "X-Consul-Token": MGMT_SECRET };

/** A fixture with a management token (what --bootstrap makes), sent with every request. */
async function withManagement(): Promise<
  F & { req: (path: string, init?: RequestInit) => Promise<Response> }
> {
  const f = fixture({ aclDefault: "deny", now: () => 1_700_000_000_000 });
  await f.cluster.propose({
    type: "acl.token.set",
    token: {
      accessorId: MGMT_ACCESSOR,
      secretHash: hashSecret(MGMT_SECRET),
      description: "bootstrap",
      policies: [{ id: GLOBAL_MANAGEMENT_ID }],
      local: false,
      createTimeMs: 0,
    },
  });
  const req = (path: string, init: RequestInit = {}) =>
    Promise.resolve(
      f.app.request(path, { ...init, headers: { ...H, ...(init.headers as object ?? {}) } }),
    );
  return Object.assign(f, { req });
}

async function ok(r: Response): Promise<unknown> {
  assert.equal(r.status, 200, await r.clone().text());
  return await r.json();
}

Deno.test("PUT /v1/acl/policy creates a policy; GET by id and name, list without Rules, update, delete", async () => {
  const f = await withManagement();
  const rules = `key_prefix "app/" { policy = "read" }`;
  const created = await ok(
    await f.req("/v1/acl/policy", put({ Name: "app-read", Description: "d", Rules: rules })),
  ) as Record<string, unknown>;
  const id = created.ID as string;
  assert.match(id, /^[0-9a-f-]{36}$/);
  const index = f.store.tableIndex("acl");
  assert.deepEqual(created, {
    ID: id,
    Name: "app-read",
    Description: "d",
    Rules: rules,
    Datacenters: null,
    CreateIndex: index,
    ModifyIndex: index,
  });
  const byId = await f.req(`/v1/acl/policy/${id}`);
  assert.equal(byId.headers.get("X-Consul-Index"), String(index));
  assert.deepEqual(await ok(byId), created);
  assert.deepEqual(await ok(await f.req("/v1/acl/policy/name/app-read")), created);
  const list = await ok(await f.req("/v1/acl/policies")) as Record<string, unknown>[];
  assert.deepEqual(list.map((p) => p.Name), ["app-read", "global-management"]);
  assert.equal("Rules" in list[0]!, false);
  const updated = await ok(
    await f.req(
      `/v1/acl/policy/${id}`,
      put({ Name: "app-rw", Rules: `key "a" { policy = "write" }` }),
    ),
  ) as Record<string, unknown>;
  assert.equal(updated.Name, "app-rw");
  assert.equal(updated.Description, "");
  assert.equal(updated.CreateIndex, index);
  assert.ok((updated.ModifyIndex as number) > index);
  assert.equal(await ok(await f.req(`/v1/acl/policy/${id}`, { method: "DELETE" })), true);
  const gone = await f.req(`/v1/acl/policy/${id}`);
  assert.equal(gone.status, 404);
  assert.equal(await gone.text(), "ACL not found\n");
  f.close();
});

Deno.test("/v1/acl/policy refuses bad bodies with a 400 naming the problem, storing nothing", async () => {
  const f = await withManagement();
  await ok(await f.req("/v1/acl/policy", put({ Name: "taken" })));
  const cases: [unknown, RegExp][] = [
    [{}, /missing Name/],
    [{ Name: "has space" }, /Name: expected a policy name/],
    [
      { Name: "x", Rules: `key "a" { policy = "sudo" }` },
      /^rules: line 1, column 20: policy "sudo"/,
    ],
    [
      { Name: "x", Datacenters: ["dc2"] },
      /^acl policy: Datacenters \["dc2"\] does not include this cluster's datacenter "dc1"/,
    ],
    [{ Name: "x", Rules: 5 }, /Rules must be a string/],
    [{ Name: "x", Datacenters: "dc1" }, /Datacenters must be a list of strings/],
    [{ Name: "taken" }, /a policy named taken already exists/],
    ["not json", /invalid JSON body/],
    [[], /body must be a JSON object/],
  ];
  for (const [body, want] of cases) {
    const r = await f.req("/v1/acl/policy", put(body));
    assert.equal(r.status, 400, JSON.stringify(body));
    const text = await r.text();
    assert.match(text, want);
    assert.equal(text.trimEnd().includes("\n"), false);
  }
  const gm = f.store.aclPolicy(GLOBAL_MANAGEMENT_ID)!;
  const r = await f.req(
    `/v1/acl/policy/${GLOBAL_MANAGEMENT_ID}`,
    put({ Name: gm.name, Rules: 'operator = "read"' }),
  );
  assert.equal(r.status, 400);
  assert.match(await r.text(), /cannot change/);
  assert.equal(
    (await f.req(`/v1/acl/policy/${GLOBAL_MANAGEMENT_ID}`, { method: "DELETE" })).status,
    400,
  );
  assert.equal((await f.req("/v1/acl/policy/not-a-uuid")).status, 400);
  assert.equal(f.store.aclPolicies().length, 2);
  // Datacenters naming this one (among others) is stored as given.
  const dcs = await ok(
    await f.req("/v1/acl/policy", put({ Name: "dcs", Datacenters: ["dc2", "dc1"] })),
  );
  assert.deepEqual((dcs as { Datacenters: string[] }).Datacenters, ["dc2", "dc1"]);
  f.close();
});

Deno.test("PUT /v1/acl/token answers the SecretID once; later reads, lists and self never show it", async () => {
  const f = await withManagement();
  await ok(await f.req("/v1/acl/policy", put({ Name: "app-read", Rules: "" })));
  const created = await ok(
    await f.req("/v1/acl/token", put({ Description: "ci", Policies: [{ Name: "app-read" }] })),
  ) as Record<string, unknown>;
  const { AccessorID, SecretID } = created as { AccessorID: string; SecretID: string };
  assert.match(AccessorID, /^[0-9a-f-]{36}$/);
  assert.match(SecretID, /^[0-9a-f-]{36}$/);
  const policyId = f.store.aclPolicyByName("app-read")!.id;
  const index = f.store.tableIndex("acl");
  assert.deepEqual(created, {
    AccessorID,
    SecretID,
    Description: "ci",
    Policies: [{ ID: policyId, Name: "app-read" }],
    Local: false,
    CreateTime: "2023-11-14T22:13:20.000Z",
    CreateIndex: index,
    ModifyIndex: index,
  });
  const read = await ok(await f.req(`/v1/acl/token/${AccessorID}`)) as Record<string, unknown>;
  const { SecretID: _, ...withoutSecret } = created;
  assert.deepEqual(read, withoutSecret);
  const all = JSON.stringify(await ok(await f.req("/v1/acl/tokens")));
  assert.ok(!all.includes(SecretID) && !all.includes(hashSecret(SecretID)));
  assert.ok(all.includes(AccessorID));
  const filtered = await ok(await f.req(`/v1/acl/tokens?policy=${policyId}`)) as unknown[];
  assert.equal(filtered.length, 1);
  // The stored token only has the hash.
  assert.equal(f.store.aclTokenByHash(hashSecret(SecretID))?.token.accessorId, AccessorID);
  // Given AccessorID and SecretID are kept (Consul lets a client choose them).
  const A = "12345678-1234-4234-8234-123456789abc";
  const S = "87654321-1234-4234-8234-123456789ABC";
  const chosen = await ok(
    await f.req("/v1/acl/token", put({ AccessorID: A, SecretID: S })),
  ) as Record<string, unknown>;
  assert.equal(chosen.AccessorID, A);
  assert.equal(chosen.SecretID, S);
  // Kept exactly as given (upper case too): the token is found by the text a client presents.
  assert.equal(f.store.aclTokenByHash(hashSecret(S))?.token.accessorId, A);
  const self = await ok(
    await f.req("/v1/acl/token/self", { headers: { "X-Consul-Token": S } }),
  ) as Record<string, unknown>;
  assert.equal("SecretID" in self, false);
  f.close();
});

Deno.test("PUT /v1/acl/token/:accessor updates policies and description, keeps the secret; clone; delete", async () => {
  const f = await withManagement();
  const p = await ok(await f.req("/v1/acl/policy", put({ Name: "p1" }))) as { ID: string };
  const t = await ok(await f.req("/v1/acl/token", put({ Description: "one" }))) as {
    AccessorID: string;
    SecretID: string;
  };
  const u = await ok(
    await f.req(
      `/v1/acl/token/${t.AccessorID}`,
      put({ Description: "two", Policies: [{ ID: p.ID }] }),
    ),
  ) as Record<string, unknown>;
  assert.equal(u.Description, "two");
  assert.deepEqual(u.Policies, [{ ID: p.ID, Name: "p1" }]);
  assert.equal("SecretID" in u, false);
  assert.equal(f.store.aclTokenByHash(hashSecret(t.SecretID))?.token.accessorId, t.AccessorID);
  const clone = await ok(
    await f.req(`/v1/acl/token/${t.AccessorID}/clone`, { method: "PUT" }),
  ) as Record<string, unknown>;
  assert.notEqual(clone.AccessorID, t.AccessorID);
  assert.notEqual(clone.SecretID, t.SecretID);
  assert.equal(clone.Description, "two");
  assert.deepEqual(clone.Policies, u.Policies);
  // A PUT replaces the token's fields (Consul's update): the same secret may be repeated,
  // another one is refused. may be repeated; another one is refused.
  await ok(await f.req(`/v1/acl/token/${t.AccessorID}`, put({ SecretID: t.SecretID })));
  const other = await f.req(
    `/v1/acl/token/${t.AccessorID}`,
    put({ SecretID: "87654321-1234-4234-8234-123456789abc" }),
  );
  assert.equal(other.status, 400);
  assert.match(await other.text(), /secret cannot change/);
  const toggled = await f.req(`/v1/acl/token/${t.AccessorID}`, put({ Local: true }));
  assert.equal(toggled.status, 400);
  const badSecret = await f.req("/v1/acl/token", put({ SecretID: "my-password-123" }));
  assert.deepEqual(
    [badSecret.status, await badSecret.text()],
    [400, "acl token: SecretID must be a UUID\n"],
  );
  const unsupported = await f.req("/v1/acl/token", put({ Roles: [{ Name: "r" }] }));
  assert.equal(unsupported.status, 400);
  assert.match(await unsupported.text(), /Roles is not supported by berth/);
  const unknownPolicy = await f.req("/v1/acl/token", put({ Policies: [{ Name: "nope" }] }));
  assert.equal(unknownPolicy.status, 400);
  assert.match(await unknownPolicy.text(), /no policy nope/);
  assert.equal(await ok(await f.req(`/v1/acl/token/${t.AccessorID}`, { method: "DELETE" })), true);
  assert.equal((await f.req(`/v1/acl/token/${t.AccessorID}`)).status, 404);
  assert.equal((await f.req(`/v1/acl/token/${t.AccessorID}`, { method: "DELETE" })).status, 404);
  f.close();
});

Deno.test("PUT /v1/acl/bootstrap (consul client's acl.bootstrap) makes a management token once", async () => {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  const api = new ApiServer({
    store,
    cluster,
    node: "n1",
    advertise: "127.0.0.1",
    version: "0.0.0-test",
    aclDefault: "deny",
    listen: { host: "127.0.0.1", port: 0 },
  });
  await api.start();
  try {
    const consul = new Consul({ host: "127.0.0.1", port: api.address.port });
    const t = await consul.acl.bootstrap() as Record<string, unknown>;
    assert.match(String(t.SecretID), /^[0-9a-f-]{36}$/);
    assert.deepEqual(t.Policies, [{ ID: GLOBAL_MANAGEMENT_ID, Name: "global-management" }]);
    const found = resolveToken(store, String(t.SecretID), "deny");
    assert.ok(!("error" in found) && found.authz.management);
    await assert.rejects(consul.acl.bootstrap(), /ACL bootstrap no longer allowed/);
    const again = await fetch(`http://127.0.0.1:${api.address.port}/v1/acl/bootstrap`, {
      method: "PUT",
    });
    assert.equal(again.status, 403);
    assert.equal(await again.text(), 'Permission denied: "ACL bootstrap no longer allowed"\n');
    assert.equal(store.aclTokens().length, 2);
  } finally {
    await api.close();
    store.close();
  }
});

Deno.test("/v1/acl/* needs a management token; token/self shows the caller's; a token cannot delete itself", async () => {
  const f = await withManagement();
  await ok(
    await f.req(
      "/v1/acl/policy",
      put({ Name: "kv-all", Rules: `key_prefix "" { policy = "write" }` }),
    ),
  );
  const t = await ok(await f.req("/v1/acl/token", put({ Policies: [{ Name: "kv-all" }] }))) as {
    AccessorID: string;
    SecretID: string;
  };
  const as = (secret: string | undefined, path: string, init: RequestInit = {}) =>
    f.app.request(path, {
      ...init,
      headers: secret === undefined ? {} : { "X-Consul-Token": secret },
    });
  for (
    const [method, path] of [
      ["GET", "/v1/acl/policies"],
      ["GET", "/v1/acl/tokens"],
      ["PUT", "/v1/acl/policy"],
      ["PUT", "/v1/acl/token"],
      ["DELETE", `/v1/acl/token/${MGMT_ACCESSOR}`],
      ["PUT", `/v1/acl/token/${t.AccessorID}/clone`],
    ]
  ) {
    const r = await as(t.SecretID, path!, { method, body: method === "GET" ? undefined : "{}" });
    assert.equal(r.status, 403, `${method} ${path}`);
    assert.equal(
      await r.text(),
      `Permission denied: token with AccessorID '${t.AccessorID}' lacks permission '${
        method === "GET" ? "acl:read" : "acl:write"
      }'\n`,
    );
    const anon = await as(undefined, path!, { method, body: method === "GET" ? undefined : "{}" });
    assert.equal(anon.status, 403);
  }
  // The token may still do what its policy allows.
  assert.equal((await as(t.SecretID, "/v1/kv/a", { method: "PUT", body: "1" })).status, 200);
  const self = await ok(await as(t.SecretID, "/v1/acl/token/self")) as Record<string, unknown>;
  assert.equal(self.AccessorID, t.AccessorID);
  assert.deepEqual(self.Policies, [{ ID: f.store.aclPolicyByName("kv-all")!.id, Name: "kv-all" }]);
  const unknown = await as("11111111-2222-4333-8444-555555555555", "/v1/acl/token/self");
  assert.deepEqual([unknown.status, await unknown.text()], [403, "ACL not found\n"]);
  const mine = await f.req(`/v1/acl/token/${MGMT_ACCESSOR}`, { method: "DELETE" });
  assert.equal(mine.status, 400);
  assert.match(await mine.text(), /Deletion of the request's authorization token is not permitted/);
  assert.notEqual(f.store.aclToken(MGMT_ACCESSOR), undefined);
  f.close();
});

Deno.test("PUT /v1/acl/token/:accessor refuses taking global-management off the request's own token", async () => {
  const f = await withManagement();
  await ok(
    await f.req("/v1/acl/policy", put({ Name: "kv-read", Rules: `key "a" { policy = "read" }` })),
  );
  for (const policies of [[], [{ Name: "kv-read" }]]) {
    const r = await f.req(`/v1/acl/token/${MGMT_ACCESSOR}`, put({ Policies: policies }));
    assert.equal(r.status, 400);
    assert.equal(
      await r.text(),
      "acl token: removing global-management from the request's own token is not permitted\n",
    );
    assert.deepEqual(f.store.aclToken(MGMT_ACCESSOR)?.policyIds, [GLOBAL_MANAGEMENT_ID]);
  }
  // Keeping it (by name or id) is an ordinary update; another token may lose it.
  await ok(
    await f.req(
      `/v1/acl/token/${MGMT_ACCESSOR}`,
      put({ Description: "kept", Policies: [{ Name: "global-management" }, { Name: "kv-read" }] }),
    ),
  );
  const other = await ok(
    await f.req("/v1/acl/token", put({ Policies: [{ ID: GLOBAL_MANAGEMENT_ID }] })),
  ) as { AccessorID: string };
  await ok(await f.req(`/v1/acl/token/${other.AccessorID}`, put({ Policies: [] })));
  assert.deepEqual(f.store.aclToken(other.AccessorID)?.policyIds, []);
  f.close();
});
