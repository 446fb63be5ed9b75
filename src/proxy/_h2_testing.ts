/**
 * Helpers for the proxy's HTTP/2 tests: a certificate for `web.test` and 127.0.0.1, a TLS
 * listener that hands `h2` connections to an `H2Frontend`, a `node:http2` client request, h2c
 * instances (`h2cServer`, `proxiedH2cServer` behind a PROXY header) with an `h2cTarget` and
 * `privateConn` for the H2cSessions pool, and an instance that accepts TCP and never speaks
 * (`silentServer`).
 *
 * @module
 */
import http2 from "node:http2";
import tls from "node:tls";
import net, { type AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { createCa, generateKeyPair, issueCertificate } from "../pki/mod.ts";
import { H2Frontend, type H2FrontendOptions } from "./h2_frontend.ts";
import { X509Certificate } from "node:crypto";
import type { HttpProxy, ProxyOptions } from "./http_proxy.ts";
import type { ServedCert } from "./sni_index.ts";
import type { Target } from "./balancer.ts";
import { type TestStore, withProxy } from "./_testing.ts";

export interface TestTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

let cached: TestTls | null = null;

/** A CA and a server certificate for `web.test`, `localhost` and 127.0.0.1 (one per process). */
export function testTls(): TestTls {
  if (cached !== null) return cached;
  const now = new Date();
  const ca = createCa({ clusterId: "h2-test", now });
  const keys = generateKeyPair();
  const { certPem } = issueCertificate({
    ca,
    publicKeySpkiDer: keys.publicKeySpkiDer,
    node: "web.test",
    clusterId: "h2-test",
    now,
    ttlMs: 3_600_000,
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    serverOnly: true,
  });
  cached = { caPem: ca.certPem, certPem, keyPem: keys.privateKeyPem };
  return cached;
}

/** A TLS listener on 127.0.0.1 offering h2 and http/1.1; h2 connections go to `serve`. */
export async function h2Listener(
  serve: (socket: tls.TLSSocket) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const t = testTls();
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({
    key: t.keyPem,
    cert: t.certPem,
    ALPNProtocols: ["h2", "http/1.1"],
    allowHalfOpen: true, // as the proxy's HTTPS listener
  }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    if (socket.alpnProtocol === "h2") serve(socket);
    else socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Runs `fn` with an `H2Frontend` behind a TLS listener on a free port; closes both after. */
export async function withH2(
  opts: H2FrontendOptions,
  fn: (port: number, h2: H2Frontend) => void | Promise<void>,
): Promise<void> {
  const h2 = new H2Frontend({ log: () => {}, ...opts });
  const listener = await h2Listener((socket) =>
    h2.serve(socket, {
      secure: true,
      alpn: "h2",
      servername: (socket as tls.TLSSocket & { servername?: string }).servername || undefined,
    })
  );
  try {
    await fn(listener.port, h2);
  } finally {
    await h2.close();
    await listener.close();
  }
}

/** A `node:http2` client session to the test listener, trusting the test CA. */
export function h2Connect(port: number): http2.ClientHttp2Session {
  const client = http2.connect(`https://127.0.0.1:${port}`, {
    ca: testTls().caPem,
    servername: "web.test",
  });
  client.on("error", () => {});
  return client;
}

export interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | null;
  /** The stream's RST_STREAM code (0 when it ended normally). */
  rstCode: number;
}

/** One request on `client`; resolves when its response ended or its stream was reset. */
export function h2Request(
  client: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Uint8Array | string,
): Promise<H2Answer> {
  return new Promise((resolve) => {
    const req = client.request(headers, { endStream: body === undefined });
    const a: H2Answer = {
      status: 0,
      headers: {},
      body: Buffer.alloc(0),
      trailers: null,
      rstCode: 0,
    };
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      a.status = Number(h[":status"]);
      a.headers = h;
    });
    req.on("trailers", (t) => a.trailers = t);
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("error", () => {});
    // 'end' for a response read whole (Deno's client may hold 'close' back while a request body
    // the server refused is still queued), 'close' for a reset one.
    const done = () => {
      a.body = Buffer.concat(chunks);
      a.rstCode = req.rstCode ?? 0;
      resolve(a);
    };
    req.once("end", done);
    req.once("close", done);
    if (body !== undefined) req.end(body);
  });
}

/** HTTP/2 frame types the raw client reads and writes (RFC 9113 §6). */
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7 } as const;

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** One frame on the wire. */
export function frame(type: number, flags: number, stream: number, payload?: Uint8Array): Buffer {
  const head = Buffer.alloc(9);
  const body = payload ?? new Uint8Array();
  head.writeUIntBE(body.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, body]);
}

function hpackString(text: string): Buffer {
  const b = Buffer.from(text, "latin1");
  if (b.length < 127) return Buffer.concat([Buffer.from([b.length]), b]);
  const len: number[] = [127];
  let n = b.length - 127;
  while (n >= 128) {
    len.push((n & 127) | 128);
    n >>= 7;
  }
  len.push(n);
  return Buffer.concat([Buffer.from(len), b]);
}

/**
 * A request's header block in HPACK without compression: `:method GET` and `:scheme https`
 * from the static table, then `:path`, `:authority` and `extra` as literal fields.
 */
export function requestBlock(
  path: string,
  authority: string,
  extra: [string, string][] = [],
): Buffer {
  const parts = [Buffer.from([0x82, 0x87, 0x04]), hpackString(path), Buffer.from([0x01])];
  parts.push(hpackString(authority));
  for (const [name, value] of extra) {
    parts.push(Buffer.from([0]), hpackString(name), hpackString(value));
  }
  return Buffer.concat(parts);
}

/** HEADERS with END_HEADERS and END_STREAM: a whole GET request. */
export function getFrame(stream: number, block: Buffer): Buffer {
  return frame(FRAME.HEADERS, 0x5, stream, block);
}

export function rstFrame(stream: number, code: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, stream, p);
}

/**
 * A client speaking raw HTTP/2 frames over TLS (for what `node:http2`'s client will not do:
 * ignore the server's limits, reset streams in the same write that opens them). It sends the
 * preface and an empty SETTINGS, and acknowledges the server's SETTINGS.
 */
export class RawH2Client {
  readonly frames: Frame[] = [];
  closed = false;
  readonly #socket: tls.TLSSocket;
  #buf = Buffer.alloc(0);

  private constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    socket.on("error", () => {});
    socket.on("close", () => this.closed = true);
    socket.on("data", (d: Buffer) => this.#read(d));
  }

  static async connect(port: number): Promise<RawH2Client> {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "web.test",
      ca: testTls().caPem,
      ALPNProtocols: ["h2"],
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    const c = new RawH2Client(socket);
    c.send(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"), frame(FRAME.SETTINGS, 0, 0));
    return c;
  }

  send(...wire: Buffer[]): void {
    if (!this.closed) this.#socket.write(Buffer.concat(wire));
  }

  /** The GOAWAY frame's error code, if one came. */
  get goawayCode(): number | null {
    const g = this.frames.find((f) => f.type === FRAME.GOAWAY);
    return g === undefined ? null : g.payload.readUInt32BE(4);
  }

  /** RST_STREAM codes received, by stream. */
  resets(): Map<number, number> {
    const out = new Map<number, number>();
    for (const f of this.frames) {
      if (f.type === FRAME.RST_STREAM) out.set(f.stream, f.payload.readUInt32BE(0));
    }
    return out;
  }

  /** Whether stream `id`'s response ended (a frame with END_STREAM). */
  ended(id: number): boolean {
    return this.frames.some((f) => f.stream === id && (f.flags & 1) === 1 && f.type <= 1);
  }

  /** Streams that got a HEADERS frame (a response). */
  answered(): Set<number> {
    return new Set(this.frames.filter((f) => f.type === FRAME.HEADERS).map((f) => f.stream));
  }

  /** Ends the connection (TLS close_notify, then FIN), as a client process exiting does. */
  end(): void {
    this.#socket.end();
  }

  close(): void {
    this.#socket.destroy();
  }

  #read(d: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, d]);
    while (this.#buf.length >= 9) {
      const len = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + len) return;
      const f: Frame = {
        type: this.#buf[3]!,
        flags: this.#buf[4]!,
        stream: this.#buf.readUInt32BE(5) & 0x7fffffff,
        payload: this.#buf.subarray(9, 9 + len),
      };
      this.#buf = this.#buf.subarray(9 + len);
      this.frames.push(f);
      if (f.type === FRAME.SETTINGS && (f.flags & 1) === 0) {
        this.send(frame(FRAME.SETTINGS, 1, 0));
      }
    }
  }
}

/** The test certificate as the HTTPS listener serves it (the default: IP clients get it). */
export function servedTestCert(): ServedCert {
  const t = testTls();
  const leaf = new X509Certificate(t.certPem);
  return {
    name: "web.test",
    names: ["web.test", "localhost"],
    certPem: t.certPem,
    keyPem: t.keyPem,
    isDefault: true,
    fingerprint: leaf.fingerprint256.replaceAll(":", "").toLowerCase(),
    notAfter: leaf.validToDate.getTime(),
  };
}

/**
 * Runs `fn` with an HttpProxy over `ts` serving HTTPS with the test certificate (`port`: its
 * HTTPS listener, where HTTP/2 clients land on the proxy's H2Frontend).
 */
export async function withH2Proxy(
  ts: TestStore,
  over: Partial<ProxyOptions>,
  fn: (port: number, proxy: HttpProxy) => void | Promise<void>,
): Promise<void> {
  const tls = { listen: { host: "127.0.0.1", port: 0 }, certs: () => [servedTestCert()] };
  await withProxy(
    ts,
    { tls, h2: true, ...over },
    (_plain, proxy) => fn(proxy.httpsAddress.port, proxy),
  );
}

/** A TCP server that accepts and says nothing; counts the connections open at its end. */
export async function silentServer() {
  let open = 0;
  let total = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    open++;
    total++;
    sockets.add(s);
    s.on("error", () => {});
    s.once("close", () => {
      open--;
      sockets.delete(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    open: () => open,
    total: () => total,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Resolves once `cond()` holds (checked every 20 ms); fails the test after 5 s. */
export async function until(cond: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !cond(); waited += 20) {
    if (waited >= 5_000) throw new Error(`not within 5 s: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A test h2c instance: its port and open sessions; close() destroys them and stops listening. */
export interface H2cServer {
  port: number;
  sessions: Set<http2.ServerHttp2Session>;
  close(): Promise<void>;
}

/**
 * A `node:http2` cleartext (h2c) instance on 127.0.0.1 with `settings`, handing each stream to
 * `onStream` (stream errors ignored); without it streams are left unanswered.
 */
export async function h2cServer(
  onStream?: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
  settings?: http2.Settings,
): Promise<H2cServer> {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  if (onStream !== undefined) {
    server.on("stream", (stream, headers) => {
      stream.on("error", () => {});
      onStream(stream, headers);
    });
  }
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    sessions,
    close: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The pool's target "a" at 127.0.0.1:`port`. */
export function h2cTarget(port: number): Target {
  return { id: "a", address: "127.0.0.1", port, weight: 1, key: `a|127.0.0.1|${port}` };
}

/** A private connection (PROXY protocol) for `client`: the header's bytes are its key. */
export function privateConn(client: object, header: string) {
  const bytes = new TextEncoder().encode(header);
  return { conn: { key: header, header: bytes }, client };
}

/**
 * An h2c instance behind a v1 PROXY header: a connection's first line is the header when it
 * starts with one (kept in `headers`), the rest HTTP/2; `total` counts the connections accepted.
 */
export async function proxiedH2cServer() {
  const headers: string[] = [];
  let total = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    total++;
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n");
      if (end < 0) return;
      s.off("data", onData);
      s.pause();
      // A connection without a header (a shared session) is served as it comes.
      const proxied = buf.toString("latin1", 0, 6) === "PROXY ";
      if (proxied) headers.push(buf.toString("latin1", 0, end + 2));
      const rest = proxied ? buf.subarray(end + 2) : buf;
      if (rest.length > 0) s.unshift(rest);
      http2.performServerHandshake(s).on("error", () => {});
      s.resume();
    };
    s.on("data", onData);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    headers,
    total: () => total,
    close: async () => {
      // Reset: Deno's node:http2 may keep a destroyed socket open (h2c_session.ts).
      for (const s of sockets) s.resetAndDestroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
