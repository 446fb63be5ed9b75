import assert from "node:assert/strict";
import { hashSecret, randomSecret, sameHash } from "./secrets.ts";

Deno.test("randomSecret() gives 32 url-safe characters by default, different every call", () => {
  const a = randomSecret();
  assert.match(a, /^[A-Za-z0-9_-]{32}$/);
  assert.notEqual(randomSecret(), a);
  assert.match(randomSecret(48), /^[A-Za-z0-9_-]{64}$/);
  assert.throws(() => randomSecret(8), /secret size 8 bytes: expected 16 to 1024/);
  assert.throws(() => randomSecret(1.5), /secret size/);
});

Deno.test("hashSecret() is the hex SHA-256 of the secret", () => {
  assert.equal(
    hashSecret("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(hashSecret("é"), hashSecret("\u00e9"));
  assert.notEqual(hashSecret("a"), hashSecret("b"));
});

Deno.test("sameHash() compares equal-length hashes and is false on a length mismatch", () => {
  const h = hashSecret("token");
  assert.equal(sameHash(h, hashSecret("token")), true);
  assert.equal(sameHash(h, hashSecret("tokem")), false);
  const lastDiffers = h.slice(0, -1) + (h.endsWith("0") ? "1" : "0");
  assert.equal(sameHash(h, lastDiffers), false);
  assert.equal(sameHash(h, h.slice(0, -1)), false, "shorter");
  assert.equal(sameHash(h, h + "0"), false, "longer");
  assert.equal(sameHash("", ""), true);
  assert.equal(sameHash("é", "ee"), false, "same string length, different byte length");
});
