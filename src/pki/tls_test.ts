/** The certificates pki issues carry a real mutual-TLS handshake over node:tls. */
import assert from "node:assert/strict";
import { connect, createServer, type TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import { createCa } from "./ca.ts";
import { certInfo, generateKeyPair, issueCertificate } from "./x509.ts";

const CLUSTER = "c-tls";

function member(ca: { certPem: string; keyPem: string }, node: string) {
  const keys = generateKeyPair();
  const { certPem } = issueCertificate({
    ca,
    publicKeySpkiDer: keys.publicKeySpkiDer,
    node,
    clusterId: CLUSTER,
    now: new Date(),
    ttlMs: 3600_000,
  });
  return { key: keys.privateKeyPem, cert: certPem };
}

interface Outcome {
  serverSawPeer?: string;
  clientSawPeer?: string;
  echoed?: string;
  serverError?: string;
  clientError?: string;
}

/** A TLS server requiring client certs from `ca`; one client with `client` creds says "ping". */
async function handshake(
  ca: { certPem: string; keyPem: string },
  server: { key: string; cert: string },
  client: { key: string; cert: string },
): Promise<Outcome> {
  const out: Outcome = {};
  const srv = createServer({
    ...server,
    ca: ca.certPem,
    requestCert: true,
    rejectUnauthorized: true,
  }, (s: TLSSocket) => {
    out.serverSawPeer = certInfo(new Uint8Array(s.getPeerCertificate().raw)).node;
    s.on("data", (d) => s.end(d));
    s.on("error", () => {});
  });
  const serverFailed = new Promise<void>((resolve) =>
    srv.on("tlsClientError", (e: Error) => {
      out.serverError = e.message;
      resolve();
    })
  );
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as AddressInfo;
  try {
    const clientDone = new Promise<void>((resolve) => {
      const c = connect({ host: "127.0.0.1", port, servername: "n1", ca: ca.certPem, ...client });
      c.on("secureConnect", () => {
        out.clientSawPeer = certInfo(new Uint8Array(c.getPeerCertificate().raw)).node;
        c.write("ping");
      });
      c.on("data", (d) => (out.echoed = (out.echoed ?? "") + d.toString()));
      c.on("error", (e) => {
        out.clientError = e.message;
        resolve();
      });
      c.on("close", () => resolve());
    });
    await Promise.race([clientDone, serverFailed]);
    await clientDone;
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
  return out;
}

Deno.test("issueCertificate() leaves of one CA complete a mutual-TLS handshake both ways", async () => {
  const ca = createCa({ clusterId: CLUSTER, now: new Date() });
  const out = await handshake(ca, member(ca, "n1"), member(ca, "n2"));
  assert.equal(out.serverError, undefined);
  assert.equal(out.clientError, undefined);
  assert.equal(out.serverSawPeer, "n2", "server read the client's certificate");
  assert.equal(out.clientSawPeer, "n1", "client read the server's certificate");
  assert.equal(out.echoed, "ping");
});

Deno.test("a client leaf from another CA fails the mutual-TLS handshake", async () => {
  const ca = createCa({ clusterId: CLUSTER, now: new Date() });
  const other = createCa({ clusterId: CLUSTER, now: new Date() });
  const out = await handshake(ca, member(ca, "n1"), member(other, "n2"));
  assert.equal(out.serverSawPeer, undefined, "the server never accepted the connection");
  assert.equal(out.echoed, undefined);
  assert.ok(out.serverError !== undefined, "the server reported the failed handshake");
});

Deno.test("a server leaf from another CA is refused by the client", async () => {
  const ca = createCa({ clusterId: CLUSTER, now: new Date() });
  const other = createCa({ clusterId: CLUSTER, now: new Date() });
  const out = await handshake(ca, member(other, "n1"), member(ca, "n2"));
  assert.equal(out.clientSawPeer, undefined);
  assert.equal(out.echoed, undefined);
  assert.match(out.clientError ?? "", /certificate/i);
});
