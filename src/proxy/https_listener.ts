/**
 * The proxy's HTTPS listener (`--proxy-https`): a `node:tls` server that picks the certificate
 * by SNI (`SniIndex`: exact name, one-label wildcard, default; none → the handshake fails with
 * a fatal alert — Deno's TLS stack sends `access_denied` (49) when no certificate is given),
 * negotiates ALPN and hands each connection, once its handshake is done, to HTTP/1.1
 * (`serveHttp1`) or HTTP/2 (`h2.serve`, when given), with its `ConnInfo`.
 *
 * - TLS 1.2 and 1.3; resumption with session tickets (TLS 1.2 and 1.3; Deno keeps no TLS 1.2
 *   session-id cache). No OCSP stapling: Deno's `node:tls` emits no `OCSPRequest`.
 * - ALPN: `h2` (only when an HTTP/2 frontend is given), `http/1.1`; a client offering no ALPN
 *   gets HTTP/1.1, one offering only other protocols is refused (Deno ends the handshake).
 * - `acme-tls/1` (RFC 8737) is answered apart from node:tls, whose TLS stack refuses the
 *   challenge certificate's critical extension and picks certificates before it sees ALPN:
 *   while `acmeTlsAlpn.pending()` (a TLS-ALPN-01 validation is under way somewhere), the
 *   ClientHello of each new connection is read first; one that `claims` (acme-tls/1 for a name
 *   under validation) goes to `acmeTlsAlpn.answer`, any other continues into node:tls with the
 *   bytes read put back in front. With nothing pending, connections go to node:tls untouched.
 * - TLS contexts are cached by certificate fingerprint; `reload()` re-reads `certs()` and swaps
 *   the index (the proxy calls it when the store's `edge_certs` change). A certificate whose
 *   context cannot be made is skipped with one log line (once per fingerprint).
 * - Limits: a handshake not done within `handshakeTimeoutMs` is closed, as is one that fails
 *   (garbage, no shared version or cipher); at most `handshakesPerIpMax` in progress per source
 *   address (more are closed at once) and `handshakesMax` in all (the oldest is closed); `admit()`
 *   (the proxy's connection limit, shared with the plain listener) decides each new connection.
 *   An acme-tls/1 answer counts as a handshake until it closes, and has its own caps
 *   (`acmeAnswersPerIpMax`, `acmeAnswersMax`: more are closed) and timeout (`acmeAnswerTimeoutMs`).
 *
 * @module
 */
import tls from "node:tls";
import net from "node:net";
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import type { HostPort } from "../lib/host_port.ts";
import { errorText } from "../lib/error_text.ts";
import { listenOn } from "./listen.ts";
import type { ConnInfo } from "./conn_info.ts";
import { type ServedCert, SniIndex } from "./sni_index.ts";
import { copyConnEnds, type ProxyHeaderGate } from "./proxy_protocol_in.ts";

export const HANDSHAKE_TIMEOUT_MS = 10_000;
export const HANDSHAKES_MAX = 1024;
export const HANDSHAKES_PER_IP_MAX = 64;
/** acme-tls/1 answers at once in all, from one address, and how long one may take: a CA
 * validates a name with one or two connections per vantage point, in well under a second. */
export const ACME_ANSWERS_MAX = 64;
export const ACME_ANSWERS_PER_IP_MAX = 8;
export const ACME_ANSWER_TIMEOUT_MS = 3_000;
/** Most bytes read looking for a ClientHello (the largest hellos are a few KiB). */
const CLIENT_HELLO_READ_MAX = 16 * 1024 + 5;

/** TLS-ALPN-01 validations (RFC 8737), answered outside node:tls (module doc). */
export interface AcmeTlsAlpnHook {
  /** Whether a validation may come now: only then is each ClientHello read first. */
  pending(): boolean;
  /**
   * From the first bytes of a connection: "more" (not a whole ClientHello yet), true (an
   * `acme-tls/1` validation to answer), false (any other client).
   */
  claims(head: Uint8Array): boolean | "more";
  /** Answers the validation on `socket` (`head`: the bytes read from it so far), then closes it. */
  answer(socket: net.Socket, head: Uint8Array): void;
}

/** Serves HTTP/2 on a TLS socket that negotiated `h2`. */
export interface H2Frontend {
  serve(socket: tls.TLSSocket, conn: ConnInfo): void;
}

/** What the proxy is given to serve HTTPS (ProxyOptions.tls). */
export interface ProxyTlsOptions {
  /** Listen address; port 0 picks a free port. */
  listen: HostPort;
  /** Bind with SO_REUSEPORT (proxy workers share the port). Default false. */
  reusePort?: boolean;
  /** The certificates to serve, keys opened; called again at each `reload()`. */
  certs: () => readonly ServedCert[];
  /** TLS-ALPN-01 validations; none answered without it. */
  acmeTlsAlpn?: AcmeTlsAlpnHook;
  /** Default 10000. */
  handshakeTimeoutMs?: number;
  /** Handshakes in progress at once; above it the oldest is closed. Default 1024. */
  handshakesMax?: number;
  /** Handshakes in progress from one address; above it new ones are closed. Default 64. */
  handshakesPerIpMax?: number;
  /** acme-tls/1 answers at once (more are closed); default ACME_ANSWERS_MAX. */
  acmeAnswersMax?: number;
  /** acme-tls/1 answers at once from one address; default ACME_ANSWERS_PER_IP_MAX. */
  acmeAnswersPerIpMax?: number;
  /** An acme-tls/1 answer still open after this is closed; default ACME_ANSWER_TIMEOUT_MS. */
  acmeAnswerTimeoutMs?: number;
}

export interface HttpsListenerOptions extends ProxyTlsOptions {
  /** Whether one more client connection may open (the proxy's shared limit). */
  admit: () => boolean;
  /** Serves HTTP/1.1 on a connection whose handshake is done. */
  serveHttp1(socket: tls.TLSSocket, conn: ConnInfo): void;
  /** HTTP/2 for connections that negotiate `h2`; without it `h2` is not offered. */
  h2?: H2Frontend | null;
  /**
   * Reads the PROXY header of connections from trusted sources before TLS begins; the address
   * it declares is the connection's for every limit and request (proxy_protocol_in.ts).
   */
  proxyIn?: ProxyHeaderGate | null;
  log: (line: string) => void;
}

/**
 * A TLS context for a certificate and its key; throws when the key is not the certificate's
 * (Deno's `createSecureContext` takes such a pair, and its handshakes then hang).
 */
function secureContext(c: { certPem: string; keyPem: string }): tls.SecureContext {
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
  /** Accepts connections and hands them to `#tls` (after `#peek` when ACME asks). */
  readonly #server: net.Server;
  readonly #tls: tls.Server;
  readonly #handshakesMax: number;
  readonly #handshakeTimeoutMs: number;
  readonly #handshakesPerIpMax: number;
  /** Raw sockets whose handshake is under way, oldest first. */
  readonly #handshaking = new Set<net.Socket>();
  readonly #perIp = new Map<string, number>();
  /** acme-tls/1 answers under way (also in #handshaking until they close), per address. */
  readonly #acmePerIp = new Map<string, number>();
  #acmeAnswering = 0;
  #index: SniIndex = SniIndex.EMPTY;
  /** fingerprint → context of every certificate in the index. */
  #contexts = new Map<string, tls.SecureContext>();
  /** Fingerprints whose context failed (logged once). */
  readonly #broken = new Set<string>();
  /** The `Prepended` relay over each raw connection read first (`#peek`) → that connection. */
  readonly #rawOf = new WeakMap<object, net.Socket>();
  #address: HostPort | null = null;
  /** Handshakes that failed or timed out (for tests and metrics). */
  failedHandshakes = 0;

  constructor(opts: HttpsListenerOptions) {
    this.#opts = opts;
    this.#handshakesMax = opts.handshakesMax ?? HANDSHAKES_MAX;
    this.#handshakeTimeoutMs = opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    this.#handshakesPerIpMax = opts.handshakesPerIpMax ?? HANDSHAKES_PER_IP_MAX;
    this.#tls = tls.createServer({
      minVersion: "TLSv1.2",
      handshakeTimeout: this.#handshakeTimeoutMs,
      allowHalfOpen: true,
      SNICallback: (servername, cb) => cb(null, this.#contextFor(servername)),
      ALPNCallback: ({ protocols }) => this.#alpn(protocols),
    });
    this.#server = net.createServer({ allowHalfOpen: true }, this.#onConnection);
    this.#tls.on("secureConnection", this.#onSecure);
    this.#tls.on("tlsClientError", (_e: Error, socket: tls.TLSSocket) => {
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
      reusePort: this.#opts.reusePort,
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
  }

  /** Stops listening and closes the handshakes in progress (HttpProxy closes the rest). */
  async close(): Promise<void> {
    for (const s of this.#handshaking) s.destroy();
    this.#tls.close();
    this.#handshaking.clear();
    this.#perIp.clear();
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** The context for a server name; undefined: none (the server's, certificate-less: alert). */
  #contextFor(servername: string): tls.SecureContext | undefined {
    const cert = this.#index.lookup(servername);
    return cert === null ? undefined : this.#contexts.get(cert.fingerprint);
  }

  #alpn(protocols: string[]): string | undefined {
    if (this.#opts.h2 && protocols.includes("h2")) return "h2";
    if (protocols.includes("http/1.1")) return "http/1.1";
    return undefined;
  }

  #onConnection = (raw: net.Socket): void => {
    const gate = this.#opts.proxyIn;
    if (gate == null || !gate.trusts(raw)) return this.#begin(raw, null);
    if (!this.#opts.admit()) {
      raw.destroy();
      return;
    }
    gate.accept(raw, "https", (rest) => this.#begin(raw, rest));
  };

  /**
   * Starts the handshake of a new connection; `head`: the bytes read after its PROXY header
   * (then node:tls reads through a `Prepended` relay), null when none was read.
   */
  #begin(raw: net.Socket, head: Buffer | null): void {
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
    const acme = this.#opts.acmeTlsAlpn;
    if (acme?.pending()) this.#peek(raw, acme, head ?? Buffer.alloc(0));
    else if (head === null) this.#tls.emit("connection", raw);
    else this.#relayed(raw, head);
  }

  /** Hands node:tls a connection read from, its bytes read so far put back in front. */
  #relayed(raw: net.Socket, head: Buffer): void {
    const relay = new Prepended(raw, head);
    this.#rawOf.set(relay, raw);
    this.#tls.emit("connection", relay);
  }

  /**
   * Reads the ClientHello of a connection while a TLS-ALPN-01 validation is pending: an
   * `acme-tls/1` one is answered by the hook, any other goes on into node:tls with the bytes
   * read put back in front (`Prepended`).
   */
  #peek(raw: net.Socket, acme: AcmeTlsAlpnHook, read: Buffer): void {
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => raw.destroy(), this.#handshakeTimeoutMs);
    raw.on("error", () => raw.destroy());
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      let claim: boolean | "more";
      try {
        claim = head.length > CLIENT_HELLO_READ_MAX ? false : acme.claims(head);
      } catch {
        claim = false;
      }
      if (claim === "more") return;
      clearTimeout(timer);
      raw.off("data", onData);
      raw.pause();
      if (claim) {
        this.#answer(raw, head, acme);
        return;
      }
      this.#relayed(raw, head);
    };
    raw.on("data", onData);
    raw.once("close", () => clearTimeout(timer));
    if (read.length > 0) onData(read);
    // Paused after a PROXY header: read on while the ClientHello is incomplete.
    if (raw.listeners("data").includes(onData)) raw.resume();
  }

  /**
   * Hands a claimed connection to the hook, within the acme-tls/1 caps and timeout; it stays
   * counted as a handshake (per address, in all, in `admit()`) until it closes.
   */
  #answer(raw: net.Socket, head: Buffer, acme: AcmeTlsAlpnHook): void {
    const o = this.#opts;
    const ip = raw.remoteAddress ?? "";
    const fromIp = this.#acmePerIp.get(ip) ?? 0;
    if (
      this.#acmeAnswering >= (o.acmeAnswersMax ?? ACME_ANSWERS_MAX) ||
      fromIp >= (o.acmeAnswersPerIpMax ?? ACME_ANSWERS_PER_IP_MAX)
    ) {
      raw.destroy();
      return;
    }
    this.#acmeAnswering++;
    this.#acmePerIp.set(ip, fromIp + 1);
    const timer = setTimeout(
      () => raw.destroy(),
      o.acmeAnswerTimeoutMs ?? ACME_ANSWER_TIMEOUT_MS,
    );
    raw.once("close", () => {
      clearTimeout(timer);
      this.#acmeAnswering--;
      const n = (this.#acmePerIp.get(ip) ?? 1) - 1;
      if (n <= 0) this.#acmePerIp.delete(ip);
      else this.#acmePerIp.set(ip, n);
    });
    acme.answer(raw, head);
  }

  #handshakeOver(raw: net.Socket): void {
    if (!this.#handshaking.delete(raw)) return;
    const ip = raw.remoteAddress ?? "";
    const n = (this.#perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(ip);
    else this.#perIp.set(ip, n);
  }

  #onSecure = (socket: tls.TLSSocket): void => {
    const parent = transportOf(socket);
    const raw = parent === undefined
      ? undefined
      : (this.#rawOf.get(parent) ?? parent) as net.Socket;
    if (raw !== undefined) this.#handshakeOver(raw);
    if (raw !== parent && raw !== undefined) {
      // Over a Prepended relay the TLS socket knows no ends: the request's are the raw's.
      copyConnEnds(socket, raw);
    }
    socket.on("error", () => socket.destroy());
    const alpn = socket.alpnProtocol || undefined;
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

/**
 * What a server TLS socket reads from: its raw socket (`_parent`), or the stream it wraps when
 * that is no socket (`Prepended`: node:tls puts a JSStreamSocket between them). Deno 2.9's
 * node:tls internals; undefined when they differ (the raw socket's close then ends the count).
 */
function transportOf(socket: tls.TLSSocket): object | undefined {
  const s = socket as unknown as {
    _parent?: object;
    _handle?: { _parentWrap?: { stream?: object } };
  };
  return s._parent ?? s._handle?._parentWrap?.stream;
}

/**
 * A raw connection with bytes already read from it put back in front: what node:tls reads
 * after `#peek` (Deno's TLS cannot take a socket that was read from).
 */
class Prepended extends Duplex {
  readonly #raw: net.Socket;

  constructor(raw: net.Socket, head: Buffer) {
    super({ allowHalfOpen: true });
    this.#raw = raw;
    this.push(head);
    raw.on("data", (d: Buffer) => {
      if (!this.push(d)) raw.pause();
    });
    raw.on("end", () => this.push(null));
    raw.on("close", () => this.destroy());
  }

  override _read(): void {
    this.#raw.resume();
  }

  override _write(chunk: Buffer, _enc: string, cb: (e?: Error | null) => void): void {
    this.#raw.write(chunk, cb);
  }

  override _final(cb: () => void): void {
    this.#raw.end(cb);
  }

  override _destroy(e: Error | null, cb: (e: Error | null) => void): void {
    this.#raw.destroy();
    cb(e);
  }
}
