import assert from "node:assert/strict";
import { caPin, createCa, hashSecret } from "../pki/mod.ts";
import { parseJoinToken } from "../lib/join_token.ts";
import { addToken, fixture } from "./_testing.ts";

/** Join tokens need acl rights: every request here sends the management token "mgmt". */
const MGMT = { "X-Consul-Token": "mgmt" };

const NOW = 1_700_000_000_000;

async function withCa(over: Parameters<typeof fixture>[0] = {}) {
  const f = fixture({ now: () => NOW, ...over });
  addToken(f.store, "mgmt", "management");
  const ca = createCa({ clusterId: "c1", now: new Date(NOW) });
  await f.cluster.propose({ type: "pki.init", caCert: ca.certPem, caKey: ca.keyPem });
  return { f, ca };
}

const post = (body: unknown): RequestInit => ({
  method: "POST",
  headers: MGMT,
  body: JSON.stringify(body),
});

Deno.test("POST /v1/berth/tokens answers the token line once; the store keeps only its hash", async () => {
  const { f, ca } = await withCa();
  try {
    const r = await f.app.request(
      "/v1/berth/tokens",
      post({ ttl: "1h", uses: 2, description: "r4" }),
    );
    assert.equal(r.status, 200, await r.clone().text());
    const body = await r.json();
    const t = parseJoinToken(body.token);
    assert.equal(t.pin, caPin(ca.certPem));
    assert.equal(t.id, body.id);
    assert.deepEqual({ ...body, token: undefined }, {
      id: t.id,
      created: NOW,
      expires: NOW + 3_600_000,
      usesLeft: 2,
      revokedAt: null,
      description: "r4",
      token: undefined,
    });
    assert.equal(f.store.pki.tokenProblem(t.id, hashSecret(t.secret), NOW), undefined);
    // The list never shows the secret or its hash.
    const list = await (await f.app.request("/v1/berth/tokens", { headers: MGMT })).text();
    assert.ok(list.includes(t.id));
    assert.ok(!list.includes(t.secret) && !list.includes(hashSecret(t.secret)));
  } finally {
    f.close();
  }
});

Deno.test("POST /v1/berth/tokens without a ttl expires after 24h; ttl 0 never expires", async () => {
  const { f } = await withCa();
  try {
    const plain = await (await f.app.request("/v1/berth/tokens", post({}))).json();
    assert.equal(plain.expires, NOW + 24 * 3_600_000);
    const forever = await (await f.app.request("/v1/berth/tokens", post({ ttl: "0" }))).json();
    assert.equal(forever.expires, null);
  } finally {
    f.close();
  }
});

Deno.test("DELETE /v1/berth/tokens/:id revokes; unknown and malformed ids answer 404 and 400", async () => {
  const { f } = await withCa();
  try {
    const { id } = await (await f.app.request("/v1/berth/tokens", post({}))).json();
    const r = await f.app.request(`/v1/berth/tokens/${id}`, { method: "DELETE", headers: MGMT });
    assert.equal(r.status, 200);
    assert.equal(f.store.pki.token(id)!.revokedAt, NOW);
    const unknown = await f.app.request("/v1/berth/tokens/zzz999", {
      method: "DELETE",
      headers: MGMT,
    });
    assert.equal(unknown.status, 404);
    assert.equal(await unknown.text(), "no join token zzz999\n");
    const bad = await f.app.request("/v1/berth/tokens/BAD!", { method: "DELETE", headers: MGMT });
    assert.equal(bad.status, 400);
  } finally {
    f.close();
  }
});

Deno.test("POST /v1/berth/tokens: bad fields and a cluster without CA answer one-line 400s", async () => {
  const { f } = await withCa();
  try {
    const cases: [unknown, RegExp][] = [
      [{ ttl: "soon" }, /^join token: ttl "soon": /],
      [{ ttl: "10ms" }, /^join token: ttl must be from 1s/],
      [{ uses: 0 }, /^join token: uses must be an integer in 1\.\./],
      [{ uses: "3" }, /^join token: uses must be a number, got string/],
      [{ description: "a\u0000b" }, /description: expected text without control characters/],
    ];
    for (const [body, want] of cases) {
      const r = await f.app.request("/v1/berth/tokens", post(body));
      const text = await r.text();
      assert.equal(r.status, 400, text);
      assert.match(text, want);
      assert.equal(text.trim().split("\n").length, 1);
    }
  } finally {
    f.close();
  }
  const plain = fixture();
  addToken(plain.store, "mgmt", "management");
  try {
    const r = await plain.app.request("/v1/berth/tokens", post({}));
    assert.equal(r.status, 400);
    assert.match(await r.text(), /need the cluster CA; this cluster runs without TLS/);
  } finally {
    plain.close();
  }
});

Deno.test("/v1/berth/tokens needs acl rights (the management token), list included", async () => {
  const { f } = await withCa({ aclDefault: "allow" });
  try {
    const anonymous = await f.app.request("/v1/berth/tokens");
    assert.equal(anonymous.status, 403);
    assert.match(await anonymous.text(), /lacks permission 'acl:read'/);
    const r = await f.app.request("/v1/berth/tokens", { headers: MGMT });
    assert.equal(r.status, 200);
  } finally {
    f.close();
  }
});
