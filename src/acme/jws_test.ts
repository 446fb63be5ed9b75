import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { generateKeyPairSync } from "node:crypto";
import {
  base64url,
  generateAccountKey,
  jwkThumbprint,
  loadAccountKey,
  publicJwk,
  signJws,
} from "./jws.ts";

Deno.test("base64url() encodes without padding and with the URL alphabet", () => {
  assert.equal(base64url(Uint8Array.of(0xfb, 0xff)), "-_8");
  assert.equal(base64url("{}"), "e30");
  assert.equal(base64url(new Uint8Array(0)), "");
});

Deno.test("jwkThumbprint() matches the RFC 7638 §3.1 example", () => {
  const n =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_" +
    "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2" +
    "QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZ" +
    "u0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
  assert.equal(
    jwkThumbprint({ e: "AQAB", kty: "RSA", n }),
    "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
  );
});

Deno.test("jwkThumbprint() hashes an EC key's crv, kty, x, y in that order", async () => {
  const jwk = publicJwk(loadAccountKey(generateAccountKey()));
  const canonical = `{"crv":"P-256","kty":"EC","x":"${jwk.kty === "EC" && jwk.x}","y":"${
    jwk.kty === "EC" && jwk.y
  }"}`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical));
  assert.equal(jwkThumbprint(jwk), base64url(new Uint8Array(digest)));
});

Deno.test("loadAccountKey() takes a JWK, PEM or KeyObject and refuses other keys", () => {
  const jwk = generateAccountKey();
  const k = loadAccountKey(jwk);
  assert.deepEqual(publicJwk(loadAccountKey(k)), publicJwk(k));
  const pem = k.export({ type: "pkcs8", format: "pem" }).toString();
  assert.deepEqual(publicJwk(loadAccountKey(pem)), publicJwk(k));
  assert.throws(() => loadAccountKey("not a key"), /ACME account key: not a private key/);
  const { privateKey: p384 } = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
  assert.throws(() => loadAccountKey(p384), /must be ECDSA P-256/);
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  assert.throws(() => loadAccountKey(publicKey), /a private key is needed/);
});

Deno.test("signJws() makes an ES256 JWS that WebCrypto verifies, with kid or jwk", async () => {
  const key = loadAccountKey(generateAccountKey());
  const jwk = publicJwk(key);
  const pub = await crypto.subtle.importKey(
    "jwk",
    { ...jwk },
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["verify"],
  );
  const decode = (s: string) => JSON.parse(Buffer.from(s, "base64url").toString());
  const withKid = signJws(key, { nonce: "n1", url: "https://ca/x", kid: "https://ca/acct/1" }, {
    a: 1,
  });
  assert.deepEqual(decode(withKid.protected), {
    alg: "ES256",
    nonce: "n1",
    url: "https://ca/x",
    kid: "https://ca/acct/1",
  });
  assert.deepEqual(decode(withKid.payload), { a: 1 });
  const sig = new Uint8Array(Buffer.from(withKid.signature, "base64url"));
  assert.equal(sig.length, 64, "R‖S, not DER");
  const signed = new TextEncoder().encode(`${withKid.protected}.${withKid.payload}`);
  const verify = (s: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>) =>
    crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pub, s, data);
  assert.equal(await verify(sig, signed), true);
  assert.equal(await verify(sig, new TextEncoder().encode(`${withKid.protected}.e30`)), false);

  const postAsGet = signJws(key, { nonce: "n2", url: "https://ca/y", jwk }, undefined);
  assert.equal(postAsGet.payload, "");
  assert.deepEqual(decode(postAsGet.protected).jwk, jwk);
  assert.throws(() => signJws(key, { nonce: "n", url: "u" }, {}), /exactly one of kid and jwk/);
});
