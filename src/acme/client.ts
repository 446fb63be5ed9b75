/**
 * # AcmeClient — the ACME protocol (RFC 8555), one call per request
 *
 * berth's own ACME client, written on node:crypto and fetch. Why not a library: the candidate,
 * `acme-client` 5.4.0 (npm, publishlab/node-acme-client), does run under Deno (it reached
 * challenge validation against pebble here), but it does not fit an edge that orders once for a
 * cluster:
 * - its errors are plain `Error(detail)`: the problem `type`, HTTP status and Retry-After that
 *   the order manager backs off on (rateLimited, badNonce, connection) are dropped;
 * - its HTTP goes through one module-wide axios instance (trust and retries are global
 *   settings), so `--acme-ca-cert` cannot be a per-client `Deno.createHttpClient`, and
 *   rate-limit waits happen inside a call instead of being handed back to the caller;
 * - it pulls in 111 npm packages (axios, node-forge, @peculiar/x509, …) for what is a few
 *   hundred lines here, on the path that holds the cluster's certificate keys.
 *
 * What a caller controls: every method is one request (plus badNonce retries), so the order
 * manager can resume an order from its URL on another member after a leader change
 * (`getOrder`), share one account key among members (`account()` with the same key always
 * answers the same account URL; `findAccount()` only looks it up), and schedule polling itself
 * from `retryAfterMs` (or call `pollAuthorization`/`pollOrder`). The only state kept is the
 * directory and unused nonces.
 *
 * Every answer is bounded (ANSWER_BYTES_MAX, list sizes in wire.ts) and checked field by field;
 * whatever goes wrong is thrown as an `AcmeError` (error.ts).
 *
 * ```ts
 * const acme = new AcmeClient({ directoryUrl, accountKey: generateAccountKey() });
 * await acme.account("ops@example.com");
 * const order = await acme.newOrder(["web.example.com"]);
 * // answer each authorization's http-01 or tls-alpn-01 challenge, then acme.respond(url)
 * const ready = await acme.pollOrder(order.url);
 * const done = await acme.pollOrder((await acme.finalize(ready, csr(names, keys))).url);
 * const pem = await acme.downloadCertificate(done.certificate!);
 * ```
 *
 * @module
 */
import type { KeyObject } from "node:crypto";
import { X509Certificate } from "node:crypto";
import { AcmeError, PROBLEM } from "./error.ts";
import {
  base64url,
  jwkThumbprint,
  loadAccountKey,
  type PublicJwk,
  publicJwk,
  signJws,
} from "./jws.ts";
import {
  type Account,
  type Authorization,
  type Challenge,
  type Directory,
  type Order,
  parseAccount,
  parseAuthorization,
  parseChallenge,
  parseDirectory,
  parseOrder,
  retryAfterMs,
} from "./wire.ts";
import { dnsNameProblem } from "../pki/mod.ts";
import { AcmeHttp, type Answer } from "./_http.ts";

export { ANSWER_BYTES_MAX } from "./_http.ts";
export {
  createCsr as csr,
  tlsAlpnChallengeCertificate as tlsAlpnChallengeCert,
} from "../pki/mod.ts";

/** Most certificates in a downloaded chain. */
export const CHAIN_CERTS_MAX = 10;

export interface AcmeClientOptions {
  /** The CA's directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory. */
  directoryUrl: string;
  /** The account's ECDSA P-256 private key: a KeyObject, a private JWK or PEM. */
  accountKey: KeyObject | JsonWebKey | string;
  /** The account's URL when already known (saves the `account()` round trip). */
  accountUrl?: string;
  /** Replaces fetch (tests); `caCerts` is then ignored. */
  fetch?: typeof fetch;
  /** PEM certificates to trust for the CA's HTTPS API (`--acme-ca-cert`), besides the system's. */
  caCerts?: string[];
  /** Per request. Default 30 s. */
  timeoutMs?: number;
  /** How often a request rejected with badNonce is sent again with a fresh nonce. Default 5. */
  badNonceRetries?: number;
}

/** How `pollAuthorization` and `pollOrder` wait. */
export interface PollOptions {
  /** Give up (AcmeError of type timeout) after this long. Default 60 s. */
  timeoutMs?: number;
  /** Pause between polls when the CA sends no Retry-After. Default 1 s. */
  intervalMs?: number;
  signal?: AbortSignal;
}

export class AcmeClient {
  readonly directoryUrl: string;
  readonly #base: URL;
  readonly #key: KeyObject;
  readonly #jwk: PublicJwk;
  readonly #thumbprint: string;
  readonly #http: AcmeHttp;
  readonly #badNonceRetries: number;
  #accountUrl: string | undefined;
  #directory: Promise<Directory> | undefined;

  /** Throws one line on a bad directory URL or account key. */
  constructor(o: AcmeClientOptions) {
    try {
      this.#base = new URL(o.directoryUrl);
    } catch {
      throw new Error(`ACME directory ${JSON.stringify(o.directoryUrl)}: not a URL`);
    }
    if (this.#base.protocol !== "https:" && this.#base.protocol !== "http:") {
      throw new Error(`ACME directory ${o.directoryUrl}: expected an https:// URL`);
    }
    this.directoryUrl = o.directoryUrl;
    this.#key = loadAccountKey(o.accountKey);
    this.#jwk = publicJwk(this.#key);
    this.#thumbprint = jwkThumbprint(this.#jwk);
    this.#accountUrl = o.accountUrl;
    const client = o.fetch === undefined && o.caCerts !== undefined && o.caCerts.length > 0
      ? Deno.createHttpClient({ caCerts: o.caCerts })
      : undefined;
    this.#http = new AcmeHttp(o.fetch ?? fetch, client, o.timeoutMs ?? 30_000);
    this.#badNonceRetries = o.badNonceRetries ?? 5;
  }

  /** Frees the connection pool made for `caCerts`. */
  close(): void {
    this.#http.client?.close();
  }

  /** The account URL (`kid`), once known. */
  get accountUrl(): string | undefined {
    return this.#accountUrl;
  }

  /** The account key's RFC 7638 thumbprint. */
  get thumbprint(): string {
    return this.#thumbprint;
  }

  /** The CA's directory, fetched once (again after a failure). */
  directory(): Promise<Directory> {
    this.#directory ??= (async () => {
      const a = await this.#http.exchange("GET", this.directoryUrl, {}, "directory");
      if (a.status !== 200) throw this.#http.problem(a, "directory");
      const d = parseDirectory(this.#http.json(a, "directory"), this.#base, a.status);
      if (d.externalAccountRequired) {
        throw new AcmeError({
          type: PROBLEM.badResponse,
          status: a.status,
          op: "directory",
          detail: "the CA requires external account binding, which berth does not support",
        });
      }
      return d;
    })();
    this.#directory.catch(() => this.#directory = undefined);
    return this.#directory;
  }

  /**
   * Creates the account for this key, agreeing to the CA's terms, or finds the one it already
   * has (RFC 8555 §7.3.1: the same key always answers the same URL, so members sharing the key
   * share the account). `email` becomes a mailto: contact on creation.
   */
  async account(email?: string): Promise<Account> {
    if (email !== undefined && !/^[^\s@,<>:]{1,64}@[a-z0-9.-]{1,253}$/i.test(email)) {
      throw new Error(`ACME contact ${JSON.stringify(email)}: expected an e-mail address`);
    }
    const payload = {
      termsOfServiceAgreed: true,
      ...(email === undefined ? {} : { contact: [`mailto:${email}`] }),
    };
    return await this.#newAccount(payload, "newAccount");
  }

  /** The account this key has, or null when it has none (`onlyReturnExisting`). */
  async findAccount(): Promise<Account | null> {
    try {
      return await this.#newAccount({ onlyReturnExisting: true }, "findAccount");
    } catch (e) {
      if (e instanceof AcmeError && e.type === PROBLEM.accountDoesNotExist) return null;
      throw e;
    }
  }

  async #newAccount(payload: unknown, op: string): Promise<Account> {
    const d = await this.directory();
    const a = await this.#post(d.newAccount, payload, op, { jwk: true });
    const url = this.#http.location(a, op);
    const account = parseAccount(this.#http.json(a, op), {
      url,
      base: this.#base,
      status: a.status,
    });
    this.#accountUrl = url;
    return account;
  }

  /** Places an order for DNS names (lower-case; `*.x` asks for a wildcard). */
  async newOrder(names: readonly string[]): Promise<Order> {
    if (names.length === 0) throw new Error("ACME newOrder: no names");
    for (const n of names) {
      const problem = dnsNameProblem(n);
      if (problem !== undefined) throw new Error(`ACME newOrder: ${JSON.stringify(n)}: ${problem}`);
    }
    const d = await this.directory();
    const payload = { identifiers: names.map((value) => ({ type: "dns", value })) };
    const a = await this.#post(d.newOrder, payload, "newOrder");
    return this.#order(a, this.#http.location(a, "newOrder"), "newOrder");
  }

  /** The order at `url` (POST-as-GET): how an order is resumed after a leader change. */
  async getOrder(url: string): Promise<Order> {
    return this.#order(await this.#post(url, undefined, "getOrder"), url, "getOrder");
  }

  /** The authorization at `url`. */
  async getAuthorization(url: string): Promise<Authorization> {
    const a = await this.#post(url, undefined, "getAuthorization");
    return parseAuthorization(this.#http.json(a, "getAuthorization"), {
      url,
      base: this.#base,
      status: a.status,
      retryAfterMs: retryAfterMs(a.headers.get("retry-after"), Date.now()),
    });
  }

  /** The challenge at `url`. */
  async getChallenge(url: string): Promise<Challenge> {
    const a = await this.#post(url, undefined, "getChallenge");
    return parseChallenge(this.#http.json(a, "getChallenge"), this.#base, a.status);
  }

  /**
   * `token.thumbprint` (RFC 8555 §8.1): the body of the HTTP-01 answer, hashed into the
   * TLS-ALPN-01 certificate.
   */
  keyAuthorization(token: string): string {
    if (!/^[A-Za-z0-9_-]{1,256}$/.test(token)) {
      throw new Error(`ACME challenge token ${JSON.stringify(token)}: expected base64url`);
    }
    return `${token}.${this.#thumbprint}`;
  }

  /** Tells the CA the challenge at `url` can be validated now (RFC 8555 §7.5.1). */
  async respond(challengeUrl: string): Promise<Challenge> {
    const a = await this.#post(challengeUrl, {}, "respond");
    return parseChallenge(this.#http.json(a, "respond"), this.#base, a.status);
  }

  /** Sends the CSR (DER) of a ready order; the order comes back processing or valid. */
  async finalize(order: Pick<Order, "url" | "finalize">, csrDer: Uint8Array): Promise<Order> {
    const a = await this.#post(order.finalize, { csr: base64url(csrDer) }, "finalize");
    return this.#order(a, order.url, "finalize");
  }

  /**
   * The certificate chain of a valid order (PEM, leaf first). Refuses an answer that is not
   * 1..CHAIN_CERTS_MAX readable CERTIFICATE blocks.
   */
  async downloadCertificate(url: string): Promise<string> {
    const op = "downloadCertificate";
    const a = await this.#post(url, undefined, op, { accept: "application/pem-certificate-chain" });
    const text = this.#http.text(a, op);
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    const rest = blocks.reduce((t, b) => t.replace(b, ""), text).trim();
    const fail = (detail: string) =>
      new AcmeError({ type: PROBLEM.badResponse, status: a.status, url, op, detail });
    if (blocks.length === 0 || rest !== "") throw fail("the answer is not a PEM certificate chain");
    if (blocks.length > CHAIN_CERTS_MAX) {
      throw fail(`the chain has ${blocks.length} certificates, at most ${CHAIN_CERTS_MAX}`);
    }
    for (const [i, b] of blocks.entries()) {
      try {
        new X509Certificate(b);
      } catch (e) {
        throw fail(`certificate ${i + 1} of the chain is unreadable: ${(e as Error).message}`);
      }
    }
    return blocks.map((b) => `${b}\n`).join("");
  }

  /**
   * Polls the authorization at `url` until it is no longer pending. Returns it when valid;
   * throws an AcmeError carrying the failed challenge's type and detail when it is invalid
   * (or expired, deactivated, revoked).
   */
  async pollAuthorization(url: string, o: PollOptions = {}): Promise<Authorization> {
    const authz = await this.#poll(
      () => this.getAuthorization(url),
      (z) => z.status === "pending",
      {
        ...o,
        what: `authorization for ${url}`,
      },
    );
    if (authz.status === "valid") return authz;
    const failed = authz.challenges.find((c) => c.error !== undefined)?.error;
    throw new AcmeError({
      type: failed?.type ?? PROBLEM.invalid,
      detail: `${authz.name}: ${failed?.detail ?? `authorization is ${authz.status}`}`,
      status: failed?.status ?? 0,
      subproblems: failed?.subproblems ?? [],
      url,
      op: "authorization",
    });
  }

  /**
   * Polls the order at `url` while it is pending or processing. Returns it when ready or valid;
   * throws an AcmeError with the order's error when it is invalid.
   */
  async pollOrder(url: string, o: PollOptions = {}): Promise<Order> {
    const order = await this.#poll(
      () => this.getOrder(url),
      (x) => x.status === "pending" || x.status === "processing",
      { ...o, what: `order ${url}` },
    );
    if (order.status !== "invalid") return order;
    throw new AcmeError({
      type: order.error?.type ?? PROBLEM.invalid,
      detail: order.error?.detail ?? "order is invalid",
      status: order.error?.status ?? 0,
      subproblems: order.error?.subproblems ?? [],
      url,
      op: "order",
    });
  }

  async #poll<T extends { retryAfterMs?: number }>(
    get: () => Promise<T>,
    busy: (t: T) => boolean,
    o: PollOptions & { what: string },
  ): Promise<T> {
    const deadline = Date.now() + (o.timeoutMs ?? 60_000);
    for (;;) {
      const t = await get();
      if (!busy(t)) return t;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new AcmeError({
          type: PROBLEM.timeout,
          status: 0,
          op: "poll",
          detail: `${o.what} still in progress after ${o.timeoutMs ?? 60_000} ms`,
        });
      }
      await sleep(Math.min(t.retryAfterMs ?? o.intervalMs ?? 1000, left), o.signal);
    }
  }

  #order(a: Answer, url: string, op: string): Order {
    return parseOrder(this.#http.json(a, op), {
      url,
      base: this.#base,
      status: a.status,
      retryAfterMs: retryAfterMs(a.headers.get("retry-after"), Date.now()),
    });
  }

  /** A signed POST (payload undefined: POST-as-GET), sent again on badNonce. */
  async #post(
    url: string,
    payload: unknown,
    op: string,
    o: { jwk?: boolean; accept?: string } = {},
  ): Promise<Answer> {
    let kid: string | undefined;
    if (!o.jwk) {
      kid = this.#accountUrl;
      if (kid === undefined) {
        throw new Error(`ACME ${op}: no account yet (call account() or pass accountUrl)`);
      }
    }
    for (let attempt = 0;; attempt++) {
      const nonce = await this.#nonce();
      const jws = signJws(
        this.#key,
        o.jwk ? { nonce, url, jwk: this.#jwk } : { nonce, url, kid },
        payload,
      );
      const a = await this.#http.exchange("POST", url, {
        body: JSON.stringify(jws),
        contentType: "application/jose+json",
        accept: o.accept,
      }, op);
      if (a.status < 400) return a;
      const problem = this.#http.problem(a, op);
      if (problem.type === PROBLEM.badNonce && attempt < this.#badNonceRetries) continue;
      throw problem;
    }
  }

  async #nonce(): Promise<string> {
    const kept = this.#http.nonces.pop();
    if (kept !== undefined) return kept;
    const d = await this.directory();
    const a = await this.#http.exchange("HEAD", d.newNonce, {}, "newNonce");
    const nonce = this.#http.nonces.pop();
    if (a.status >= 400 || nonce === undefined) {
      throw new AcmeError({
        type: PROBLEM.badResponse,
        status: a.status,
        url: d.newNonce,
        op: "newNonce",
        detail: "the CA sent no usable Replay-Nonce",
      });
    }
    return nonce;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
