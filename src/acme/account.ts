/**
 * The ACME manager's keys and account facts: the SecretBox context of an account key, when the
 * CA no longer knows the account, new keys (node:crypto).
 *
 * @module
 */
import { createHash, generateKeyPairSync } from "node:crypto";
import type { ErrorFacts } from "./client_api.ts";

/** The SecretBox context of the account key of `directory`. */
export function accountKeyContext(directory: string): string {
  return `acme-account:${createHash("sha256").update(directory).digest("hex")}`;
}

/**
 * Whether the CA no longer knows the stored account (RFC 8555 §7.3.1: a key registered again
 * gets its account back, or a new one): `accountDoesNotExist` (a CA that lost its state), or
 * `unauthorized` for the account itself (deactivated). A challenge the CA refused ends the
 * order as an OrderFailed, whose facts carry no problem type.
 */
export function accountGone(f: ErrorFacts): boolean {
  const type = f.type.replace(/^urn:ietf:params:acme:error:/, "");
  return type === "accountDoesNotExist" || (type === "unauthorized" && /account/i.test(f.text));
}

export function newKeyPem(): string {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

export function newAccountKey(): JsonWebKey {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return privateKey.export({ format: "jwk" }) as JsonWebKey;
}
