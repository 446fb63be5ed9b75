/**
 * Passphrase encryption for secrets that leave the cluster (snapshots saved with
 * `--include-secrets`). Layout, version 1:
 *
 * | bytes | field                                                        |
 * |-------|--------------------------------------------------------------|
 * | 10    | magic `BERTHSEAL1` (also the GCM additional data)            |
 * | 16    | scrypt salt (N = 2^15, r = 8, p = 1 → 32-byte AES-256 key)   |
 * | 12    | AES-256-GCM IV                                               |
 * | n     | ciphertext                                                   |
 * | 16    | GCM tag                                                      |
 *
 * A new version gets a new magic; `openWithPassphrase` names the version it does not know.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";
import { concatBytes } from "../lib/bytes.ts";

const MAGIC = new TextEncoder().encode("BERTHSEAL1");
const MAGIC_PREFIX = "BERTHSEAL";
const SALT_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + SALT_BYTES + IV_BYTES;
/** scrypt cost; memory is 128·N·r = 32 MiB, so maxmem must be above that. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/** The one error for a wrong passphrase, a changed byte or missing bytes (GCM cannot tell). */
export const OPEN_FAILED = "wrong passphrase or damaged data";

function deriveKey(passphrase: string, salt: Uint8Array): Uint8Array {
  return new Uint8Array(scryptSync(passphrase.normalize("NFC"), salt, 32, SCRYPT));
}

/** Encrypts `plain` under a key derived from `passphrase` (fresh salt and IV every call). */
export function sealWithPassphrase(plain: Uint8Array, passphrase: string): Uint8Array {
  if (passphrase === "") throw new Error("passphrase: must not be empty");
  const salt = new Uint8Array(randomBytes(SALT_BYTES));
  const iv = new Uint8Array(randomBytes(IV_BYTES));
  const cipher = createCipheriv("aes-256-gcm", deriveKey(passphrase, salt), iv);
  cipher.setAAD(MAGIC);
  const body = concatBytes([cipher.update(plain), cipher.final()]);
  return concatBytes([MAGIC, salt, iv, body, cipher.getAuthTag()]);
}

/**
 * Decrypts what `sealWithPassphrase` produced. Throws "not berth sealed data" or "unsupported
 * seal version …" on a foreign header, else `OPEN_FAILED` when the passphrase or any byte is
 * wrong or the data is cut short.
 */
export function openWithPassphrase(sealed: Uint8Array, passphrase: string): Uint8Array {
  const head = new TextDecoder().decode(sealed.subarray(0, MAGIC.length));
  if (!head.startsWith(MAGIC_PREFIX) && !MAGIC_PREFIX.startsWith(head)) {
    throw new Error("not berth sealed data (no BERTHSEAL header)");
  }
  if (head.length === MAGIC.length && head !== "BERTHSEAL1") {
    throw new Error(`unsupported seal version ${JSON.stringify(head.slice(MAGIC_PREFIX.length))}`);
  }
  if (sealed.length < HEADER_BYTES + TAG_BYTES) throw new Error(OPEN_FAILED);
  const salt = sealed.subarray(MAGIC.length, MAGIC.length + SALT_BYTES);
  const iv = sealed.subarray(MAGIC.length + SALT_BYTES, HEADER_BYTES);
  const body = sealed.subarray(HEADER_BYTES, sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv("aes-256-gcm", deriveKey(passphrase, salt), iv);
    decipher.setAAD(MAGIC);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return concatBytes([decipher.update(body), decipher.final()]);
  } catch {
    throw new Error(OPEN_FAILED);
  }
}
