/**
 * Answers an ACME TLS-ALPN-01 validation (RFC 8737) on a TCP connection with berth's own,
 * minimal TLS 1.3 server handshake (RFC 8446): TLS_AES_128_GCM_SHA256, key exchange X25519 or
 * P-256, the RFC 8737 certificate signed into CertificateVerify with ecdsa_secp256r1_sha256,
 * ALPN `acme-tls/1`; after the client's Finished the connection is closed. No application data
 * is ever exchanged.
 *
 * Why not node:tls: Deno's TLS (rustls) refuses to load a certificate with an unknown critical
 * extension, and RFC 8737 requires the acmeIdentifier extension to be critical (pebble and Let's
 * Encrypt refuse it otherwise). The handshake is small because a validation needs nothing else:
 * no resumption, no client certificates; a client whose key shares are of other groups gets a
 * HelloRetryRequest for X25519 (or P-256).
 *
 * ```ts
 * net.createServer((socket) => answerTlsAlpn01(socket, (name) => answers.tlsAlpn(name)));
 * ```
 *
 * @module
 */
import type { Duplex } from "node:stream";
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  sign,
  timingSafeEqual,
  X509Certificate,
} from "node:crypto";
import { Buffer } from "node:buffer";
import { concatBytes } from "../lib/bytes.ts";
import { type ClientHello, readClientHello } from "./client_hello.ts";

const TLS13 = 0x0304;
const AES_128_GCM_SHA256 = 0x1301;
const X25519 = 0x001d;
const SECP256R1 = 0x0017;
const ECDSA_P256_SHA256 = 0x0403;
export const ACME_TLS_ALPN = "acme-tls/1";

const ALERT = {
  handshakeFailure: 40,
  protocolVersion: 70,
  noApplicationProtocol: 120,
  unrecognizedName: 112,
  decodeError: 50,
  decryptError: 51,
} as const;

/** A certificate for the name, or null when no validation is pending for it. */
export type AlpnCertLookup = (servername: string) => { certPem: string; keyPem: string } | null;

export interface AnswerOptions {
  /** Bytes already read from `socket` (a proxy that looked at the ClientHello). */
  head?: Uint8Array;
  /** Whole exchange; the socket is destroyed after. Default 10 s. */
  timeoutMs?: number;
}

/** Why a handshake was not answered (for a log line), or "answered". */
export type AnswerResult = "answered" | string;

/**
 * Runs the handshake on `socket` and closes it. Resolves with "answered" once the client's
 * Finished checked out, else with the reason (a fatal alert was sent where TLS allows one).
 * Never throws.
 */
export async function answerTlsAlpn01(
  socket: Duplex,
  lookup: AlpnCertLookup,
  o: AnswerOptions = {},
): Promise<AnswerResult> {
  const input = new SocketInput(socket, o.head);
  const timer = setTimeout(() => input.fail("timed out"), o.timeoutMs ?? 10_000);
  try {
    const hello = await nextHello(input, false);
    const cert = choose(hello, lookup);
    await handshake(socket, input, hello, cert);
    return "answered";
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    if (e instanceof Refusal && e.alert !== undefined && !socket.destroyed) {
      socket.write(Uint8Array.of(0x15, 0x03, 0x03, 0x00, 0x02, 0x02, e.alert));
    }
    return reason;
  } finally {
    clearTimeout(timer);
    input.close();
    socket.end(() => socket.destroy());
  }
}

/** The next ClientHello on the connection (after a HelloRetryRequest: skipping a CCS record). */
async function nextHello(input: SocketInput, retry: boolean): Promise<ClientHello> {
  for (;;) {
    const b = input.buffered;
    if (retry && b.length >= 6 && b[0] === 0x14) {
      input.consume(6); // the client's middlebox-compatibility ChangeCipherSpec
      continue;
    }
    const r = readClientHello(b);
    if (r.kind === "not-tls") {
      throw new Refusal(retry ? "expected a second ClientHello" : "not a TLS connection");
    }
    if (r.kind === "hello") {
      input.consume(r.used);
      return r.hello;
    }
    await input.more();
  }
}

class Refusal extends Error {
  constructor(message: string, readonly alert?: number) {
    super(message);
  }
}

function choose(hello: ClientHello, lookup: AlpnCertLookup) {
  if (!hello.versions.includes(TLS13)) {
    throw new Refusal("client does not offer TLS 1.3", ALERT.protocolVersion);
  }
  if (!hello.alpn.includes(ACME_TLS_ALPN)) {
    throw new Refusal("client does not offer acme-tls/1", ALERT.noApplicationProtocol);
  }
  if (!hello.cipherSuites.includes(AES_128_GCM_SHA256)) {
    throw new Refusal("client does not offer TLS_AES_128_GCM_SHA256", ALERT.handshakeFailure);
  }
  if (!hello.signatureAlgorithms.includes(ECDSA_P256_SHA256)) {
    throw new Refusal("client does not accept ecdsa_secp256r1_sha256", ALERT.handshakeFailure);
  }
  if (hello.servername === null) throw new Refusal("no server_name", ALERT.unrecognizedName);
  const cert = lookup(hello.servername);
  if (cert === null) {
    throw new Refusal(`no TLS-ALPN-01 challenge for ${hello.servername}`, ALERT.unrecognizedName);
  }
  return cert;
}

/** Buffers what the socket sends; `more()` waits for the next chunk. */
class SocketInput {
  buffered: Uint8Array;
  #wake: (() => void) | null = null;
  #error: string | null = null;
  readonly #onData = (chunk: Uint8Array) => {
    if (this.buffered.length + chunk.length > 64 * 1024) return this.fail("client sent too much");
    this.buffered = concatBytes([this.buffered, chunk]);
    this.#wake?.();
  };
  readonly #onEnd = () => this.fail("connection closed by the client");
  readonly #onError = (e: Error) => this.fail(e.message);

  constructor(readonly socket: Duplex, head: Uint8Array = new Uint8Array(0)) {
    this.buffered = head;
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("close", this.#onEnd);
    socket.on("error", this.#onError);
  }

  fail(reason: string): void {
    this.#error ??= reason;
    this.#wake?.();
  }

  consume(n: number): void {
    this.buffered = this.buffered.subarray(n);
  }

  more(): Promise<void> {
    if (this.#error !== null) return Promise.reject(new Refusal(this.#error));
    return new Promise((resolve, reject) => {
      this.#wake = () => {
        this.#wake = null;
        if (this.#error !== null) reject(new Refusal(this.#error));
        else resolve();
      };
    });
  }

  close(): void {
    this.socket.off("data", this.#onData);
    this.socket.off("end", this.#onEnd);
    this.socket.off("close", this.#onEnd);
    this.socket.off("error", this.#onError);
  }
}

// --- key schedule (RFC 8446 §7.1, SHA-256) ---

const sha256 = (b: Uint8Array) => new Uint8Array(createHash("sha256").update(b).digest());
const hmac = (key: Uint8Array, data: Uint8Array) =>
  new Uint8Array(createHmac("sha256", key).update(data).digest());

/** HKDF-Expand (RFC 5869) for up to 32 bytes: T(1) suffices. */
function expandLabel(secret: Uint8Array, label: string, context: Uint8Array, length: number) {
  const full = new TextEncoder().encode(`tls13 ${label}`);
  const info = concatBytes([
    Uint8Array.of(length >> 8, length & 0xff, full.length),
    full,
    Uint8Array.of(context.length),
    context,
    Uint8Array.of(1),
  ]);
  return hmac(secret, info).subarray(0, length);
}

function deriveSecret(secret: Uint8Array, label: string, transcript: Uint8Array[]): Uint8Array {
  return expandLabel(secret, label, sha256(concatBytes(transcript)), 32);
}

/** One direction's record protection: AES-128-GCM with the per-record nonce of §5.3. */
class RecordKey {
  readonly key: Uint8Array;
  readonly iv: Uint8Array;
  seq = 0n;
  constructor(secret: Uint8Array) {
    this.key = expandLabel(secret, "key", new Uint8Array(0), 16);
    this.iv = expandLabel(secret, "iv", new Uint8Array(0), 12);
  }
  nonce(): Uint8Array {
    const n = this.iv.slice();
    let s = this.seq++;
    for (let i = 11; i >= 4; i--) {
      n[i]! ^= Number(s & 0xffn);
      s >>= 8n;
    }
    return n;
  }
}

function seal(k: RecordKey, type: number, content: Uint8Array): Uint8Array {
  const plain = concatBytes([content, Uint8Array.of(type)]);
  const header = Uint8Array.of(
    0x17,
    0x03,
    0x03,
    (plain.length + 16) >> 8,
    (plain.length + 16) & 0xff,
  );
  const c = createCipheriv("aes-128-gcm", k.key, k.nonce());
  c.setAAD(header);
  const body = concatBytes([c.update(plain), c.final(), c.getAuthTag()]);
  return concatBytes([header, body]);
}

function open(
  k: RecordKey,
  header: Uint8Array,
  body: Uint8Array,
): { type: number; content: Uint8Array } {
  if (body.length < 17) throw new Refusal("encrypted record too short", ALERT.decodeError);
  const d = createDecipheriv("aes-128-gcm", k.key, k.nonce());
  d.setAAD(header);
  d.setAuthTag(body.subarray(body.length - 16));
  let plain: Uint8Array;
  try {
    plain = concatBytes([d.update(body.subarray(0, body.length - 16)), d.final()]);
  } catch {
    throw new Refusal("record failed to decrypt", ALERT.decryptError);
  }
  let end = plain.length;
  while (end > 0 && plain[end - 1] === 0) end--;
  if (end === 0) throw new Refusal("record without a content type", ALERT.decodeError);
  return { type: plain[end - 1]!, content: plain.subarray(0, end - 1) };
}

function handshakeMessage(type: number, body: Uint8Array): Uint8Array {
  const n = body.length;
  return concatBytes([Uint8Array.of(type, n >> 16, (n >> 8) & 0xff, n & 0xff), body]);
}

const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
const vec16 = (b: Uint8Array) => concatBytes([u16(b.length), b]);
const ext = (type: number, body: Uint8Array) => concatBytes([u16(type), vec16(body)]);

/** SHA-256("HelloRetryRequest"): the random that marks a ServerHello as HRR (§4.1.3). */
const HRR_RANDOM = sha256(new TextEncoder().encode("HelloRetryRequest"));
/** A ChangeCipherSpec record for middlebox compatibility (Appendix D.4). */
const CCS = Uint8Array.of(0x14, 0x03, 0x03, 0x00, 0x01, 0x01);

function plainRecord(message: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.of(0x16, 0x03, 0x03), u16(message.length), message]);
}

function serverHelloMessage(random: Uint8Array, sessionId: Uint8Array, exts: Uint8Array[]) {
  return handshakeMessage(
    2,
    concatBytes([
      u16(0x0303),
      random,
      Uint8Array.of(sessionId.length),
      sessionId,
      u16(AES_128_GCM_SHA256),
      Uint8Array.of(0),
      vec16(concatBytes(exts)),
    ]),
  );
}

/** The group of a key share berth can use, if the hello has one. */
function usableShare(hello: ClientHello): number | undefined {
  if (hello.keyShares.get(X25519)?.length === 32) return X25519;
  const p = hello.keyShares.get(SECP256R1);
  if (p?.length === 65 && p[0] === 4) return SECP256R1;
  return undefined;
}

/** The server's key share and the shared secret, for the first group berth supports. */
function keyExchange(hello: ClientHello): { group: number; share: Uint8Array; secret: Uint8Array } {
  const x = hello.keyShares.get(X25519);
  if (x !== undefined && x.length === 32) {
    const { privateKey, publicKey } = generateKeyPairSync("x25519");
    const peer = createPublicKey({
      key: { kty: "OKP", crv: "X25519", x: Buffer.from(x).toString("base64url") },
      format: "jwk",
    });
    const share = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
    const secret = diffieHellman({ privateKey, publicKey: peer });
    return { group: X25519, share: new Uint8Array(share), secret: new Uint8Array(secret) };
  }
  const p = hello.keyShares.get(SECP256R1);
  if (p !== undefined && p.length === 65 && p[0] === 4) {
    const ecdh = createECDH("prime256v1");
    const share = ecdh.generateKeys();
    let secret: Buffer;
    try {
      secret = ecdh.computeSecret(p);
    } catch {
      throw new Refusal("bad P-256 key share", ALERT.handshakeFailure);
    }
    return { group: SECP256R1, share: new Uint8Array(share), secret: new Uint8Array(secret) };
  }
  throw new Refusal("no X25519 or P-256 key share", ALERT.handshakeFailure);
}

async function handshake(
  socket: Duplex,
  input: SocketInput,
  firstHello: ClientHello,
  cert: { certPem: string; keyPem: string },
): Promise<void> {
  const der = new Uint8Array(new X509Certificate(cert.certPem).raw);
  const key = createPrivateKey(cert.keyPem);
  let hello = firstHello;
  const first = firstHello;
  let transcript: Uint8Array[] = [hello.message];
  let ccsSent = false;
  if (usableShare(hello) === undefined) {
    // HelloRetryRequest (RFC 8446 §4.1.4): ask for a key share of a group berth supports.
    const group = hello.groups.includes(X25519)
      ? X25519
      : hello.groups.includes(SECP256R1)
      ? SECP256R1
      : undefined;
    if (group === undefined) {
      throw new Refusal("client supports neither X25519 nor P-256", ALERT.handshakeFailure);
    }
    const hrr = serverHelloMessage(HRR_RANDOM, hello.sessionId, [
      ext(43, u16(TLS13)),
      ext(51, u16(group)),
    ]);
    ccsSent = hello.sessionId.length > 0;
    socket.write(concatBytes([plainRecord(hrr), ...(ccsSent ? [CCS] : [])]));
    hello = await nextHello(input, true);
    if (
      hello.servername !== first.servername || !hello.alpn.includes(ACME_TLS_ALPN) ||
      hello.keyShares.size !== 1 || !hello.keyShares.has(group) ||
      !hello.cipherSuites.includes(AES_128_GCM_SHA256)
    ) {
      throw new Refusal(
        "second ClientHello does not follow the HelloRetryRequest",
        ALERT.handshakeFailure,
      );
    }
    // The first hello enters the transcript as its hash (RFC 8446 §4.4.1).
    transcript = [
      concatBytes([Uint8Array.of(254, 0, 0, 32), sha256(first.message)]),
      hrr,
      hello.message,
    ];
  }
  const kx = keyExchange(hello);
  const serverHello = serverHelloMessage(new Uint8Array(randomBytes(32)), hello.sessionId, [
    ext(43, u16(TLS13)),
    ext(51, concatBytes([u16(kx.group), vec16(kx.share)])),
  ]);
  transcript.push(serverHello);

  const zeros = new Uint8Array(32);
  const early = hmac(zeros, zeros); // HKDF-Extract(0, 0)
  const hs = hmac(deriveSecret(early, "derived", []), kx.secret);
  const clientHs = deriveSecret(hs, "c hs traffic", transcript);
  const serverHs = deriveSecret(hs, "s hs traffic", transcript);
  const serverKey = new RecordKey(serverHs);
  const clientKey = new RecordKey(clientHs);

  const alpn = new TextEncoder().encode(ACME_TLS_ALPN);
  const encryptedExtensions = handshakeMessage(
    8,
    vec16(ext(16, vec16(concatBytes([Uint8Array.of(alpn.length), alpn])))),
  );
  const certEntry = concatBytes([
    Uint8Array.of(der.length >> 16, (der.length >> 8) & 0xff, der.length & 0xff),
    der,
    u16(0),
  ]);
  const certificate = handshakeMessage(
    11,
    concatBytes([
      Uint8Array.of(0), // certificate_request_context
      Uint8Array.of(
        certEntry.length >> 16,
        (certEntry.length >> 8) & 0xff,
        certEntry.length & 0xff,
      ),
      certEntry,
    ]),
  );
  transcript.push(encryptedExtensions, certificate);
  const signed = concatBytes([
    new Uint8Array(64).fill(0x20),
    new TextEncoder().encode("TLS 1.3, server CertificateVerify"),
    Uint8Array.of(0),
    sha256(concatBytes(transcript)),
  ]);
  const signature = new Uint8Array(sign("sha256", signed, key)); // DER ECDSA-Sig-Value
  const certificateVerify = handshakeMessage(
    15,
    concatBytes([u16(ECDSA_P256_SHA256), vec16(signature)]),
  );
  transcript.push(certificateVerify);
  const serverFinished = handshakeMessage(
    20,
    hmac(expandLabel(serverHs, "finished", new Uint8Array(0), 32), sha256(concatBytes(transcript))),
  );
  transcript.push(serverFinished);
  const expectedClientFinished = hmac(
    expandLabel(clientHs, "finished", new Uint8Array(0), 32),
    sha256(concatBytes(transcript)),
  );

  const flight = [
    plainRecord(serverHello),
    ...(hello.sessionId.length > 0 && !ccsSent ? [CCS] : []),
    seal(
      serverKey,
      0x16,
      concatBytes([encryptedExtensions, certificate, certificateVerify, serverFinished]),
    ),
  ];
  socket.write(concatBytes(flight));

  // The client's flight: an optional ChangeCipherSpec, then its encrypted Finished.
  let pending: Uint8Array = new Uint8Array(0);
  for (;;) {
    while (input.buffered.length < 5) await input.more();
    const h = input.buffered.subarray(0, 5);
    const len = (h[3]! << 8) | h[4]!;
    if (len > 16384 + 256) throw new Refusal("record too long", ALERT.decodeError);
    while (input.buffered.length < 5 + len) await input.more();
    const header = input.buffered.slice(0, 5);
    const body = input.buffered.slice(5, 5 + len);
    input.consume(5 + len);
    if (header[0] === 0x14) continue; // middlebox-compatibility ChangeCipherSpec
    if (header[0] === 0x15) throw new Refusal(`client sent alert ${body[1] ?? "?"}`);
    if (header[0] !== 0x17) throw new Refusal("unexpected plaintext record", ALERT.decodeError);
    const rec = open(clientKey, header, body);
    if (rec.type === 0x15) throw new Refusal(`client sent alert ${rec.content[1] ?? "?"}`);
    if (rec.type !== 0x16) {
      throw new Refusal("unexpected record before Finished", ALERT.decodeError);
    }
    pending = concatBytes([pending, rec.content]);
    if (pending.length < 4) continue;
    const n = (pending[1]! << 16) | (pending[2]! << 8) | pending[3]!;
    if (pending.length < 4 + n) continue;
    if (pending[0] !== 20 || n !== 32) {
      throw new Refusal("expected the client's Finished", ALERT.decodeError);
    }
    if (!timingSafeEqual(pending.subarray(4, 36), expectedClientFinished)) {
      throw new Refusal("client Finished does not verify", ALERT.decryptError);
    }
    return;
  }
}
