/**
 * Test helpers for the TLS transport: certificates issued with src/pki like the cluster's own (a
 * CA and member certificates: CN and DNS name = node, URI `berth://<clusterId>/node/<node>`), a
 * raw TLS client speaking frames, and a TCP pass-through that records the bytes on the wire.
 * Test code only.
 *
 * @module
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { decodeBody, encodeBody, FrameReader, joinFrames } from "./_frame.ts";
import { createCa, generateKeyPair, issueCertificate } from "../pki/mod.ts";
import type { TlsCredentials } from "./_transport_shared.ts";

export interface TestCa {
  caPem: string;
  /** A fresh key and a certificate for `node` (valid from `now` for one hour), signed by this CA. */
  issue(node: string, o?: { clusterId?: string; now?: Date }): TlsCredentials & { serial: string };
}

/** A new test CA (ECDSA P-256) of cluster `clusterId`, valid from `now` for ten years. */
export function testCa(clusterId = "c1", now = new Date()): TestCa {
  const ca = createCa({ clusterId, now });
  return {
    caPem: ca.certPem,
    issue(node, o = {}) {
      const keys = generateKeyPair();
      const cert = issueCertificate({
        ca,
        publicKeySpkiDer: keys.publicKeySpkiDer,
        node,
        clusterId: o.clusterId ?? clusterId,
        now: o.now ?? new Date(),
        ttlMs: 3_600_000,
      });
      return {
        keyPem: keys.privateKeyPem,
        certPem: cert.certPem,
        caPem: ca.certPem,
        serial: cert.serial,
      };
    },
  };
}

/**
 * A client speaking raw frames over TLS, anonymous or with `creds`, from `localAddress` when
 * given. `secure` settles once the TLS handshake is done (true) or the socket closed before.
 */
export class RawTls {
  readonly frames: unknown[] = [];
  closed = false;
  readonly secure: Promise<boolean>;
  readonly #socket: Socket;
  readonly #done: Promise<void>;

  constructor(port: number, o: { localAddress?: string; creds?: TlsCredentials } = {}) {
    const reader = new FrameReader(1 << 20);
    this.#socket = tlsConnect({
      host: "127.0.0.1",
      port,
      rejectUnauthorized: false,
      ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
      ...(o.creds === undefined ? {} : { key: o.creds.keyPem, cert: o.creds.certPem }),
    });
    const socket = this.#socket;
    this.secure = new Promise((r) => {
      socket.once("secureConnect", () => r(true));
      socket.once("close", () => r(false));
    });
    this.#socket.on("error", () => {});
    this.#socket.on("data", (c: Uint8Array) => {
      reader.push(c, (b) => {
        this.frames.push(decodeBody(b));
        return true;
      });
    });
    this.#done = new Promise((r) =>
      this.#socket.on("close", () => {
        this.closed = true;
        r();
      })
    );
  }

  frame(v: unknown): void {
    this.#socket.write(joinFrames([encodeBody(v)]));
  }

  /** Writes raw bytes (e.g. a bare frame header). */
  raw(bytes: Uint8Array): void {
    this.#socket.write(bytes);
  }

  close(): Promise<void> {
    this.#socket.destroy();
    return this.#done;
  }
}

/** A TCP pass-through to `port` that records every byte, both directions. */
export async function recordingProxy(
  port: number,
): Promise<{ port: number; bytes: () => string; close: () => Promise<void> }> {
  const chunks: Uint8Array[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect({ host: "127.0.0.1", port });
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from);
      from.on("data", (d: Uint8Array) => {
        chunks.push(new Uint8Array(d));
        to.write(d);
      });
      from.on("error", () => {});
      from.on("close", () => to.destroy());
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as { port: number }).port,
    bytes: () => chunks.map((c) => new TextDecoder("latin1").decode(c)).join(""),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
