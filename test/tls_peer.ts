/**
 * A hand-driven TLS peer for tests: connects to a member's cluster port with some member's key
 * and certificate (files in a data directory), says hello as any member id, and sends one
 * request. What a member answers shows what it lets in (a stolen or misused certificate).
 *
 * @module
 */
import { connect, type TLSSocket } from "node:tls";
import { Packr } from "msgpackr";

const packr = new Packr({ useRecords: false });

export interface TlsPeerHello {
  clusterId: string;
  nodeId: number;
  address: string;
}

/** A connection to `addr` presenting the key and certificate in `dataDir`. */
export class TlsPeer {
  readonly #socket: TLSSocket;
  #buf = new Uint8Array(0);
  #frames: Record<string, unknown>[] = [];
  #closed = false;
  #wake: (() => void) | undefined;

  private constructor(socket: TLSSocket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      const next = new Uint8Array(this.#buf.byteLength + chunk.byteLength);
      next.set(this.#buf);
      next.set(chunk, this.#buf.byteLength);
      this.#buf = next;
      while (this.#buf.byteLength >= 4) {
        const len = new DataView(this.#buf.buffer, this.#buf.byteOffset).getUint32(0);
        if (this.#buf.byteLength < 4 + len) break;
        this.#frames.push(packr.unpack(this.#buf.subarray(4, 4 + len)));
        this.#buf = this.#buf.slice(4 + len);
      }
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on("error", () => {});
  }

  /** Without `dataDir`: anonymous (no client certificate, the server's not checked). */
  static connect(addr: string, dataDir?: string): Promise<TlsPeer> {
    const [host, port] = addr.split(":");
    const socket = connect({
      host: host!,
      port: Number(port),
      ...(dataDir === undefined ? { rejectUnauthorized: false } : {
        key: Deno.readTextFileSync(`${dataDir}/node.key`),
        cert: Deno.readTextFileSync(`${dataDir}/node.crt`),
        ca: Deno.readTextFileSync(`${dataDir}/ca.crt`),
      }),
      checkServerIdentity: () => undefined,
      minVersion: "TLSv1.3",
    });
    return new Promise((resolve, reject) => {
      socket.once("secureConnect", () => resolve(new TlsPeer(socket)));
      socket.once("error", reject);
    });
  }

  send(frame: unknown): void {
    const body = packr.pack(frame);
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, body.byteLength);
    this.#socket.write(head);
    this.#socket.write(body);
  }

  /** The next frame from the member, or null once it closed the connection. */
  async next(): Promise<Record<string, unknown> | null> {
    while (this.#frames.length === 0 && !this.#closed) {
      await new Promise<void>((r) => this.#wake = r);
    }
    return this.#frames.shift() ?? null;
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** Says hello as `hello` with the certificate in `dataDir`; the member's first answer. */
export async function helloWith(
  addr: string,
  dataDir: string,
  hello: TlsPeerHello,
): Promise<Record<string, unknown> | null> {
  const peer = await TlsPeer.connect(addr, dataDir);
  try {
    peer.send({ k: "hello", v: 1, ...hello });
    return await peer.next();
  } finally {
    peer.close();
  }
}
