/**
 * A fake ACME CA for the manager's tests: accounts by key, orders, authorizations with HTTP-01
 * and TLS-ALPN-01 challenges, a validation the test triggers (asking a `validator` what a
 * member serves for the token, as the CA asks a member), finalize, issuance from a throwaway
 * CA. Knobs: errors thrown by the next calls of a method, finalize leaving the order
 * `processing`, certificate lifetime, calls that wait until released. The "CSR" it takes is the
 * key's SPKI DER (fakeCsr), so it issues for the key the manager made.
 *
 * @module
 */
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { createCa } from "../pki/ca.ts";
import { issueCertificate } from "../pki/x509.ts";
import type { AcmeApi, AuthorizationInfo, ChallengeInfo, OrderInfo } from "./client_api.ts";

/** The key's SPKI DER in place of a CSR (the fake CA reads it back). */
export function fakeCsr(_name: string, keyPem: string): Uint8Array {
  const spki = createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "der" });
  return new Uint8Array(spki);
}

/** An error as a client throws it for a CA problem. */
export class FakeAcmeError extends Error {
  constructor(
    readonly type: string,
    readonly detail: string,
    readonly status: number,
    readonly retryAfterMs?: number,
  ) {
    super(detail);
  }
}

interface Order {
  url: string;
  account: string;
  names: string[];
  authorizations: string[];
  finalized: boolean;
  status: "pending" | "processing" | "valid" | "invalid";
  certificate?: string;
  /** When the order expires (fixed when it is made, as a CA does). */
  expiresMs: number;
}

interface Authz {
  url: string;
  name: string;
  challenges: ChallengeInfo[];
}

type Method = keyof AcmeApi;

export class FakeCa {
  readonly #ca = createCa({ clusterId: "fake-acme", now: new Date(Date.now() - 60_000) });
  readonly accounts = new Map<string, string>();
  readonly orders = new Map<string, Order>();
  readonly authzs = new Map<string, Authz>();
  readonly certs = new Map<string, string>();
  /** Every certificate issued: name and serial. */
  readonly issued: { name: string; serial: string }[] = [];
  readonly calls: Method[] = [];
  /** Errors the next calls of a method throw, in order. */
  readonly failNext = new Map<Method, Error[]>();
  /** Calls of a method that wait until the promise given resolves. */
  readonly holdNext = new Map<Method, Promise<void>>();
  /** What a member serves for a challenge token (HTTP-01) or name (TLS-ALPN-01). */
  validator: (c: { name: string; type: string; token: string }) => string | null = () => null;
  /** Validate a challenge as soon as it is answered (else: validate()). */
  validateOnRespond = true;
  /** The status finalize leaves: `processing` holds the order until `issue()`. */
  finalizeStatus: "valid" | "processing" = "valid";
  certTtlMs = 90 * 86_400_000;
  /** Retry-After (ms) sent with every order and authorization, as a busy CA does. */
  retryAfterMs: number | null = null;
  now = () => Date.now();
  #n = 0;

  /** A client for an account key, as the manager's factory makes one. */
  client = (o: { directoryUrl: string; accountKey: JsonWebKey; accountUrl?: string }): AcmeApi => {
    const thumb = thumbprint(o.accountKey);
    const call = async (m: Method) => {
      this.calls.push(m);
      const hold = this.holdNext.get(m);
      if (hold !== undefined) {
        this.holdNext.delete(m);
        await hold;
      }
      const e = this.failNext.get(m)?.shift();
      if (e !== undefined) throw e;
    };
    const account = () => {
      const url = this.accounts.get(thumb);
      if (url === undefined) {
        throw new FakeAcmeError(
          "urn:ietf:params:acme:error:accountDoesNotExist",
          "no account",
          400,
        );
      }
      return url;
    };
    return {
      account: async () => {
        await call("account");
        let url = this.accounts.get(thumb);
        if (url === undefined) this.accounts.set(thumb, url = `https://ca.test/acct/${++this.#n}`);
        return { url };
      },
      newOrder: async (names) => {
        await call("newOrder");
        const acct = account();
        const url = `https://ca.test/order/${++this.#n}`;
        const authorizations = names.map((name) => {
          const a: Authz = {
            url: `https://ca.test/authz/${++this.#n}`,
            name,
            challenges: ["http-01", "tls-alpn-01"].map((type) => ({
              type,
              url: `https://ca.test/chall/${++this.#n}`,
              token: `tok${this.#n}_${"x".repeat(24)}`,
              status: "pending",
            })),
          };
          this.authzs.set(a.url, a);
          return a.url;
        });
        this.orders.set(url, {
          url,
          account: acct,
          names,
          authorizations,
          finalized: false,
          status: "pending",
          expiresMs: this.now() + 7 * 86_400_000,
        });
        return this.#order(url);
      },
      getOrder: async (url) => {
        await call("getOrder");
        return this.#order(url);
      },
      getAuthorization: async (url) => {
        await call("getAuthorization");
        return this.#authz(url);
      },
      keyAuthorization: (token) => `${token}.${thumb}`,
      respond: async (url) => {
        await call("respond");
        const ch = this.#challenge(url);
        if (ch.status === "pending") ch.status = "processing";
        if (this.validateOnRespond) this.validate(thumb);
        return {};
      },
      finalize: async (order, csrDer) => {
        await call("finalize");
        const o = this.orders.get(order.url);
        if (o === undefined) {
          throw new FakeAcmeError("urn:ietf:params:acme:error:malformed", "no such order", 404);
        }
        if (this.#order(o.url).status !== "ready") {
          throw new FakeAcmeError(
            "urn:ietf:params:acme:error:orderNotReady",
            "order is not ready",
            403,
          );
        }
        o.finalized = true;
        o.status = "processing";
        this.#spki.set(o.url, csrDer);
        if (this.finalizeStatus === "valid") this.issue(o.url);
        return this.#order(o.url);
      },
      downloadCertificate: async (url) => {
        await call("downloadCertificate");
        const pem = this.certs.get(url);
        if (pem === undefined) {
          throw new FakeAcmeError(
            "urn:ietf:params:acme:error:malformed",
            "no such certificate",
            404,
          );
        }
        return pem;
      },
    };
  };

  readonly #spki = new Map<string, Uint8Array>();

  /** Issues the certificate of a finalized order (`processing` → `valid`). */
  issue(orderUrl: string): void {
    const o = this.orders.get(orderUrl)!;
    const spki = this.#spki.get(orderUrl)!;
    const { certPem, serial } = issueCertificate({
      ca: this.#ca,
      publicKeySpkiDer: spki,
      node: o.names[0]!,
      clusterId: "fake-acme",
      now: new Date(this.now() - 60_000),
      ttlMs: this.certTtlMs,
      dnsNames: o.names,
      serverOnly: true,
    });
    const url = `https://ca.test/cert/${++this.#n}`;
    this.certs.set(url, `${certPem.trim()}\n${this.#ca.certPem.trim()}\n`);
    o.certificate = url;
    o.status = "valid";
    this.issued.push({ name: o.names[0]!, serial });
  }

  /** Validates every challenge being processed: valid when the member serves the right answer. */
  validate(thumb?: string): void {
    for (const a of this.authzs.values()) {
      for (const ch of a.challenges) {
        if (ch.status !== "processing") continue;
        const want = `${ch.token}.${thumb ?? this.#thumbOf(a)}`;
        const got = this.validator({ name: a.name, type: ch.type, token: ch.token ?? "" });
        if (got === want) ch.status = "valid";
        else {
          ch.status = "invalid";
          ch.error = {
            type: "urn:ietf:params:acme:error:unauthorized",
            detail: `the key authorization served for ${a.name} is ${JSON.stringify(got)}`,
          };
        }
      }
    }
  }

  #thumbOf(a: Authz): string {
    for (const o of this.orders.values()) {
      if (o.authorizations.includes(a.url)) {
        for (const [t, url] of this.accounts) if (url === o.account) return t;
      }
    }
    return "";
  }

  /** Orders (by status) of one name. */
  ordersOf(name: string): OrderInfo[] {
    return [...this.orders.values()].filter((o) => o.names.includes(name)).map((o) =>
      this.#order(o.url)
    );
  }

  #authz(url: string): AuthorizationInfo {
    const a = this.authzs.get(url);
    if (a === undefined) {
      throw new FakeAcmeError("urn:ietf:params:acme:error:malformed", "no such authorization", 404);
    }
    const statuses = a.challenges.map((c) => c.status);
    const status = statuses.includes("valid")
      ? "valid"
      : statuses.includes("invalid")
      ? "invalid"
      : "pending";
    return {
      status,
      name: a.name,
      challenges: a.challenges.map((c) => ({ ...c })),
      ...(this.retryAfterMs === null ? {} : { retryAfterMs: this.retryAfterMs }),
    };
  }

  #challenge(url: string): ChallengeInfo {
    for (const a of this.authzs.values()) {
      const ch = a.challenges.find((c) => c.url === url);
      if (ch !== undefined) return ch;
    }
    throw new FakeAcmeError("urn:ietf:params:acme:error:malformed", "no such challenge", 404);
  }

  #order(url: string): OrderInfo {
    const o = this.orders.get(url);
    if (o === undefined) {
      throw new FakeAcmeError("urn:ietf:params:acme:error:malformed", "no such order", 404);
    }
    let status: string = o.status;
    if (status === "pending") {
      const authz = o.authorizations.map((u) => this.#authz(u).status);
      if (authz.includes("invalid")) status = "invalid";
      else if (authz.every((s) => s === "valid")) status = "ready";
    }
    return {
      url,
      status,
      expires: new Date(o.expiresMs).toISOString(),
      authorizations: o.authorizations,
      finalize: `${url}/finalize`,
      ...(o.certificate === undefined ? {} : { certificate: o.certificate }),
      ...(this.retryAfterMs === null ? {} : { retryAfterMs: this.retryAfterMs }),
    };
  }
}

/** RFC 7638 thumbprint of an EC JWK (base64url SHA-256 of its required members). */
export function thumbprint(jwk: JsonWebKey): string {
  const json = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return createHash("sha256").update(json).digest("base64url");
}
