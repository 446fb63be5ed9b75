/**
 * No API read shows a secret: every GET route of the app, with the cluster CA, a join token, an
 * ACL token and an HTTPS certificate in the store, answers without the CA key, a token secret or
 * a token hash, or the certificate's key (in clear or sealed).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ClusterKey, createCa, sealEdgeCert } from "../pki/mod.ts";
import { testEdgeCert } from "../pki/testing.ts";
import { GLOBAL_MANAGEMENT_ID } from "../store/mod.ts";
import { fixture } from "./_testing.ts";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

Deno.test("every GET route answers without the CA key, token secrets, token hashes or certificate keys", async () => {
  const f = fixture({ aclDefault: "allow" });
  try {
    const ca = createCa({ clusterId: "c1", now: new Date() });
    const joinSecret = "join-secret-0123456789abcdefghij";
    const aclSecret = "acl-secret-0123456789abcdefghijk";
    const propose = async (c: Parameters<typeof f.cluster.propose>[0]) => {
      const r = await f.cluster.propose(c);
      assert.ok(r.result.ok, `${c.type}: ${r.result.error}`);
    };
    await propose({ type: "pki.init", caCert: ca.certPem, caKey: ca.keyPem });
    await propose({
      type: "token.create",
      id: "abc123",
      hash: sha256(joinSecret),
      ttlMs: null,
      uses: null,
      description: "join",
      nowMs: Date.now(),
    });
    await propose({
      type: "acl.token.set",
      token: {
        accessorId: "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
        secretHash: sha256(aclSecret),
        description: "acl",
        // A management token, sent with every request: the lists below need acl:read.
        policies: [{ id: GLOBAL_MANAGEMENT_ID }],
        local: false,
        createTimeMs: 1,
      },
    });
    const edge = testEdgeCert(["web.example.com"]);
    const cert = sealEdgeCert(ClusterKey.generate(), {
      name: "web",
      certPem: edge.certPem,
      keyPem: edge.keyPem,
      source: "manual",
      isDefault: true,
      nowMs: Date.now(),
    });
    await propose({ type: "cert.put", cert });
    const edgeKey = edge.keyPem.split("\n").filter((l) => !l.startsWith("-----")).join("");
    const keyBody = ca.keyPem.split("\n").filter((l) => !l.startsWith("-----")).join("");
    const secrets = [
      "PRIVATE KEY",
      keyBody.slice(0, 24),
      keyBody.slice(-24),
      joinSecret,
      sha256(joinSecret),
      aclSecret,
      sha256(aclSecret),
      edgeKey.slice(0, 24),
      edgeKey.slice(-24),
      cert.keySealed.slice(0, 40),
      cert.keySealed.slice(-24),
    ];
    const paths = new Set<string>();
    for (const r of f.app.routes) {
      if (r.method !== "GET") continue;
      paths.add(r.path.replace(/:[A-Za-z_]+/g, "x").replace(/\*$/, ""));
    }
    for (
      const extra of [
        "/v1/kv/?recurse",
        "/v1/acl/tokens",
        "/v1/berth/tokens",
        "/v1/snapshot",
        "/v1/berth/certs",
      ]
    ) {
      paths.add(extra);
    }
    assert.ok(paths.size > 20, `only ${paths.size} GET routes`);
    const shown = new Map<string, string>();
    for (const path of paths) {
      const r = await f.app.request(path, { headers: { "X-Consul-Token": aclSecret } });
      const text = new TextDecoder("latin1").decode(await r.arrayBuffer());
      shown.set(path, text);
      for (const s of secrets) {
        assert.ok(!text.includes(s), `GET ${path} (${r.status}) shows ${s.slice(0, 12)}…`);
      }
    }
    // The lists did answer, with the tokens in them (by id, never by secret).
    assert.match(shown.get("/v1/berth/tokens")!, /abc123/);
    assert.match(shown.get("/v1/berth/certs")!, /web\.example\.com/);
    assert.match(shown.get("/v1/berth/certs/x")!, /no certificate x/);
    assert.match(shown.get("/v1/acl/tokens")!, /aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa/);
  } finally {
    f.close();
  }
});

Deno.test("no API read shows a basic-auth hash or a request header value of a route setting, nor lets ?filter probe them", async () => {
  const hash = "$2y$05$RSHBjHt/M4PB2K2baOOtpONVspbT9e/0THJF5lxdxXnD0/9krfPGu";
  const f = fixture({ aclDefault: "allow" });
  try {
    const r = await f.app.request("/v1/agent/service/register", {
      method: "PUT",
      body: JSON.stringify({
        ID: "web-1",
        Name: "web",
        Port: 80,
        Meta: {
          "berth.http.host": "web.test",
          "berth.http.auth.basic": `alice:${hash}`,
          "berth.http.request-header.X-Api-Key": "tok_live_4242",
        },
      }),
    });
    assert.equal(r.status, 200, await r.text());
    // The store keeps the values: the proxy needs them.
    assert.equal(f.store.instance("web-1")?.meta["berth.http.auth.basic"], `alice:${hash}`);
    const secrets = [hash.slice(7, 30), "tok_live_4242"];
    const paths = new Set<string>();
    for (const r of f.app.routes) {
      if (r.method !== "GET") continue;
      paths.add(r.path.replace(/:[A-Za-z_]+/g, "web").replace(/\*$/, ""));
    }
    for (
      const extra of [
        "/v1/catalog/service/web",
        "/v1/health/service/web",
        "/v1/agent/service/web-1",
        "/v1/agent/services",
        "/v1/berth/instances?service=web",
        "/v1/berth/instances",
        "/v1/berth/explain?service=web",
        "/v1/berth/explain?url=web.test/",
        "/v1/catalog/node/n1",
      ]
    ) {
      paths.add(extra);
    }
    let shownMeta = 0;
    for (const path of paths) {
      const r = await f.app.request(path);
      const text = await r.text();
      if (text.includes("berth.http.auth.basic")) shownMeta++;
      for (const s of secrets) {
        assert.ok(!text.includes(s), `GET ${path} (${r.status}) shows ${s.slice(0, 12)}…`);
      }
    }
    assert.ok(shownMeta >= 5, `the key itself is listed (${shownMeta} answers)`);
    const probe = encodeURIComponent('ServiceMeta["berth.http.auth.basic"] contains "$2y$05$R"');
    const probed = await (await f.app.request(`/v1/catalog/service/web?filter=${probe}`)).json();
    assert.deepEqual(probed, []);
    const meta = (await (await f.app.request("/v1/catalog/service/web")).json())[0].ServiceMeta;
    assert.equal(meta["berth.http.auth.basic"], "(hidden)");
    assert.equal(meta["berth.http.host"], "web.test");
  } finally {
    f.close();
  }
});

Deno.test("a bad secret route setting in Meta answers 400 without echoing the value", async () => {
  const f = fixture({ aclDefault: "allow" });
  try {
    const r = await f.app.request("/v1/agent/service/register", {
      method: "PUT",
      body: JSON.stringify({
        Name: "web",
        Port: 80,
        Meta: { "berth.http.auth.basic": "alice:Sup3rSecret!" },
      }),
    });
    assert.equal(r.status, 400);
    const text = await r.text();
    assert.match(text, /Meta\.berth\.http\.auth\.basic: expected .* \(value hidden\)/);
    assert.ok(!text.includes("Sup3rSecret"), text);
    // Meta read back and registered again: "(hidden)" is refused, never taken as the value.
    const back = await f.app.request("/v1/agent/service/register", {
      method: "PUT",
      body: JSON.stringify({
        Name: "web",
        Port: 80,
        Meta: { "berth.http.request-header.X-Api-Key": "(hidden)" },
      }),
    });
    assert.equal(back.status, 400);
    assert.match(await back.text(), /the value itself \(reads show \(hidden\) in its place\)/);
  } finally {
    f.close();
  }
});
