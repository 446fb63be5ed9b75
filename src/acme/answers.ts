/**
 * Challenge answers on every member, from the replicated ACME tables (acme_state.ts), for the
 * proxy's hooks: HTTP-01 (`GET /.well-known/acme-challenge/TOKEN` on the plain listener → the
 * token's key authorization) and TLS-ALPN-01 (a handshake offering `acme-tls/1` for a name →
 * a self-signed certificate carrying the SHA-256 of the key authorization, built here once per
 * key authorization and cached). Read from memory: the maps are rebuilt when the change feed
 * names the `acme` table, so an answer never touches the disk. Each challenge answered is
 * logged once per member (which member the CA reached shows in its log).
 *
 * @module
 */
import type { AcmeChallenge } from "../store/mod.ts";

/** A TLS-ALPN-01 certificate and key (RFC 8737), PEM. */
export interface AlpnCert {
  certPem: string;
  keyPem: string;
}

/** What the answers read: the store, or a proxy worker's copy of the challenge rows. */
export interface ChallengeSource {
  readonly acme: { challenges(): (AcmeChallenge & { name: string })[] };
  /** Calls `fn` after each change; the answers reload when `tables` has "acme". */
  subscribe(fn: (c: { tables: ReadonlySet<string> }) => void): () => void;
}

export interface AcmeAnswersOptions {
  store: ChallengeSource;
  /** Builds the TLS-ALPN-01 certificate for `name` (acmeproto's tlsAlpnChallengeCert). */
  tlsAlpnCert: (name: string, keyAuthorization: string) => AlpnCert;
  log: (line: string) => void;
}

/** Most answered tokens remembered for logging once (older ones may be logged again). */
const LOGGED_MAX = 1024;

export class AcmeAnswers {
  readonly #o: AcmeAnswersOptions;
  #http = new Map<string, { name: string; keyAuthorization: string }>();
  #alpn = new Map<string, string>();
  readonly #certs = new Map<string, AlpnCert>();
  readonly #logged = new Set<string>();
  #unsubscribe: (() => void) | null = null;
  /** Answers given since start (HTTP-01 and TLS-ALPN-01). */
  answered = 0;

  constructor(o: AcmeAnswersOptions) {
    this.#o = o;
    this.#load();
  }

  /** Follows the store's changes until close(). */
  start(): void {
    this.#unsubscribe ??= this.#o.store.subscribe((c) => {
      if (c.tables.has("acme")) this.#load();
    });
  }

  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  /** HTTP-01: the key authorization to serve for `token`, or null (404). */
  http01(token: string): string | null {
    const c = this.#http.get(token);
    if (c === undefined) return null;
    this.#count(`http-01 ${token}`, `acme: answered the HTTP-01 challenge for ${c.name}`);
    return c.keyAuthorization;
  }

  /** Whether any TLS-ALPN-01 challenge is pending (the proxy then reads ClientHellos first). */
  tlsAlpnPending(): boolean {
    return this.#alpn.size > 0;
  }

  /** TLS-ALPN-01: the challenge certificate for `servername`, or null (no challenge for it). */
  tlsAlpn(servername: string): AlpnCert | null {
    const name = servername.toLowerCase();
    const keyAuthorization = this.#alpn.get(name);
    if (keyAuthorization === undefined) return null;
    let cert = this.#certs.get(keyAuthorization);
    if (cert === undefined) {
      cert = this.#o.tlsAlpnCert(name, keyAuthorization);
      this.#certs.set(keyAuthorization, cert);
    }
    this.#count(
      `tls-alpn-01 ${keyAuthorization}`,
      `acme: answered the TLS-ALPN-01 challenge for ${name}`,
    );
    return cert;
  }

  #count(key: string, line: string): void {
    this.answered++;
    if (this.#logged.has(key)) return;
    if (this.#logged.size >= LOGGED_MAX) this.#logged.clear();
    this.#logged.add(key);
    this.#o.log(line);
  }

  #load(): void {
    const http = new Map<string, { name: string; keyAuthorization: string }>();
    const alpn = new Map<string, string>();
    for (const c of this.#o.store.acme.challenges()) {
      if (c.type === "http-01") {
        http.set(c.token, { name: c.name, keyAuthorization: c.keyAuthorization });
      } else alpn.set(c.name, c.keyAuthorization);
    }
    this.#http = http;
    this.#alpn = alpn;
    const live = new Set(alpn.values());
    for (const k of this.#certs.keys()) if (!live.has(k)) this.#certs.delete(k);
  }
}
