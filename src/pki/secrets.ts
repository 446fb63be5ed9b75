/**
 * Secrets for tokens: random url-safe strings, their stored form (a SHA-256 hash, so a stolen
 * replica does not hand out working tokens), and a constant-time comparison of two hashes.
 *
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";

/** Default secret size: 24 random bytes, 32 url-safe characters. */
export const SECRET_BYTES = 24;

/** `bytes` random bytes as unpadded base64url (`[A-Za-z0-9_-]`). */
export function randomSecret(bytes: number = SECRET_BYTES): string {
  if (!Number.isSafeInteger(bytes) || bytes < 16 || bytes > 1024) {
    throw new Error(`secret size ${bytes} bytes: expected 16 to 1024`);
  }
  return randomBytes(bytes).toString("base64url");
}

/** The stored form of a secret: hex SHA-256 of its UTF-8 bytes. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/**
 * Whether two hashes are equal, in time independent of where they differ (timingSafeEqual);
 * false at once when their lengths differ (the length of a hash is no secret).
 */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}
