/**
 * One HTTP/2 cleartext connection to an instance (`H2cSession`), as h2c_sessions.ts pools them.
 *
 * - The connection is opened by `openH2cSession` through `createConnection`, so the session's
 *   TCP socket is ours to keep (`socket`); a private one (PROXY protocol) writes its header
 *   before the HTTP/2 preface.
 * - It counts as connected once the instance's SETTINGS have arrived (the `remoteSettings`
 *   event), not when TCP connects: an instance that accepts and then says nothing (hung, or
 *   overloaded with a full backlog the kernel answers for) is still connecting, so the connect
 *   timeout covers it.
 * - `kill()` ends it at once and resets its socket. Deno's node:http2 (2.9.6) leaves the TCP
 *   connection of a session whose peer never sent SETTINGS open after `session.close()`,
 *   `session.destroy()` and even `socket.destroy()`; only `socket.resetAndDestroy()`, called
 *   before the session has finished closing, frees it.
 *
 * @module
 */
import http2 from "node:http2";
import net from "node:net";
import type { Target } from "./balancer.ts";

const noop = () => {};

/** One HTTP/2 connection to a target. */
export class H2cSession {
  readonly session: http2.ClientHttp2Session;
  /** Its TCP connection (module doc: `kill`). */
  readonly socket: net.Socket;
  /** Streams open on it now. */
  streams = 0;
  /** Streams ever opened on it (more than 1: it carried requests before the current one). */
  started = 0;
  /** The instance's SETTINGS arrived (module doc). */
  connected = false;
  /** Takes no new streams (failed, closing, GOAWAY received). */
  retired = false;
  /** Counted against its target's private sessions (h2c_sessions.ts), until it retires. */
  counted = false;
  /** When its last stream ended (ms). */
  idleSince: number;

  constructor(session: http2.ClientHttp2Session, socket: net.Socket, now: number) {
    this.session = session;
    this.socket = socket;
    this.idleSince = now;
  }

  /** Whether it can take one more stream now. */
  hasRoom(streamsMax: number): boolean {
    if (this.retired) return false;
    const remote = this.connected ? this.session.remoteSettings.maxConcurrentStreams : undefined;
    return this.streams < Math.min(streamsMax, remote ?? streamsMax);
  }

  /** Ends it now, streams and all (with `e` as their error), and frees its socket. */
  kill(e?: Error): void {
    if (!this.session.destroyed) this.session.destroy(e);
    try {
      this.socket.resetAndDestroy();
    } catch {
      this.socket.destroy();
    }
  }

  /**
   * Closes it: gracefully (streams under way finish) once the instance's SETTINGS came, else
   * at once (`kill`: nothing the instance said can be under way).
   */
  end(): void {
    if (!this.connected) return this.kill();
    if (!this.session.closed && !this.session.destroyed) this.session.close();
  }
}

/** Opens a session to `t`; its connection starts with `header` when one is given. */
export function openH2cSession(t: Target, header: Uint8Array | null, now: number): H2cSession {
  const { address, port } = t;
  const host = address.includes(":") ? `[${address}]` : address;
  let socket: net.Socket | null = null;
  const session = http2.connect(`http://${host}:${port}`, {
    createConnection: () => {
      const s = socket = net.connect({ host: address, port, noDelay: true });
      // A reset socket may report it; the session reports its own errors.
      s.on("error", noop);
      // The PROXY header goes first; the socket sends it before the preface node:http2 writes.
      if (header !== null) s.write(header);
      return s;
    },
  });
  if (socket === null) throw new Error("node:http2 did not call createConnection");
  return new H2cSession(session, socket, now);
}
