/**
 * Mutual TLS for the transport, used when `TransportOptions.tls` is given: the secure contexts
 * built from the member's current credentials (a renewed certificate is used from the next
 * connection on), the listener's and the dialer's TLS options, and what a verified handshake
 * tells about the peer. Private to src/cluster/.
 *
 * Both sides present a certificate issued by the cluster CA and check the other's chains to it;
 * no host name is matched (members are addressed by IP): the identity check is
 * `TransportTls.verifyPeer`, called once the hello (listener) or welcome (dialer) arrived.
 *
 * @module
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import {
  connect as tlsConnect,
  createSecureContext,
  type SecureContext,
  type TlsOptions,
  type TLSSocket,
} from "node:tls";
import { errorText } from "../lib/error_text.ts";
import { certInfo } from "../pki/mod.ts";
import type { CertInfo, TlsCredentials, TransportTls } from "./_transport_shared.ts";

/** Oldest TLS version spoken on cluster connections. */
export const TLS_MIN_VERSION = "TLSv1.3";

/**
 * Request kinds (`t` of a request body) a peer without a client certificate may send: reading
 * the CA certificate and enrolling with a join token. Anything else closes its connection.
 */
export const ANONYMOUS_REQUESTS: ReadonlySet<string> = new Set(["pki.ca", "pki.enroll"]);

/**
 * Secure contexts from `tls.credentials()`, asked for every new connection; the context is
 * rebuilt only when the credentials changed (a renewal), so a connection costs one comparison.
 */
export class TlsContexts {
  readonly tls: TransportTls;
  #creds: TlsCredentials | null = null;
  #context: SecureContext | null = null;

  constructor(tls: TransportTls) {
    this.tls = tls;
  }

  /** The context for a new connection; throws one line when the credentials are unusable. */
  current(): SecureContext {
    let creds: TlsCredentials;
    try {
      creds = this.tls.credentials();
    } catch (e) {
      throw new Error(`no TLS credentials: ${errorText(e)}`);
    }
    const last = this.#creds;
    if (
      this.#context !== null && last !== null && last.keyPem === creds.keyPem &&
      last.certPem === creds.certPem && last.caPem === creds.caPem
    ) {
      return this.#context;
    }
    let context: SecureContext;
    try {
      checkCredentials(creds);
      context = createSecureContext({
        key: creds.keyPem,
        cert: creds.certPem,
        ca: creds.caPem,
        minVersion: TLS_MIN_VERSION,
      });
    } catch (e) {
      throw new Error(`unusable TLS credentials: ${errorText(e)}`);
    }
    this.#creds = { keyPem: creds.keyPem, certPem: creds.certPem, caPem: creds.caPem };
    this.#context = context;
    return context;
  }

  /**
   * Options of the listener: a client certificate is asked for but not required (a joining
   * node has none yet); the connection handler checks `authorized` itself. The context is
   * picked per connection, so a renewed certificate serves new connections. Throws like
   * `current()`.
   */
  serverOptions(handshakeTimeoutMs: number, onContextError: (e: unknown) => void): TlsOptions {
    // Deno asks SNICallback for every connection, with or without a server name; the
    // credentials at start also serve a runtime that would not (without renewal then).
    const initial = this.tls.credentials();
    return {
      key: initial.keyPem,
      cert: initial.certPem,
      ca: initial.caPem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: TLS_MIN_VERSION,
      handshakeTimeout: handshakeTimeoutMs,
      SNICallback: (_servername, cb) => {
        let context: SecureContext;
        try {
          context = this.current();
        } catch (e) {
          onContextError(e);
          cb(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        cb(null, context);
      },
    };
  }

  /** Dials `host:port` presenting this member's certificate and checking the peer's chain. */
  dial(host: string, port: number, localAddress: string | undefined): TLSSocket {
    return tlsConnect({
      host,
      port,
      ...(localAddress === undefined ? {} : { localAddress }),
      secureContext: this.current(),
      minVersion: TLS_MIN_VERSION,
      rejectUnauthorized: true,
      // Members are dialed by IP: the chain to the cluster CA is checked here, the name by
      // verifyPeer once the welcome arrived.
      checkServerIdentity: () => undefined,
    });
  }
}

/**
 * The certificate a TLS peer presented: null when it presented none, or the reason to refuse
 * it (not chained to our CA, expired, not a member certificate).
 */
export function peerCert(
  socket: TLSSocket,
  inbound: boolean,
): { cert: CertInfo | null } | { refuse: string } {
  const presented = socket.getPeerCertificate(true);
  const raw = presented?.raw;
  if (raw === undefined || raw.byteLength === 0) {
    return inbound ? { cert: null } : { refuse: "the peer presented no certificate" };
  }
  let cert: CertInfo;
  try {
    cert = certInfo(raw);
  } catch (e) {
    return { refuse: `certificate not accepted: ${errorText(e)}` };
  }
  // The dialer's handshake already failed on an unverified chain (rejectUnauthorized).
  if (inbound && !socket.authorized) {
    const now = Date.now();
    const why = cert.notAfter < now
      ? `certificate of ${cert.node} expired at ${new Date(cert.notAfter).toISOString()}`
      : cert.notBefore > now
      ? `certificate of ${cert.node} not valid before ${new Date(cert.notBefore).toISOString()}`
      : `certificate of ${cert.node} not issued by the cluster CA`;
    return { refuse: `${why} (${String(socket.authorizationError ?? "not verified")})` };
  }
  return { cert };
}

/**
 * Throws one line unless the key, certificate and CA parse and the key is the certificate's
 * (node:tls in Deno takes anything here and fails each handshake later).
 */
function checkCredentials(creds: TlsCredentials): void {
  let key: KeyObject;
  try {
    key = createPrivateKey(creds.keyPem);
  } catch (e) {
    throw new Error(`bad private key: ${errorText(e)}`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(creds.certPem);
  } catch (e) {
    throw new Error(`bad certificate: ${errorText(e)}`);
  }
  if (!cert.checkPrivateKey(key)) throw new Error("the private key is not the certificate's");
  try {
    new X509Certificate(creds.caPem);
  } catch (e) {
    throw new Error(`bad CA certificate: ${errorText(e)}`);
  }
}

/** True for a request an anonymous peer (TLS, no client certificate) may make. */
export function anonymousAllowed(body: unknown): boolean {
  if (typeof body !== "object" || body === null) return false;
  const t = (body as { t?: unknown }).t;
  return typeof t === "string" && ANONYMOUS_REQUESTS.has(t);
}

/** The request kind for a log line (`t` of the body, cut short), or "without a kind". */
export function requestKind(body: unknown): string {
  const t = typeof body === "object" && body !== null ? (body as { t?: unknown }).t : undefined;
  return typeof t === "string" ? `"${t.slice(0, 32)}"` : "without a kind";
}
