/**
 * AcmeClient against a real CA: pebble on free loopback ports (test/pebble.ts), challenges
 * answered by small responders on pebble's validation ports.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { AcmeClient, type AcmeClientOptions, csr, tlsAlpnChallengeCert } from "./client.ts";
import { AcmeError, PROBLEM } from "./error.ts";
import { generateAccountKey } from "./jws.ts";
import { answerTlsAlpn01 } from "./tls_alpn_responder.ts";
import { createServer } from "node:net";
import type { Order } from "./wire.ts";
import { generateKeyPair } from "../pki/x509.ts";
import { openssl, withPemFiles } from "../pki/_testing.ts";
import { type Pebble, serveHttp01, serveTlsAlpn01, startPebble } from "../../test/pebble.ts";

const POLL = { intervalMs: 50, timeoutMs: 30_000 };

function client(pebble: Pebble, o: Partial<AcmeClientOptions> = {}): AcmeClient {
  return new AcmeClient({
    directoryUrl: pebble.directoryUrl,
    caCerts: [pebble.apiCaPem],
    accountKey: generateAccountKey(),
    badNonceRetries: 10,
    ...o,
  });
}

/** Answers every authorization of `order` with challenges of `type` (responders already up). */
async function authorize(acme: AcmeClient, order: Order, type: string): Promise<void> {
  for (const url of order.authorizations) {
    const authz = await acme.getAuthorization(url);
    if (authz.status === "valid") continue; // pebble reuses some authorizations
    const ch = authz.challenges.find((c) => c.type === type);
    assert.ok(ch !== undefined, `no ${type} challenge in ${JSON.stringify(authz)}`);
    await acme.respond(ch.url);
    const done = await acme.pollAuthorization(url, POLL);
    assert.equal(done.status, "valid");
  }
}

/** finalize → valid → download; returns the PEM chain and the certificate key. */
async function issue(acme: AcmeClient, order: Order, names: string[]) {
  const ready = await acme.pollOrder(order.url, POLL);
  assert.equal(ready.status, "ready");
  const keys = generateKeyPair();
  await acme.finalize(ready, csr(names, keys));
  const valid = await acme.pollOrder(order.url, POLL);
  assert.equal(valid.status, "valid");
  assert.ok(valid.certificate !== undefined);
  return { chain: await acme.downloadCertificate(valid.certificate), keys };
}

/** openssl verifies the chain up to pebble's root and the leaf names and key are ours. */
async function assertIssued(
  pebble: Pebble,
  chain: string,
  names: string[],
  spki: Uint8Array,
): Promise<void> {
  const blocks = chain.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g)!;
  assert.ok(blocks.length >= 2, "leaf and at least one intermediate");
  const root = await pebble.root();
  withPemFiles(
    { "root.pem": root, "leaf.pem": blocks[0]!, "rest.pem": blocks.slice(1).join("") },
    (dir) => {
      const v = openssl(
        ["verify", "-CAfile", "root.pem", "-untrusted", "rest.pem", "leaf.pem"],
        dir,
      );
      assert.ok(v.ok, v.out);
    },
  );
  const leaf = new X509Certificate(blocks[0]!);
  for (const n of names) assert.ok(leaf.subjectAltName?.includes(`DNS:${n}`), leaf.subjectAltName);
  assert.deepEqual(new Uint8Array(leaf.publicKey.export({ type: "spki", format: "der" })), spki);
}

Deno.test("AcmeClient gets a certificate from pebble with HTTP-01", async () => {
  await using pebble = await startPebble();
  const acme = client(pebble);
  try {
    const account = await acme.account("ops@example.com");
    assert.equal(account.created, true);
    assert.equal(account.status, "valid");
    const names = ["web.example.test", "api.example.test"];
    const order = await acme.newOrder(names);
    assert.equal(order.status, "pending");
    assert.deepEqual([...order.names].sort(), [...names].sort());
    await using _http = await serveHttp01(pebble.httpPort, (token) => acme.keyAuthorization(token));
    await authorize(acme, order, "http-01");
    const { chain, keys } = await issue(acme, order, names);
    await assertIssued(pebble, chain, names, keys.publicKeySpkiDer);
  } finally {
    acme.close();
  }
});

Deno.test("AcmeClient gets a certificate from pebble with TLS-ALPN-01", async () => {
  await using pebble = await startPebble();
  const acme = client(pebble);
  try {
    await acme.account();
    const names = ["tls.example.test"];
    const order = await acme.newOrder(names);
    const authz = await acme.getAuthorization(order.authorizations[0]!);
    const ch = authz.challenges.find((c) => c.type === "tls-alpn-01");
    assert.ok(ch?.token !== undefined);
    const cert = tlsAlpnChallengeCert(authz.name, acme.keyAuthorization(ch.token));
    await using _tls = await serveTlsAlpn01(pebble.tlsPort, cert);
    await authorize(acme, order, "tls-alpn-01");
    const { chain, keys } = await issue(acme, order, names);
    await assertIssued(pebble, chain, names, keys.publicKeySpkiDer);
  } finally {
    acme.close();
  }
});

Deno.test("answerTlsAlpn01() answers pebble's TLS-ALPN-01 validation with berth's own TLS 1.3 handshake", async () => {
  await using pebble = await startPebble();
  const acme = client(pebble);
  const results: string[] = [];
  const certs = new Map<string, { certPem: string; keyPem: string }>();
  const server = createServer((socket) => {
    answerTlsAlpn01(socket, (name) => certs.get(name) ?? null).then((r) => results.push(r));
  });
  await new Promise<void>((resolve) => server.listen(pebble.tlsPort, "127.0.0.1", resolve));
  try {
    await acme.account();
    const names = ["own-tls.example.test", "second.example.test"];
    const order = await acme.newOrder(names);
    for (const url of order.authorizations) {
      const authz = await acme.getAuthorization(url);
      const ch = authz.challenges.find((c) => c.type === "tls-alpn-01");
      if (ch?.token !== undefined) {
        certs.set(authz.name, tlsAlpnChallengeCert(authz.name, acme.keyAuthorization(ch.token)));
      }
    }
    await authorize(acme, order, "tls-alpn-01");
    const { chain, keys } = await issue(acme, order, names);
    await assertIssued(pebble, chain, names, keys.publicKeySpkiDer);
    assert.ok(results.includes("answered"), JSON.stringify(results));
  } finally {
    acme.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

Deno.test("AcmeClient.account() answers the same account for the same key; findAccount() only looks", async (t) => {
  await using pebble = await startPebble();
  const key = generateAccountKey();
  const first = client(pebble, { accountKey: key });
  const again = client(pebble, { accountKey: key });
  const stranger = client(pebble);
  try {
    await t.step("a new key has no account", async () => {
      assert.equal(await stranger.findAccount(), null);
    });
    const created = await first.account("ops@example.com");
    await t.step("newAccount with the same key finds the same account", async () => {
      assert.equal(created.created, true);
      const found = await again.account("someone-else@example.com");
      assert.equal(found.created, false);
      assert.equal(found.url, created.url);
      assert.equal((await again.findAccount())?.url, created.url);
    });
    await t.step("an order placed by one client is read by another from its URL", async () => {
      const order = await first.newOrder(["resume.example.test"]);
      const resumed = client(pebble, { accountKey: key, accountUrl: created.url });
      try {
        const read = await resumed.getOrder(order.url);
        assert.equal(read.url, order.url);
        assert.deepEqual(read.authorizations, order.authorizations);
        assert.equal(read.finalize, order.finalize);
      } finally {
        resumed.close();
      }
    });
    await t.step("another account cannot read that order", async () => {
      await stranger.account();
      const order = await first.newOrder(["private.example.test"]);
      await assert.rejects(stranger.getOrder(order.url), (e) => {
        assert.ok(e instanceof AcmeError);
        assert.equal(e.type, PROBLEM.unauthorized);
        assert.ok(e.status >= 400 && e.status < 500);
        return true;
      });
    });
  } finally {
    first.close();
    again.close();
    stranger.close();
  }
});

Deno.test("AcmeClient retries requests pebble refuses with badNonce, and gives up after badNonceRetries", async () => {
  await using pebble = await startPebble({ env: { PEBBLE_WFE_NONCEREJECT: "30" } });
  let badNonces = 0;
  const http = Deno.createHttpClient({ caCerts: [pebble.apiCaPem] });
  const counting: typeof fetch = async (input, init) => {
    const r = await fetch(input, { ...init, client: http } as RequestInit);
    if (r.status === 400) {
      const body = await r.clone().text();
      if (body.includes(PROBLEM.badNonce)) badNonces++;
    }
    return r;
  };
  const acme = client(pebble, { fetch: counting, badNonceRetries: 20 });
  try {
    await acme.account();
    const order = await acme.newOrder(["nonce.example.test"]);
    for (let i = 0; i < 40; i++) assert.equal((await acme.getOrder(order.url)).url, order.url);
    // 30 % of ~42 requests were refused at least once (all refused-free: p ≈ 0.7^42 < 1e-6).
    assert.ok(badNonces > 0, "pebble refused no nonce: the retry path was not exercised");
  } finally {
    acme.close();
  }
  await using always = await startPebble({ env: { PEBBLE_WFE_NONCEREJECT: "100" } });
  const stubborn = client(always, { badNonceRetries: 2 });
  try {
    await assert.rejects(stubborn.account(), (e) => {
      assert.ok(e instanceof AcmeError);
      assert.equal(e.type, PROBLEM.badNonce);
      assert.equal(e.status, 400);
      return true;
    });
  } finally {
    stubborn.close();
    http.close();
  }
});

Deno.test("AcmeClient.pollAuthorization() throws the CA's reason when validation fails", async () => {
  await using pebble = await startPebble();
  const acme = client(pebble);
  try {
    await acme.account();
    const order = await acme.newOrder(["wrong.example.test"]);
    // The responder answers, but with a key authorization for another account.
    await using _http = await serveHttp01(
      pebble.httpPort,
      (token) => `${token}.not-the-thumbprint`,
    );
    const url = order.authorizations[0]!;
    const authz = await acme.getAuthorization(url);
    const ch = authz.challenges.find((c) => c.type === "http-01")!;
    await acme.respond(ch.url);
    await assert.rejects(acme.pollAuthorization(url, POLL), (e) => {
      assert.ok(e instanceof AcmeError, String(e));
      assert.equal(e.type, PROBLEM.unauthorized);
      assert.match(e.detail, /^wrong\.example\.test: /);
      assert.match(e.detail, /key authorization/i);
      assert.match(e.message, /^ACME authorization: wrong\.example\.test: /);
      return true;
    });
    await assert.rejects(acme.pollOrder(order.url, POLL), (e) => {
      assert.ok(e instanceof AcmeError, String(e));
      assert.match(e.message, /^ACME order: /);
      return true;
    });
  } finally {
    acme.close();
  }
});
