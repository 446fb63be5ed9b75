/**
 * DNS over TCP (RFC 7766): 2-byte length framing, several queries per connection, answers
 * possibly out of order (forwarded ones come later), an idle timeout, bounded connections,
 * pipeline and unsent bytes. Shared by DnsServer and the DNS worker threads (several of which
 * listen on one port with `reusePort`).
 *
 * @module
 */
import { createServer, type Server, type Socket } from "node:net";
import { errorText } from "../lib/error_text.ts";
import { ByteSlab } from "../lib/slab.ts";
import { HEADER_BYTES } from "./wire.ts";
import { TrackedSet } from "../lib/drain.ts";

/** Most open TCP connections; more are closed at once. */
export const TCP_CONNECTIONS_MAX = 256;
/** A TCP connection with no query for this long is closed. */
export const TCP_IDLE_TIMEOUT_MS = 10_000;
/** Largest query accepted over TCP; a bigger length prefix closes the connection. */
export const TCP_QUERY_BYTES_MAX = 4096;
/** Most forwarded queries awaiting answers per TCP connection; reading pauses beyond. */
export const TCP_PIPELINE_MAX = 64;
/** Unsent response bytes after which a TCP client that does not read is dropped. */
export const TCP_WRITE_BYTES_MAX = 1024 * 1024;

/** Where framed responses are laid out (src/lib/slab.ts: a fresh array costs ~1 µs). */
const slab = new ByteSlab();

/** Answers one message (Answerer.answer's shape): bytes, a promise of them, or null to drop. */
export type AnswerFn = (
  bytes: Uint8Array,
  tcp: boolean,
) => Uint8Array | Promise<Uint8Array | null> | null;

/** The open connections of one listener, so close() can drop them and drain() wait for them. */
export class TcpConnections {
  readonly #open = new TrackedSet<Socket>();
  /** Each connection's forwarded answers not sent yet. */
  readonly #waiting = new WeakMap<Socket, { n: number }>();
  readonly #answer: AnswerFn;
  #draining = false;

  constructor(answer: AnswerFn) {
    this.#answer = answer;
  }

  get size(): number {
    return this.#open.size;
  }

  /** Forwarded answers not sent yet, over every connection. */
  get waiting(): number {
    let n = 0;
    for (const c of this.#open) n += this.#waiting.get(c)?.n ?? 0;
    return n;
  }

  /**
   * Graceful shutdown: no new connection or query is taken; a connection closes at once when it
   * has no answer to send, else once they are sent. `empty()` tells when all are closed.
   */
  drain(): void {
    this.#draining = true;
    for (const c of this.#open) this.#endIfIdle(c);
  }

  /** Resolves once no connection is open. */
  empty(): Promise<void> {
    return this.#open.empty();
  }

  #endIfIdle(socket: Socket): void {
    if (this.#draining && (this.#waiting.get(socket)?.n ?? 0) === 0) socket.end();
  }

  /** Destroys every open connection. */
  closeAll(): void {
    for (const c of this.#open) c.destroy();
    this.#open.clear();
  }

  /** Serves one accepted connection until it closes. */
  accept(socket: Socket): void {
    if (this.#draining || this.#open.size >= TCP_CONNECTIONS_MAX) {
      socket.destroy();
      return;
    }
    this.#open.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(TCP_IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.#open.delete(socket));
    let buffered: Uint8Array = new Uint8Array(0);
    const waiting = { n: 0 };
    this.#waiting.set(socket, waiting);
    const send = (out: Uint8Array | null) => {
      if (out === null || socket.destroyed) return;
      if (socket.writableLength > TCP_WRITE_BYTES_MAX) {
        socket.destroy();
        return;
      }
      const framed = slab.alloc(2 + out.length);
      framed[0] = out.length >>> 8;
      framed[1] = out.length & 0xff;
      framed.set(out, 2);
      socket.write(framed);
    };
    socket.on("data", (chunk: Uint8Array) => {
      if (this.#draining) return; // no new query; the answers under way are sent
      buffered = buffered.length === 0 ? chunk : join(buffered, chunk);
      while (buffered.length >= 2) {
        const len = (buffered[0]! << 8) | buffered[1]!;
        if (len < HEADER_BYTES || len > TCP_QUERY_BYTES_MAX) {
          socket.destroy();
          return;
        }
        if (buffered.length < 2 + len) break;
        const msg = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        const r = this.#answer(msg, true);
        if (!(r instanceof Promise)) {
          send(r);
          continue;
        }
        if (++waiting.n >= TCP_PIPELINE_MAX) socket.pause();
        r.then((out) => {
          if (waiting.n-- === TCP_PIPELINE_MAX) socket.resume();
          send(out);
          this.#endIfIdle(socket);
        });
      }
    });
  }
}

/**
 * Listens on TCP host:port (`reusePort`: several listeners, in several threads, share the port
 * and the kernel spreads connections over them). Rejects with the listen error.
 */
export function listenTcp(
  host: string,
  port: number,
  opts: { onConnection: (s: Socket) => void; reusePort?: boolean },
): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const server = createServer({ pauseOnConnect: false }, opts.onConnection);
    server.once("error", reject);
    server.listen({ host, port, reusePort: opts.reusePort ?? false }, () => {
      server.off("error", reject);
      server.on("error", (e) => console.error(`dns: TCP server error: ${errorText(e)}`));
      resolve(server);
    });
  });
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
