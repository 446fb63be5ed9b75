/**
 * The TLS listener's limits on connections that are not verified members yet (transport.ts):
 * TCP connections in their TLS handshake (HANDSHAKES_PER_HOST_MAX per remote IP, more are
 * closed; HANDSHAKES_MAX in all, past it the oldest is closed) and anonymous connections, past
 * the handshake without a client certificate (ANONYMOUS_CONNECTIONS_MAX in all,
 * ANONYMOUS_CONNECTIONS_PER_HOST_MAX per remote IP). Private to src/cluster/.
 *
 * @module
 */
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import {
  ANONYMOUS_CONNECTIONS_MAX,
  ANONYMOUS_CONNECTIONS_PER_HOST_MAX,
  HANDSHAKES_MAX,
  HANDSHAKES_PER_HOST_MAX,
  remoteOf,
} from "./_transport_shared.ts";

/** Open connections counted in all and per remote IP. */
export class HostCounts {
  #total = 0;
  readonly #perHost = new Map<string, number>();

  get total(): number {
    return this.#total;
  }

  /** Connections counted from `host`. */
  of(host: string): number {
    return this.#perHost.get(host) ?? 0;
  }

  add(host: string): void {
    this.#total++;
    this.#perHost.set(host, this.of(host) + 1);
  }

  remove(host: string): void {
    this.#total--;
    const n = this.of(host) - 1;
    if (n <= 0) this.#perHost.delete(host);
    else this.#perHost.set(host, n);
  }
}

/** Counts and closes; `turnAway` logs a connection closed for a limit (key: for logLimited). */
export class Admission {
  /** TCP connections in their TLS handshake, oldest first. */
  readonly #handshaking = new Set<Socket>();
  readonly #handshakes = new HostCounts();
  /** TCP connections closed for a limit (their failed handshake is not logged). */
  readonly #turnedAway = new WeakSet<Socket>();
  readonly #anonymous = new HostCounts();
  readonly #turnAway: (socket: Socket, why: string, key?: string) => void;

  constructor(turnAway: (socket: Socket, why: string, key?: string) => void) {
    this.#turnAway = turnAway;
  }

  /** Anonymous connections open now. */
  get anonymousOpen(): number {
    return this.#anonymous.total;
  }

  /** A new TCP connection of the TLS listener: counted, or closed (or the oldest closed). */
  handshakeStarted(raw: Socket): void {
    const host = remoteOf(raw).host;
    if (this.#handshakes.of(host) >= HANDSHAKES_PER_HOST_MAX) {
      this.#turnAway(
        raw,
        `${HANDSHAKES_PER_HOST_MAX} TLS handshakes already in progress from ${host}`,
      );
      this.#close(raw);
      return;
    }
    if (this.#handshaking.size >= HANDSHAKES_MAX) {
      const oldest = this.#handshaking.values().next().value!;
      // Once a minute in all: a flood from many addresses must not log a line per address.
      const why = `closed for a newer one: ${HANDSHAKES_MAX} TLS handshakes in progress`;
      this.#turnAway(oldest, why, "limit handshakes");
      this.#handshakeDone(oldest);
      this.#close(oldest);
    }
    this.#handshaking.add(raw);
    this.#handshakes.add(host);
    raw.once("close", () => this.#handshakeDone(raw));
  }

  /** The handshake of `tls` completed: it no longer counts as one in progress. */
  handshakeCompleted(tls: TLSSocket): void {
    const raw = tlsParent(tls);
    if (raw !== null) this.#handshakeDone(raw);
  }

  /** True when the handshake of `tls` failed because this closed it for a limit. */
  turnedAway(tls: TLSSocket): boolean {
    const raw = tlsParent(tls);
    return raw !== null && this.#turnedAway.has(raw);
  }

  /** An anonymous connection past its handshake: counted until it closes (true), or closed. */
  anonymous(socket: Socket): boolean {
    const host = remoteOf(socket).host;
    const why = this.#anonymous.total >= ANONYMOUS_CONNECTIONS_MAX
      ? `${ANONYMOUS_CONNECTIONS_MAX} connections without a certificate already open`
      : this.#anonymous.of(host) >= ANONYMOUS_CONNECTIONS_PER_HOST_MAX
      ? `${ANONYMOUS_CONNECTIONS_PER_HOST_MAX} connections without a certificate already open ` +
        `from ${host}`
      : null;
    if (why !== null) {
      this.#turnAway(socket, why);
      socket.on("error", () => {});
      socket.destroy();
      return false;
    }
    this.#anonymous.add(host);
    socket.once("close", () => this.#anonymous.remove(host));
    return true;
  }

  #handshakeDone(raw: Socket): void {
    if (this.#handshaking.delete(raw)) this.#handshakes.remove(remoteOf(raw).host);
  }

  #close(raw: Socket): void {
    this.#turnedAway.add(raw);
    raw.on("error", () => {});
    raw.destroy();
  }
}

/**
 * The TCP socket under a server-side TLS socket (node:tls keeps it as `_parent`), or null: it
 * still knows the remote address after a failed handshake.
 */
export function tlsParent(socket: TLSSocket): Socket | null {
  return (socket as TLSSocket & { _parent?: Socket | null })._parent ?? null;
}
