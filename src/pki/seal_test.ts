import assert from "node:assert/strict";
import { OPEN_FAILED, openWithPassphrase, sealWithPassphrase } from "./seal.ts";

const plain = new TextEncoder().encode("ca_key=-----BEGIN PRIVATE KEY-----…");
const HEADER = 10 + 16 + 12;

Deno.test("sealWithPassphrase() output opens with the same passphrase", () => {
  const sealed = sealWithPassphrase(plain, "correct horse");
  assert.equal(new TextDecoder().decode(sealed.subarray(0, 10)), "BERTHSEAL1");
  assert.equal(sealed.length, HEADER + plain.length + 16);
  assert.deepEqual(openWithPassphrase(sealed, "correct horse"), plain);
  assert.deepEqual(
    openWithPassphrase(sealWithPassphrase(new Uint8Array(0), "p"), "p"),
    new Uint8Array(0),
  );
});

Deno.test("sealWithPassphrase() uses a fresh salt and IV every call", () => {
  const a = sealWithPassphrase(plain, "p");
  const b = sealWithPassphrase(plain, "p");
  assert.notDeepEqual(a.subarray(10, HEADER), b.subarray(10, HEADER));
  assert.notDeepEqual(a.subarray(HEADER), b.subarray(HEADER));
});

Deno.test("sealWithPassphrase() refuses an empty passphrase", () => {
  assert.throws(() => sealWithPassphrase(plain, ""), /passphrase: must not be empty/);
});

Deno.test("openWithPassphrase() throws 'wrong passphrase or damaged data' on a wrong passphrase", () => {
  const sealed = sealWithPassphrase(plain, "right");
  assert.throws(() => openWithPassphrase(sealed, "wrong"), { message: OPEN_FAILED });
  assert.throws(() => openWithPassphrase(sealed, ""), { message: OPEN_FAILED });
});

Deno.test("openWithPassphrase() detects a flipped byte in salt, IV, ciphertext and tag", () => {
  const sealed = sealWithPassphrase(plain, "p");
  for (const at of [10, 10 + 16, HEADER, HEADER + 5, sealed.length - 1]) {
    const bad = sealed.slice();
    bad[at]! ^= 0x01;
    assert.throws(() => openWithPassphrase(bad, "p"), { message: OPEN_FAILED }, `byte ${at}`);
  }
});

Deno.test("openWithPassphrase() detects truncation at any length", () => {
  const sealed = sealWithPassphrase(plain, "p");
  for (const len of [0, 5, 10, HEADER, HEADER + 16, sealed.length - 1]) {
    assert.throws(
      () => openWithPassphrase(sealed.subarray(0, len), "p"),
      { message: OPEN_FAILED },
      `${len}`,
    );
  }
});

Deno.test("openWithPassphrase() names data that is not sealed or of another version", () => {
  assert.throws(
    () => openWithPassphrase(new TextEncoder().encode("SQLite format 3\0……"), "p"),
    /not berth sealed data/,
  );
  const v9 = sealWithPassphrase(plain, "p");
  v9[9] = "9".charCodeAt(0);
  assert.throws(() => openWithPassphrase(v9, "p"), /unsupported seal version "9"/);
});
