/**
 * The JOSE pieces ACME requests are made of (RFC 8555 §6.2): base64url, the account key as a
 * JWK, its RFC 7638 thumbprint (the second half of every key authorization), and flattened JWS
 * objects signed with ES256 (RFC 7518 §3.4: the signature is R‖S, 64 bytes, not DER).
 *
 * The account key is ECDSA P-256 only; pure functions, no I/O.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, createPrivateKey, generateKeyPairSync, KeyObject, sign } from "node:crypto";

/** base64url without padding (RFC 7515 §2) of bytes or of a string's UTF-8. */
export function base64url(data: Uint8Array | string): string {
  return Buffer.from(typeof data === "string" ? new TextEncoder().encode(data) : data)
    .toString("base64url");
}

/** A public JWK, members in the order RFC 7638 §3.2 hashes them. */
export type PublicJwk =
  | { crv: string; kty: "EC"; x: string; y: string }
  | { e: string; kty: "RSA"; n: string };

/** A fresh P-256 account key as a private JWK (plain JSON: easy to store and replicate). */
export function generateAccountKey(): JsonWebKey {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return privateKey.export({ format: "jwk" });
}

/**
 * The account's private key from a KeyObject, a private JWK or PKCS#8/SEC1 PEM. Throws one line
 * when it is not an ECDSA P-256 private key.
 */
export function loadAccountKey(key: KeyObject | JsonWebKey | string): KeyObject {
  let k: KeyObject;
  try {
    if (typeof key === "string") k = createPrivateKey(key);
    else if (key instanceof KeyObject) k = key;
    else k = createPrivateKey({ key: { ...key }, format: "jwk" });
  } catch (e) {
    throw new Error(`ACME account key: not a private key (${(e as Error).message})`);
  }
  if (k.type !== "private") throw new Error("ACME account key: a private key is needed");
  if (k.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new Error("ACME account key: must be ECDSA P-256 (ES256)");
  }
  return k;
}

/** The public half of a P-256 account key as a JWK. */
export function publicJwk(key: KeyObject): PublicJwk {
  const j = key.export({ format: "jwk" });
  if (j.kty !== "EC" || j.crv === undefined || j.x === undefined || j.y === undefined) {
    throw new Error("ACME account key: not an EC key");
  }
  return { crv: j.crv, kty: "EC", x: j.x, y: j.y };
}

/**
 * RFC 7638 thumbprint: base64url(SHA-256) of the JWK's required members in lexicographic order,
 * without white space.
 */
export function jwkThumbprint(jwk: PublicJwk): string {
  const canonical = jwk.kty === "EC"
    ? JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
    : JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  return base64url(new Uint8Array(createHash("sha256").update(canonical).digest()));
}

/** A flattened JWS (RFC 7515 §7.2.2), the body of every ACME POST. */
export interface FlattenedJws {
  protected: string;
  payload: string;
  signature: string;
}

/** What a request's protected header names: `kid` once the account exists, else the `jwk`. */
export interface JwsHeader {
  nonce: string;
  url: string;
  kid?: string;
  jwk?: PublicJwk;
}

/**
 * Signs `payload` (JSON-encoded; `undefined` is the empty payload of a POST-as-GET, RFC 8555
 * §6.3) with ES256 under the protected header {alg, kid|jwk, nonce, url}.
 */
export function signJws(key: KeyObject, header: JwsHeader, payload: unknown): FlattenedJws {
  if ((header.kid === undefined) === (header.jwk === undefined)) {
    throw new Error("JWS: exactly one of kid and jwk goes into the protected header");
  }
  const prot = base64url(JSON.stringify({ alg: "ES256", ...header }));
  const body = payload === undefined ? "" : base64url(JSON.stringify(payload));
  const signature = sign("sha256", new TextEncoder().encode(`${prot}.${body}`), {
    key,
    dsaEncoding: "ieee-p1363",
  });
  return { protected: prot, payload: body, signature: base64url(new Uint8Array(signature)) };
}
