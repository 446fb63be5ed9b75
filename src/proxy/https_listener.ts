/**
 * The proxy's HTTPS listener (`--proxy-https`): a `node:tls` server that picks the certificate
 * by SNI (`SniIndex`: exact name, one-label wildcard, default; none → the handshake fails with
 * a fatal alert — Deno's TLS stack sends `access_denied` (49) when no certificate is given),
 * negotiates ALPN and hands each connection, once its handshake is done, to HTTP/1.1
 * (`serveHttp1`) or HTTP/2 (`h2.serve`, when given), with its `ConnInfo`.
 *
 * - TLS 1.2 and 1.3; resumption with session tickets (TLS 1.2 and 1.3; Deno keeps no TLS 1.2
 *   session-id cache). No OCSP stapling: Deno's `node:tls` emits no `OCSPRequest`.
 * - ALPN: `h2` (only when an HTTP/2 frontend is given), `http/1.1`; a client offering neither
 *   gets HTTP/1.1 without ALPN. `acme-tls/1` (RFC 8737): the certificate is chosen from the SNI
 *   alone, before ALPN is seen, so while `acmeTlsAlpn(name)` has a challenge certificate for a
 *   name that NO certificate covers (exact or wildcard; the default does not count), every
 *   handshake for that name gets the challenge certificate and `acme-tls/1` is accepted; the
 *   connection closes after the handshake. A name that already has a certificate keeps serving
 *   it and `acme-tls/1` is not negotiated: renewals are validated by HTTP-01.
 * - TLS contexts are cached by certificate fingerprint; `reload()` re-reads `certs()` and swaps
 *   the index (the proxy calls it when the store's `edge_certs` change). A certificate whose
 *   context cannot be made is skipped with one log line (once per fingerprint).
 * - Limits: a handshake not done within `handshakeTimeoutMs` is closed, as is one that fails
 *   (garbage, no shared version or cipher); at most `handshakesPerIpMax` in progress per source
 *   address (more are closed at once) and `handshakesMax` in all (the oldest is closed); `admit()`
 *   (the proxy's connection limit, shared with the plain listener) decides each new connection.
 *
 * @module
 */
import tls from "node:tls";
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import type net from "node:net";
import type { HostPort } from "../lib/host_port.ts";
import { errorText } from "../lib/error_text.ts";
import { listenOn } from "./listen.ts";
import type { ConnInfo } from "./conn_info.ts";
import { type ServedCert, SniIndex } from "./sni_index.ts";

export const HANDSHAKE_TIMEOUT_MS = 10_000;
export const HANDSHAKES_MAX = 1024;
export const HANDSHAKES_PER_IP_MAX = 64;
/** Challenge contexts kept between reloads (one per name under validation). */
const CHALLENGE_CONTEXTS_MAX = 64;
export const ACME_TLS_ALPN = "acme-tls/1";

/** A TLS-ALPN-01 challenge certificate (RFC 8737) for one name. */
export interface ChallengeCert {
  certPem: string;
  keyPem: string;
}

/** Serves HTTP/2 on a TLS socket that negotiated `h2`. */
export interface H2Frontend {
  serve(socket: tls.TLSSocket, conn: ConnInfo): void;
}

/** What the proxy is given to serve HTTPS (ProxyOptions.tls). */
export interface ProxyTlsOptions {
  /** Listen address; port 0 picks a free port. */
  listen: HostPort;
  /** The certificates to serve, keys opened; called again at each `reload()`. */
  certs: () => readonly ServedCert[];
  /** The TLS-ALPN-01 challenge certificate for a name under validation, else null. */
  acmeTlsAlpn?: (servername: string) => ChallengeCert | null;
  /** Default 10000. */
  handshakeTimeoutMs?: number;
  /** Handshakes in progress at once; above it the oldest is closed. Default 1024. */
  handshakesMax?: number;
  /** Handshakes in progress from one address; above it new ones are closed. Default 64. */
  handshakesPerIpMax?: number;
}

export interface HttpsListenerOptions extends ProxyTlsOptions {
  /** Whether one more client connection may open (the proxy's shared limit). */
  admit: () => boolean;
  /** Serves HTTP/1.1 on a connection whose handshake is done. */
  serveHttp1(socket: tls.TLSSocket, conn: ConnInfo): void;
  /** HTTP/2 for connections that negotiate `h2`; without it `h2` is not offered. */
  h2?: H2Frontend | null;
  log: (line: string) => void;
}

/**
 * A TLS context for a certificate and its key; throws when the key is not the certificate's
 * (Deno's `createSecureContext` takes such a pair, and its handshakes then hang).
 */
function secureContext(c: ChallengeCert): tls.SecureContext {
  const spki = (k: KeyObject) => k.export({ type: "spki", format: "der" });
  const leaf = new X509Certificate(c.certPem);
  if (!spki(createPublicKey(createPrivateKey(c.keyPem))).equals(spki(leaf.publicKey))) {
    throw new Error("the key does not match the certificate");
  }
  return tls.createSecureContext({ cert: c.certPem, key: c.keyPem });
}

/** See the module comment. `start()` listens; `close()` ends every handshake in progress. */
export class HttpsListener {
  readonly #opts: HttpsListenerOptions;
  readonly #server: tls.Server;
  readonly #handshakesMax: number;
  readonly #handshakesPerIpMax: number;
  /** Raw sockets whose handshake is under way, oldest first. */
  readonly #handshaking = new Set<net.Socket>();
  readonly #perIp = new Map<string, number>();
  #index: SniIndex = SniIndex.EMPTY;
  /** fingerprint → context of every certificate in the index. */
  #contexts = new Map<string, tls.SecureContext>();
  /** Fingerprints whose context failed (logged once). */
  readonly #broken = new Set<string>();
  /** challenge certificate PEM → context. */
  readonly #challengeContexts = new Map<string, tls.SecureContext>();
  #address: HostPort | null = null;
  /** Handshakes that failed or timed out (for tests and metrics). */
  failedHandshakes = 0;

  constructor(opts: HttpsListenerOptions) {
    this.#opts = opts;
    this.#handshakesMax = opts.handshakesMax ?? HANDSHAKES_MAX;
    this.#handshakesPerIpMax = opts.handshakesPerIpMax ?? HANDSHAKES_PER_IP_MAX;
    this.#server = tls.createServer({
      minVersion: "TLSv1.2",
      handshakeTimeout: opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
      allowHalfOpen: true,
      SNICallback: (servername, cb) => cb(null, this.#contextFor(servername)),
      ALPNCallback: ({ servername, protocols }) => this.#alpn(servername, protocols),
    });
    this.#server.on("connection", this.#onConnection);
    this.#server.on("secureConnection", this.#onSecure);
    this.#server.on("tlsClientError", (_e: Error, socket: tls.TLSSocket) => {
      this.failedHandshakes++;
      socket.destroy();
    });
  }

  /** The bound address. Throws before start(). */
  get address(): HostPort {
    if (this.#address === null) throw new Error("HttpsListener: not started");
    return this.#address;
  }

  /** The bound address, or null before start(). */
  get bound(): HostPort | null {
    return this.#address;
  }

  /** Handshakes in progress. */
  get handshaking(): number {
    return this.#handshaking.size;
  }

  /** The index in use. */
  get index(): SniIndex {
    return this.#index;
  }

  async start(): Promise<void> {
    this.reload();
    this.#address = await listenOn(this.#server, this.#opts.listen, {
      flag: "proxy-https",
      log: this.#opts.log,
    });
  }

  /** Re-reads the certificates: new ones are served from the next handshake on. */
  reload(): void {
    let certs: readonly ServedCert[];
    try {
      certs = this.#opts.certs();
    } catch (e) {
      this.#opts.log(`proxy: keeping the old certificates, reading them failed: ${errorText(e)}`);
      return;
    }
    const contexts = new Map<string, tls.SecureContext>();
    const usable: ServedCert[] = [];
    for (const c of certs) {
      const had = this.#contexts.get(c.fingerprint) ?? contexts.get(c.fingerprint);
      if (had !== undefined) {
        contexts.set(c.fingerprint, had);
        usable.push(c);
        continue;
      }
      if (this.#broken.has(c.fingerprint)) continue;
      try {
        contexts.set(c.fingerprint, secureContext(c));
        usable.push(c);
      } catch (e) {
        this.#broken.add(c.fingerprint);
        this.#opts.log(`proxy: certificate ${c.name} not served: ${errorText(e)}`);
      }
    }
    // Invariant: every certificate in the index has its context in #contexts.
    this.#contexts = contexts;
    this.#index = new SniIndex(usable);
    this.#challengeContexts.clear();
  }

  /** Stops listening and closes the handshakes in progress (HttpProxy closes the rest). */
  async close(): Promise<void> {
    for (const s of this.#handshaking) s.destroy();
    this.#handshaking.clear();
    this.#perIp.clear();
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** The context for a server name; undefined: none (the server's, certificate-less: alert). */
  #contextFor(servername: string): tls.SecureContext | undefined {
    const challenge = this.#challenge(servername);
    if (challenge !== null) return challenge;
    const cert = this.#index.lookup(servername);
    return cert === null ? undefined : this.#contexts.get(cert.fingerprint);
  }

  /** The challenge context for a name under TLS-ALPN-01 validation that has no certificate. */
  #challenge(servername: string): tls.SecureContext | null {
    const acme = this.#opts.acmeTlsAlpn;
    if (acme === undefined || servername === "" || this.#index.covering(servername) !== null) {
      return null;
    }
    let cert: ChallengeCert | null;
    try {
      cert = acme(servername.toLowerCase());
    } catch (e) {
      this.#opts.log(`proxy: acme-tls/1 challenge for ${servername}: ${errorText(e)}`);
      return null;
    }
    if (cert === null) return null;
    let ctx = this.#challengeContexts.get(cert.certPem);
    if (ctx === undefined) {
      try {
        ctx = secureContext(cert);
      } catch (e) {
        this.#opts.log(`proxy: acme-tls/1 challenge for ${servername}: ${errorText(e)}`);
        return null;
      }
      if (this.#challengeContexts.size >= CHALLENGE_CONTEXTS_MAX) this.#challengeContexts.clear();
      this.#challengeContexts.set(cert.certPem, ctx);
    }
    return ctx;
  }

  #alpn(servername: string, protocols: string[]): string | undefined {
    if (protocols.includes(ACME_TLS_ALPN) && this.#challenge(servername) !== null) {
      return ACME_TLS_ALPN;
    }
    if (this.#opts.h2 && protocols.includes("h2")) return "h2";
    if (protocols.includes("http/1.1")) return "http/1.1";
    return undefined;
  }

  #onConnection = (raw: net.Socket): void => {
    const ip = raw.remoteAddress ?? "";
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (!this.#opts.admit() || fromIp >= this.#handshakesPerIpMax) {
      raw.destroy();
      return;
    }
    if (this.#handshaking.size >= this.#handshakesMax) {
      const oldest = this.#handshaking.values().next().value!;
      this.#handshakeOver(oldest);
      oldest.destroy();
    }
    this.#handshaking.add(raw);
    this.#perIp.set(ip, fromIp + 1);
    raw.once("close", () => this.#handshakeOver(raw));
  };

  #handshakeOver(raw: net.Socket): void {
    if (!this.#handshaking.delete(raw)) return;
    const ip = raw.remoteAddress ?? "";
    const n = (this.#perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(ip);
    else this.#perIp.set(ip, n);
  }

  #onSecure = (socket: tls.TLSSocket): void => {
    const raw = (socket as unknown as { _parent?: net.Socket })._parent;
    if (raw !== undefined) this.#handshakeOver(raw);
    socket.on("error", () => socket.destroy());
    const alpn = socket.alpnProtocol || undefined;
    if (alpn === ACME_TLS_ALPN) {
      socket.end(); // RFC 8737 §3: the handshake was the answer
      return;
    }
    const conn: ConnInfo = {
      secure: true,
      servername: (socket as unknown as { servername?: string | false }).servername || undefined,
      alpn,
      tlsVersion: socket.getProtocol() ?? undefined,
    };
    const h2 = this.#opts.h2;
    if (alpn === "h2" && h2) h2.serve(socket, conn);
    else this.#opts.serveHttp1(socket, conn);
  };
}
