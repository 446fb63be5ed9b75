/**
 * Reading a TLS ClientHello (RFC 8446 §4.1.2) from the first bytes of a connection: enough to
 * tell an ACME TLS-ALPN-01 validation (ALPN `acme-tls/1`, RFC 8737 §3) from a browser, and for
 * tls_alpn_responder.ts to answer it. Pure: bytes in, fields out; every length is checked
 * against its container, so a malformed or hostile hello is a thrown one-line Error.
 *
 * @module
 */
import { concatBytes } from "../lib/bytes.ts";

/** Largest ClientHello accepted (hybrid post-quantum key shares make hellos of ~1.8 KiB). */
export const CLIENT_HELLO_BYTES_MAX = 16 * 1024;

/** The fields of a ClientHello berth uses. */
export interface ClientHello {
  /** The whole handshake message (type, length, body): it goes into the transcript hash. */
  message: Uint8Array;
  sessionId: Uint8Array;
  cipherSuites: number[];
  /** server_name (host_name), lower-case; null when absent. */
  servername: string | null;
  /** ALPN protocol names offered, in order. */
  alpn: string[];
  /** supported_versions (0x0304 is TLS 1.3). */
  versions: number[];
  /** key_share entries: group → public key bytes. */
  keyShares: Map<number, Uint8Array>;
  /** signature_algorithms. */
  signatureAlgorithms: number[];
  /** supported_groups. */
  groups: number[];
}

/** What `readClientHello` found in the bytes so far. */
export type HelloRead =
  | { kind: "hello"; hello: ClientHello; /** bytes of the records holding it */ used: number }
  | { kind: "more" }
  | { kind: "not-tls" };

class Reader {
  #off: number;
  constructor(readonly b: Uint8Array, start = 0, readonly end = b.length) {
    this.#off = start;
  }
  get off(): number {
    return this.#off;
  }
  get left(): number {
    return this.end - this.#off;
  }
  take(n: number, what: string): Uint8Array {
    if (n > this.left) throw new Error(`malformed ClientHello: ${what} runs past its container`);
    const out = this.b.subarray(this.#off, this.#off + n);
    this.#off += n;
    return out;
  }
  u8(what: string): number {
    return this.take(1, what)[0]!;
  }
  u16(what: string): number {
    const b = this.take(2, what);
    return (b[0]! << 8) | b[1]!;
  }
  u24(what: string): number {
    const b = this.take(3, what);
    return (b[0]! << 16) | (b[1]! << 8) | b[2]!;
  }
  /** A vector with a `lenBytes`-byte length, as a Reader over its content. */
  vec(lenBytes: 1 | 2, what: string): Reader {
    const n = lenBytes === 1 ? this.u8(what) : this.u16(what);
    const start = this.#off;
    this.take(n, what);
    return new Reader(this.b, start, start + n);
  }
}

/**
 * The ClientHello at the start of `buf` (one or more handshake records), `more` when the bytes
 * end before it does, `not-tls` when the first byte is not a TLS handshake record. Throws on a
 * malformed or oversized hello.
 */
export function readClientHello(buf: Uint8Array): HelloRead {
  if (buf.length === 0) return { kind: "more" };
  if (buf[0] !== 0x16) return { kind: "not-tls" };
  // Reassemble the handshake bytes carried by consecutive handshake records.
  const parts: Uint8Array[] = [];
  let total = 0;
  let off = 0;
  let need = -1;
  while (need < 0 || total < need) {
    if (off + 5 > buf.length) return { kind: "more" };
    if (buf[off] !== 0x16) {
      throw new Error("malformed ClientHello: a non-handshake record inside it");
    }
    const len = (buf[off + 3]! << 8) | buf[off + 4]!;
    if (len === 0 || len > 16384) throw new Error(`malformed ClientHello: record of ${len} bytes`);
    if (off + 5 + len > buf.length) return { kind: "more" };
    parts.push(buf.subarray(off + 5, off + 5 + len));
    total += len;
    off += 5 + len;
    if (need < 0 && total >= 4) {
      const head = concatBytes(parts);
      if (head[0] !== 0x01) {
        throw new Error("malformed ClientHello: first message is not a ClientHello");
      }
      need = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      if (need > CLIENT_HELLO_BYTES_MAX) {
        throw new Error(`ClientHello of ${need} bytes: at most ${CLIENT_HELLO_BYTES_MAX}`);
      }
    }
  }
  const handshake = concatBytes(parts);
  if (handshake.length !== need) {
    throw new Error("malformed ClientHello: more handshake data after it in the same flight");
  }
  return { kind: "hello", hello: parseClientHello(handshake), used: off };
}

/** The fields of a complete ClientHello handshake message. */
export function parseClientHello(message: Uint8Array): ClientHello {
  const r = new Reader(message);
  if (r.u8("type") !== 1) throw new Error("malformed ClientHello: wrong handshake type");
  const body = new Reader(message, 4, 4 + r.u24("length"));
  if (body.end !== message.length) throw new Error("malformed ClientHello: length mismatch");
  body.u16("legacy_version");
  body.take(32, "random");
  const sessionId = body.vec(1, "legacy_session_id");
  if (sessionId.left > 32) throw new Error("malformed ClientHello: session id over 32 bytes");
  const suites = body.vec(2, "cipher_suites");
  const cipherSuites: number[] = [];
  while (suites.left > 0) cipherSuites.push(suites.u16("cipher suite"));
  body.vec(1, "legacy_compression_methods");
  const hello: ClientHello = {
    message,
    sessionId: sessionId.take(sessionId.left, "session id"),
    cipherSuites,
    servername: null,
    alpn: [],
    versions: [],
    keyShares: new Map(),
    signatureAlgorithms: [],
    groups: [],
  };
  if (body.left === 0) return hello; // no extensions: a pre-TLS 1.3 client
  const exts = body.vec(2, "extensions");
  if (body.left !== 0) throw new Error("malformed ClientHello: bytes after the extensions");
  while (exts.left > 0) {
    const type = exts.u16("extension type");
    const e = exts.vec(2, `extension ${type}`);
    readExtension(type, e, hello);
  }
  return hello;
}

function u16List(r: Reader, what: string): number[] {
  const out: number[] = [];
  while (r.left > 0) out.push(r.u16(what));
  return out;
}

function readExtension(type: number, e: Reader, hello: ClientHello): void {
  const ascii = (b: Uint8Array) => String.fromCharCode(...b);
  switch (type) {
    case 0: { // server_name
      const list = e.vec(2, "server_name_list");
      while (list.left > 0) {
        const nameType = list.u8("name_type");
        const name = list.vec(2, "host_name");
        if (nameType === 0 && hello.servername === null) {
          const host = ascii(name.take(name.left, "host_name"));
          if (!/^[A-Za-z0-9.-]{1,253}$/.test(host)) {
            throw new Error("malformed ClientHello: server_name is not a DNS name");
          }
          hello.servername = host.toLowerCase();
        }
      }
      return;
    }
    case 16: { // application_layer_protocol_negotiation
      const list = e.vec(2, "protocol_name_list");
      while (list.left > 0) {
        const p = list.vec(1, "protocol_name");
        hello.alpn.push(ascii(p.take(p.left, "protocol_name")));
      }
      return;
    }
    case 43: // supported_versions
      hello.versions = u16List(e.vec(1, "versions"), "version");
      return;
    case 10: // supported_groups
      hello.groups = u16List(e.vec(2, "named_group_list"), "group");
      return;
    case 13: // signature_algorithms
      hello.signatureAlgorithms = u16List(e.vec(2, "signature algorithms"), "scheme");
      return;
    case 51: { // key_share
      const list = e.vec(2, "client_shares");
      while (list.left > 0) {
        const group = list.u16("group");
        const key = list.vec(2, "key_exchange");
        hello.keyShares.set(group, key.take(key.left, "key_exchange"));
      }
      return;
    }
  }
}
