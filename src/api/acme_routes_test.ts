import assert from "node:assert/strict";
import { addToken, fixture } from "./_testing.ts";
import { ClusterKey } from "../pki/cluster_key.ts";
import { sealEdgeCert } from "../pki/edge_cert.ts";
import { testEdgeCert } from "../pki/testing.ts";

const MGMT = { "X-Consul-Token": "mgmt" };
const NOW = 1_700_000_000_000;
const TOKEN = "tok_" + "a".repeat(28);

async function withAcme() {
  const f = fixture({ now: () => NOW });
  addToken(f.store, "mgmt", "management");
  await f.cluster.propose({ type: "acme.claim", term: 1, node: "n1", nowMs: NOW });
  await f.cluster.propose({
    type: "acme.account.create",
    term: 1,
    account: {
      directory: "https://ca.test/dir",
      email: "ops@example.com",
      keySealed: "bs1:00:c2VjcmV0LWtleQ==",
      createdMs: NOW,
    },
  });
  await f.cluster.propose({
    type: "acme.name.set",
    term: 1,
    expectIndex: 0,
    state: {
      name: "web.example.com",
      directory: "https://ca.test/dir",
      order: {
        url: "https://ca.test/order/1",
        status: "pending",
        expiresMs: null,
        keySealed: "bs1:00:Y2VydC1rZXk=",
      },
      challenges: [{
        type: "http-01",
        token: TOKEN,
        keyAuthorization: `${TOKEN}.${"t".repeat(43)}`,
      }],
      failures: 2,
      nextAttemptMs: NOW + 120_000,
      lastError: "web.example.com: rateLimited: slow down",
      lastErrorMs: NOW,
      renew: false,
    },
  });
  const t = testEdgeCert(["api.example.com"]);
  const manual = testEdgeCert(["manual.example.com"]);
  const box = ClusterKey.generate();
  for (
    const [name, c, source] of [["api.example.com", t, "acme"], [
      "manual",
      manual,
      "manual",
    ]] as const
  ) {
    await f.cluster.propose({
      type: "cert.put",
      cert: sealEdgeCert(box, {
        name,
        certPem: c.certPem,
        keyPem: c.keyPem,
        source,
        isDefault: false,
        nowMs: Date.now(),
      }),
    });
  }
  return f;
}

Deno.test("GET /v1/berth/acme shows names with status, failures, next attempt, last error; never a key", async () => {
  const f = await withAcme();
  try {
    const r = await f.app.request("/v1/berth/acme", { headers: MGMT });
    assert.equal(r.status, 200);
    const text = await r.text();
    assert.ok(!text.includes("c2VjcmV0LWtleQ") && !text.includes("Y2VydC1rZXk"), text);
    const body = JSON.parse(text);
    assert.deepEqual(body.accounts, [{
      directory: "https://ca.test/dir",
      url: null,
      email: "ops@example.com",
      createdMs: NOW,
    }]);
    assert.deepEqual(body.lease, { term: 1, node: "n1", sinceMs: NOW });
    assert.equal(body.certificates.length, 1);
    const c = body.certificates[0];
    assert.equal(c.name, "api.example.com");
    assert.equal(c.renewAt, c.notBefore + Math.floor((c.notAfter - c.notBefore) * 2 / 3));
    assert.deepEqual(Object.keys(c).sort(), [
      "fingerprint",
      "issuer",
      "name",
      "notAfter",
      "notBefore",
      "renewAt",
      "serial",
    ]);
    assert.deepEqual(body.names, [{
      name: "web.example.com",
      status: "pending",
      orderUrl: "https://ca.test/order/1",
      failures: 2,
      nextAttemptMs: NOW + 120_000,
      lastError: "web.example.com: rateLimited: slow down",
      lastErrorMs: NOW,
      renew: false,
    }]);
  } finally {
    f.close();
  }
});

Deno.test("POST /v1/berth/acme/renew/:name asks a renewal at the leader's time; unknown or bad names refused in one line", async () => {
  const f = await withAcme();
  try {
    const ok = await f.app.request("/v1/berth/acme/renew/Web.Example.com", {
      method: "POST",
      headers: MGMT,
    });
    assert.equal(ok.status, 200, await ok.clone().text());
    const row = f.store.acme.name("web.example.com")!;
    assert.deepEqual([row.renew, row.failures, row.nextAttemptMs], [true, 0, NOW]);
    const unknown = await f.app.request("/v1/berth/acme/renew/other.example.com", {
      method: "POST",
      headers: MGMT,
    });
    assert.equal(unknown.status, 404);
    assert.match(await unknown.text(), /other\.example\.com has no ACME certificate or order/);
    // A name with an ACME certificate and nothing in flight: renewed too.
    const withCert = await f.app.request("/v1/berth/acme/renew/api.example.com", {
      method: "POST",
      headers: MGMT,
    });
    assert.equal(withCert.status, 200);
    assert.equal(f.store.acme.name("api.example.com")?.renew, true);
    const bad = await f.app.request("/v1/berth/acme/renew/*.example.com", {
      method: "POST",
      headers: MGMT,
    });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /renew: name: expected a lower-case DNS name/);
  } finally {
    f.close();
  }
});
