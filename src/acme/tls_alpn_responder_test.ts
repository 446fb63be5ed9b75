import assert from "node:assert/strict";
import { connect, createServer, type Socket } from "node:net";
import { X509Certificate } from "node:crypto";
import { type AnswerOptions, answerTlsAlpn01 } from "./tls_alpn_responder.ts";
import { tlsAlpnChallengeCertificate } from "../pki/acme_certs.ts";
import { concatBytes } from "../lib/bytes.ts";
import { generateKeyPairSync } from "node:crypto";
import { Buffer } from "node:buffer";

const NAME = "web.example.test";
const CERT = tlsAlpnChallengeCertificate(NAME, "token.thumbprint");
const lookup = (name: string) => name === NAME ? CERT : null;

/**
 * A listener that hands each connection to answerTlsAlpn01 (`readFirst`: after reading the first
 * chunk itself, as a proxy that looked at the ClientHello does); `run` talks to it and returns
 * what the client printed and what the responder resolved with.
 */
async function responder(o: AnswerOptions & { readFirst?: boolean } = {}) {
  const results: Promise<string>[] = [];
  const server = createServer((socket: Socket) => {
    if (!o.readFirst) return results.push(answerTlsAlpn01(socket, lookup, o));
    socket.once("data", (head: Uint8Array) => {
      socket.pause();
      results.push(answerTlsAlpn01(socket, lookup, { ...o, head }));
      socket.resume();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    async openssl(...args: string[]): Promise<{ out: string; result: string }> {
      const p = await new Deno.Command("openssl", {
        args: ["s_client", "-connect", `127.0.0.1:${port}`, "-showcerts", ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder();
      while (results.length === 0) await new Promise((r) => setTimeout(r, 10));
      return { out: text.decode(p.stdout) + text.decode(p.stderr), result: await results.shift()! };
    },
    async result(): Promise<string> {
      while (results.length === 0) await new Promise((r) => setTimeout(r, 10));
      return await results.shift()!;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function servedCert(out: string): X509Certificate {
  const pem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(out);
  assert.ok(pem !== null, out);
  return new X509Certificate(pem[0]);
}

Deno.test("answerTlsAlpn01() completes a TLS 1.3 handshake with openssl, X25519 and P-256", async () => {
  const r = await responder();
  try {
    for (const groups of ["X25519", "P-256"]) {
      const { out, result } = await r.openssl(
        "-servername",
        NAME,
        "-alpn",
        "acme-tls/1",
        "-groups",
        groups,
      );
      assert.equal(result, "answered", out);
      assert.match(out, /New, TLSv1\.3, Cipher is TLS_AES_128_GCM_SHA256/);
      assert.match(out, /ALPN protocol: acme-tls\/1/);
      assert.equal(
        servedCert(out).fingerprint256,
        new X509Certificate(CERT.certPem).fingerprint256,
      );
    }
  } finally {
    await r.close();
  }
});

Deno.test("answerTlsAlpn01() asks for an X25519 or P-256 share with a HelloRetryRequest", async () => {
  const r = await responder();
  try {
    for (const groups of ["P-384:X25519", "P-521:P-256"]) {
      const { out, result } = await r.openssl(
        "-servername",
        NAME,
        "-alpn",
        "acme-tls/1",
        "-groups",
        groups,
      );
      assert.equal(result, "answered", out);
      assert.match(out, /ALPN protocol: acme-tls\/1/);
      assert.equal(
        servedCert(out).fingerprint256,
        new X509Certificate(CERT.certPem).fingerprint256,
      );
    }
    const { out, result } = await r.openssl(
      "-servername",
      NAME,
      "-alpn",
      "acme-tls/1",
      "-groups",
      "P-384",
    );
    assert.match(out, /alert number 40|handshake failure/, out);
    assert.match(result, /neither X25519 nor P-256/);
  } finally {
    await r.close();
  }
});

Deno.test("answerTlsAlpn01() takes a ClientHello whose first bytes the caller already read", async () => {
  const r = await responder({ readFirst: true });
  try {
    const { out, result } = await r.openssl("-servername", NAME, "-alpn", "acme-tls/1");
    assert.equal(result, "answered", out);
    assert.match(out, /ALPN protocol: acme-tls\/1/);
  } finally {
    await r.close();
  }
});

Deno.test("answerTlsAlpn01() refuses with a TLS alert: unknown name, no acme-tls/1, TLS 1.2 only", async () => {
  const r = await responder();
  try {
    const cases: [string[], RegExp, RegExp][] = [
      [
        ["-servername", "other.example.test", "-alpn", "acme-tls/1"],
        /alert number 112|unrecognized name/,
        /no TLS-ALPN-01 challenge for other\.example\.test/,
      ],
      [
        ["-servername", NAME, "-alpn", "h2,http/1.1"],
        /alert number 120|no application protocol/,
        /does not offer acme-tls\/1/,
      ],
      [
        ["-servername", NAME, "-alpn", "acme-tls/1", "-tls1_2"],
        /alert number 70|protocol version/,
        /does not offer TLS 1\.3/,
      ],
      [
        ["-noservername", "-alpn", "acme-tls/1"],
        /alert number 112|unrecognized name/,
        /no server_name/,
      ],
    ];
    for (const [args, clientSaw, reason] of cases) {
      const { out, result } = await r.openssl(...args);
      assert.match(out, clientSaw, args.join(" "));
      assert.match(result, reason);
      assert.doesNotMatch(out, /BEGIN CERTIFICATE/);
    }
  } finally {
    await r.close();
  }
});

Deno.test("answerTlsAlpn01() resolves with a reason for garbage, early close and a silent client", async () => {
  const r = await responder({ timeoutMs: 200 });
  const send = (bytes: Uint8Array | null) =>
    new Promise<void>((resolve) => {
      const c = connect(r.port, "127.0.0.1", () => {
        if (bytes === null) return resolve(); // stays silent until the responder gives up
        c.end(bytes, () => resolve());
      });
      c.on("error", () => {});
      c.on("close", () => c.destroy());
    });
  try {
    await send(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    assert.equal(await r.result(), "not a TLS connection");
    await send(Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x10, 0x01));
    assert.equal(await r.result(), "connection closed by the client");
    await send(Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x00));
    assert.match(await r.result(), /malformed ClientHello: record of 0 bytes/);
    await send(null);
    assert.equal(await r.result(), "timed out");
  } finally {
    await r.close();
  }
});

/** A TLS 1.3 ClientHello for NAME offering acme-tls/1 with a real X25519 key share. */
function clientHello(): Uint8Array {
  const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
  const vec8 = (b: Uint8Array) => concatBytes([Uint8Array.of(b.length), b]);
  const vec16 = (b: Uint8Array) => concatBytes([u16(b.length), b]);
  const ext = (type: number, body: Uint8Array) => concatBytes([u16(type), vec16(body)]);
  const ascii = (t: string) => new TextEncoder().encode(t);
  const x = generateKeyPairSync("x25519").publicKey.export({ format: "jwk" }).x!;
  const exts = concatBytes([
    ext(0, vec16(concatBytes([Uint8Array.of(0), vec16(ascii(NAME))]))),
    ext(16, vec16(vec8(ascii("acme-tls/1")))),
    ext(43, vec8(u16(0x0304))),
    ext(10, vec16(u16(0x1d))),
    ext(13, vec16(u16(0x0403))),
    ext(51, vec16(concatBytes([u16(0x1d), vec16(new Uint8Array(Buffer.from(x, "base64url")))]))),
  ]);
  const body = concatBytes([
    u16(0x0303),
    new Uint8Array(32),
    vec8(new Uint8Array(0)),
    vec16(u16(0x1301)),
    vec8(Uint8Array.of(0)),
    vec16(exts),
  ]);
  const msg = concatBytes([Uint8Array.of(1, 0, body.length >> 8, body.length & 0xff), body]);
  return concatBytes([Uint8Array.of(0x16, 3, 1, msg.length >> 8, msg.length & 0xff), msg]);
}

Deno.test("answerTlsAlpn01() refuses a client flight that is not a valid Finished", async () => {
  const r = await responder();
  const exchange = (after: Uint8Array) =>
    new Promise<Uint8Array>((resolve) => {
      const chunks: Uint8Array[] = [];
      const c = connect(r.port, "127.0.0.1", () => c.write(clientHello()));
      c.once("data", (d: Uint8Array) => {
        chunks.push(d);
        c.write(after);
      });
      c.on("error", () => {});
      c.on("close", () => resolve(concatBytes(chunks)));
    });
  try {
    const cases: [string, Uint8Array, RegExp][] = [
      [
        "random ciphertext",
        concatBytes([Uint8Array.of(0x17, 3, 3, 0, 40), new Uint8Array(40).fill(7)]),
        /record failed to decrypt/,
      ],
      [
        "a plaintext handshake record",
        Uint8Array.of(0x16, 3, 3, 0, 4, 20, 0, 0, 0),
        /unexpected plaintext record/,
      ],
      ["an alert", Uint8Array.of(0x15, 3, 3, 0, 2, 2, 40), /client sent alert 40/],
      ["a record too short to hold a tag", Uint8Array.of(0x17, 3, 3, 0, 3, 1, 2, 3), /too short/],
      ["an oversized record", Uint8Array.of(0x17, 3, 3, 0xff, 0xff), /record too long/],
    ];
    for (const [name, after, reason] of cases) {
      const serverFlight = await exchange(after);
      assert.equal(serverFlight[0], 0x16, `${name}: the server answered with its ServerHello`);
      assert.match(await r.result(), reason, name);
    }
  } finally {
    await r.close();
  }
});
