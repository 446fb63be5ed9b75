/**
 * The HTTPS listener against a real CA: pebble (test/pebble.ts) validates TLS-ALPN-01 through
 * the listener's acme-tls/1 hook (src/acme/tls_alpn_hook.ts) on its TLS port, while ordinary
 * clients of the same listener keep getting their certificate.
 */
import assert from "node:assert/strict";
import type tls from "node:tls";
import {
  type AcmeAnswers,
  AcmeClient,
  csr,
  tlsAlpnChallengeCert,
  tlsAlpnHook,
} from "../acme/mod.ts";
import { generateAccountKey } from "../acme/jws.ts";
import { generateKeyPair } from "../pki/x509.ts";
import { startPebble } from "../../test/pebble.ts";
import { HttpsListener } from "./https_listener.ts";
import { sClient, servedCert, servedSubject } from "./_testing.ts";

const POLL = { intervalMs: 50, timeoutMs: 30_000 };

Deno.test("HttpsListener answers pebble's TLS-ALPN-01 validation and serves other clients meanwhile", async () => {
  await using pebble = await startPebble();
  const acme = new AcmeClient({
    directoryUrl: pebble.directoryUrl,
    caCerts: [pebble.apiCaPem],
    accountKey: generateAccountKey(),
    badNonceRetries: 10,
  });
  // What AcmeAnswers holds on every member while the challenge is pending.
  const challenges = new Map<string, { certPem: string; keyPem: string }>();
  const answers = {
    tlsAlpnPending: () => challenges.size > 0,
    tlsAlpn: (name: string) => challenges.get(name.toLowerCase()) ?? null,
  } as unknown as AcmeAnswers;
  const logged: string[] = [];
  const web = servedCert(["web.example.test"]);
  const listener = new HttpsListener({
    listen: { host: "127.0.0.1", port: pebble.tlsPort },
    certs: () => [web],
    acmeTlsAlpn: tlsAlpnHook(answers, (l) => logged.push(l)),
    admit: () => true,
    serveHttp1: (socket: tls.TLSSocket) => socket.end("hello\n"),
    log: (l) => logged.push(l),
  });
  await listener.start();
  try {
    await acme.account();
    const names = ["new.example.test"];
    const order = await acme.newOrder(names);
    const authz = await acme.getAuthorization(order.authorizations[0]!);
    const ch = authz.challenges.find((c) => c.type === "tls-alpn-01");
    assert.ok(ch?.token !== undefined);
    challenges.set(authz.name, tlsAlpnChallengeCert(authz.name, acme.keyAuthorization(ch.token)));
    // Pending: an ordinary client is read first and then served its certificate as ever.
    // -ign_eof: wait for the server's close (under load stdin's end came before "hello").
    const during = await sClient(pebble.tlsPort, ["-ign_eof", "-servername", "web.example.test"]);
    assert.equal(servedSubject(during), "web.example.test");
    assert.match(during, /hello/);
    await acme.respond(ch.url);
    const done = await acme.pollAuthorization(order.authorizations[0]!, POLL);
    assert.equal(done.status, "valid");
    const ready = await acme.pollOrder(order.url, POLL);
    assert.equal(ready.status, "ready");
    await acme.finalize(ready, csr(names, generateKeyPair()));
    assert.equal((await acme.pollOrder(order.url, POLL)).status, "valid");
    assert.deepEqual(logged, []);
  } finally {
    acme.close();
    await listener.close();
  }
});
