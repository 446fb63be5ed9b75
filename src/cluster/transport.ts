/**
 * # Transport — TCP between berth agents
 *
 * Carries Raft messages (one-way, best effort, FIFO per peer) and cluster RPCs (request/response)
 * between the agents' `--bind` listeners. Every frame is a 4-byte big-endian length and a msgpack
 * body (msgpackr, plain maps; Uint8Array values arrive as Uint8Array).
 *
 * Per peer address there is ONE dialed connection, opened on the first `send()`/`request()`,
 * re-dialed with jittered exponential backoff after a failure; frames wait in a bounded queue
 * while it (re)connects and are coalesced into one socket write per tick. The dialer opens with
 * `{k:"hello", v, clusterId, nodeId, address}`; the listener answers `{k:"welcome", …}` or
 * `{k:"reject", reason}` (other protocol version, or both sides in different clusters) and
 * closes. Then `{k:"msg", b}` flows one way and `{k:"req", id, b}` / `{k:"res", id, b?, err?}`
 * pair up on the same socket. A node whose clusterId is "" (not joined yet) may make requests
 * (e.g. "join"); its messages are not sent, and a listener drops any that arrive. When `self()`
 * changes (the node joined), the next write re-announces it with a fresh hello on the same
 * connection. Messages are delivered when the sender is in a cluster and this node is in the same
 * one or in none yet.
 *
 * Anything malformed from the network (not msgpack, unknown kind, oversized length, no hello
 * first, bad hello fields, a truncated frame) closes that one connection with one log line naming
 * the remote address; nothing throws out of the transport.
 *
 * `send()` returns false when it dropped the frame (the peer's queue is full, e.g. because the
 * peer is down; bad address; frame too large; closed), so raft can mark the peer unreachable.
 * `request()` rejects with a TransportError (cannot connect, connection lost, timeout, queue
 * full, closed; its `code` says whether the request may have arrived) or a RemoteError carrying
 * the remote handler's message and, when the thrown error had a short lower-case `code`
 * (src/cluster/errors.ts), that code. Limits, each a named
 * export: PENDING_REQUESTS_MAX per peer, INBOUND_REQUESTS_MAX per inbound connection (then
 * "busy"), INBOUND_CONNECTIONS_MAX, PEERS_MAX, HANDSHAKE_TIMEOUT_MS for a silent inbound
 * connection, WRITE_STALL_TIMEOUT_MS for a peer that stops reading, BATCH_BYTES_MAX per write.
 * A diagnostic that repeats (a misconfigured peer retrying) is logged once per LOG_REPEAT_MS.
 *
 * With `tls` (TransportTls) every connection is mutual TLS (TLS 1.3, node:tls): both sides
 * present a certificate of the cluster CA, taken from `tls.credentials()` for each new connection
 * (a renewed one is used from the next connection on, without restarting the listener). The
 * listener asks for a client certificate without requiring one: a peer without one is anonymous
 * and may only make the requests in ANONYMOUS_REQUESTS (CA certificate, enrollment); any other
 * frame closes its connection. Anonymous connections have limits of their own, so a flood of
 * them cannot keep members out: ANONYMOUS_CONNECTIONS_MAX open at once (and
 * ANONYMOUS_CONNECTIONS_PER_HOST_MAX per source IP; more are closed at once), each closed
 * ANONYMOUS_LIFETIME_MS after it was accepted, ANONYMOUS_REQUESTS_MAX request in flight (then
 * "busy"), frames of at most PRE_AUTH_FRAME_BYTES_MAX (the limit of every peer before its
 * hello; a longer frame header closes the connection before anything is buffered). Connections
 * still in their TLS handshake are limited apart too: HANDSHAKES_PER_HOST_MAX per source IP (more
 * are closed), HANDSHAKES_MAX in all (past it the oldest is closed, so a flood of silent
 * connections cannot hold a member's handshake off). Members count against
 * INBOUND_CONNECTIONS_MAX once their certificate is verified. A certificate not chained to the CA, or a plain-TCP client, fails
 * before any frame is read. Once the hello (listener side) or the welcome (dialer side) arrived,
 * `tls.verifyPeer` decides; a refusal is answered with a reject frame and logged once. Handlers
 * see the peer's certificate as `from.cert` (null: anonymous; absent on plain TCP), and
 * `dropPeer(node)` closes every connection whose peer certificate names `node` (revocation).
 *
 * Options (TransportOptions): `listen` (port 0: any free port, see `address`), `self`,
 * `onMessage`, `onRequest`, `tls`, and limits with defaults: `frameBytesMax` (8 MiB),
 * `anonymousLifetimeMs` (ANONYMOUS_LIFETIME_MS), `sendQueueMax`
 * (4096 frames per peer), `connectTimeoutMs` (3000), `requestTimeoutMs` (5000), `backoffMsMin` /
 * `backoffMsMax` (50 / 2000), `log` (console.error).
 *
 * @example
 * ```ts
 * const t = new Transport({
 *   listen: { host: "127.0.0.1", port: 8300 },
 *   self: () => ({ clusterId: "c1", nodeId: 1, address: "127.0.0.1:8300" }),
 *   onMessage: (from, body) => raft.step(body),
 *   onRequest: async (from, body) => handleRpc(body),
 * });
 * await t.start();
 * if (!t.send("127.0.0.2:8300", msg)) raft.reportUnreachable(2);
 * const answer = await t.request("127.0.0.2:8300", { rpc: "join" }, { timeoutMs: 2000 });
 * await t.close();
 * ```
 *
 * @module
 */
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TlsOptions, type TLSSocket } from "node:tls";
import type { HostPort } from "../lib/host_port.ts";
import { formatHostPort, parseHostPort } from "../lib/host_port.ts";
import { Admission, tlsParent } from "./_admission.ts";
import { InboundConnection } from "./_inbound.ts";
import { OutboundPeer } from "./_outbound.ts";
import { peerCert, TlsContexts } from "./_tls.ts";
import {
  ANONYMOUS_LIFETIME_MS,
  BACKOFF_MS_MAX_DEFAULT,
  BACKOFF_MS_MIN_DEFAULT,
  type CertInfo,
  CONNECT_TIMEOUT_MS_DEFAULT,
  FRAME_BYTES_MAX_DEFAULT,
  HANDSHAKE_TIMEOUT_MS,
  type Hello,
  INBOUND_CONNECTIONS_MAX,
  limitedLog,
  type Peer,
  PEERS_MAX,
  remoteOf,
  REQUEST_TIMEOUT_MS_DEFAULT,
  SEND_QUEUE_BYTES_MAX_DEFAULT,
  SEND_QUEUE_MAX_DEFAULT,
  type Settings,
  TransportError,
  type TransportTls,
} from "./_transport_shared.ts";
import { errorText } from "../lib/error_text.ts";

export {
  ANONYMOUS_CONNECTIONS_MAX,
  ANONYMOUS_CONNECTIONS_PER_HOST_MAX,
  ANONYMOUS_LIFETIME_MS,
  ANONYMOUS_REQUESTS_MAX,
  BACKOFF_MS_MAX_DEFAULT,
  BACKOFF_MS_MIN_DEFAULT,
  BATCH_BYTES_MAX,
  type CertInfo,
  CONNECT_TIMEOUT_MS_DEFAULT,
  FRAME_BYTES_MAX_DEFAULT,
  HANDSHAKE_TIMEOUT_MS,
  HANDSHAKES_MAX,
  HANDSHAKES_PER_HOST_MAX,
  type Hello,
  INBOUND_CONNECTIONS_MAX,
  INBOUND_REQUESTS_MAX,
  KEEPALIVE_DELAY_MS,
  LOG_REPEAT_MS,
  type Peer,
  PEERS_MAX,
  PENDING_REQUESTS_MAX,
  PRE_AUTH_FRAME_BYTES_MAX,
  PROTOCOL_VERSION,
  RemoteError,
  remoteOf,
  REQUEST_TIMEOUT_MS_DEFAULT,
  SEND_QUEUE_BYTES_MAX_DEFAULT,
  SEND_QUEUE_MAX_DEFAULT,
  type TlsCredentials,
  TransportError,
  type TransportTls,
  WRITE_BUFFER_BYTES_MAX,
  WRITE_STALL_TIMEOUT_MS,
} from "./_transport_shared.ts";
export { ANONYMOUS_REQUESTS, TLS_MIN_VERSION } from "./_tls.ts";

/** Distinct bad peer addresses logged; later ones are dropped silently. */
const BAD_ADDRESSES_LOGGED_MAX = 64;

export interface TransportOptions {
  /** Address to listen on; port 0 picks a free port (read it from `address`). */
  listen: HostPort;
  /** This node's current identity (clusterId "" and nodeId 0 before it has joined). */
  self: () => Hello;
  /** Called for each one-way message from a peer whose hello matched our cluster id. */
  onMessage: (from: Peer, body: unknown) => void;
  /**
   * Called for each request; the returned value (or thrown Error's message) is sent back.
   * Requests are allowed from peers with clusterId "" (joining nodes); the handler decides.
   * With TLS, `from.cert` is the peer's certificate, or null for an anonymous peer (whose
   * requests are only those in ANONYMOUS_REQUESTS).
   */
  onRequest: (from: Peer, body: unknown) => Promise<unknown>;
  /** Mutual TLS on every connection; absent: plain TCP. */
  tls?: TransportTls;
  /** Largest frame body sent or accepted (default 8 MiB); a bigger one closes the connection. */
  frameBytesMax?: number;
  /** Time after which an anonymous connection is closed (default ANONYMOUS_LIFETIME_MS). */
  anonymousLifetimeMs?: number;
  /** Frames queued per peer (default 4096); when full, send() returns false. */
  sendQueueMax?: number;
  /** Bytes queued per peer (default 64 MiB); past it, send() returns false. */
  sendQueueBytesMax?: number;
  /** Time to connect to a peer and get its welcome (default 3000). */
  connectTimeoutMs?: number;
  /** Default time a request waits for its response (default 5000). */
  requestTimeoutMs?: number;
  /** Reconnect backoff, doubling per failure with jitter (default 50 .. 2000). */
  backoffMsMin?: number;
  backoffMsMax?: number;
  /** Where one-line diagnostics go (default console.error). */
  log?: (line: string) => void;
}

export class Transport {
  readonly #s: Settings;
  readonly #listen: HostPort;
  #address: HostPort;
  #server: Server | null = null;
  readonly #tls: TlsContexts | undefined;
  /** With TLS: the limits on handshakes and anonymous connections. */
  readonly #admission = new Admission((socket, why, key) => this.#turnAway(socket, why, key));
  #closed = false;
  readonly #peers = new Map<string, OutboundPeer>();
  readonly #inbound = new Set<InboundConnection>();
  readonly #badAddresses = new Set<string>();

  constructor(o: TransportOptions) {
    this.#listen = o.listen;
    this.#address = o.listen;
    this.#tls = o.tls === undefined ? undefined : new TlsContexts(o.tls);
    const log = o.log ?? ((line: string) => console.error(line));
    this.#s = {
      self: o.self,
      onMessage: o.onMessage,
      onRequest: o.onRequest,
      frameBytesMax: positive(o.frameBytesMax, FRAME_BYTES_MAX_DEFAULT),
      anonymousLifetimeMs: positive(o.anonymousLifetimeMs, ANONYMOUS_LIFETIME_MS),
      sendQueueMax: positive(o.sendQueueMax, SEND_QUEUE_MAX_DEFAULT),
      sendQueueBytesMax: positive(o.sendQueueBytesMax, SEND_QUEUE_BYTES_MAX_DEFAULT),
      connectTimeoutMs: positive(o.connectTimeoutMs, CONNECT_TIMEOUT_MS_DEFAULT),
      requestTimeoutMs: positive(o.requestTimeoutMs, REQUEST_TIMEOUT_MS_DEFAULT),
      backoffMsMin: positive(o.backoffMsMin, BACKOFF_MS_MIN_DEFAULT),
      backoffMsMax: positive(o.backoffMsMax, BACKOFF_MS_MAX_DEFAULT),
      log,
      // Dial from the address this member listens on, so a host's cluster traffic always
      // carries its own address (firewalls and fault tests can then cut one member off).
      localAddress: o.listen.host === "0.0.0.0" || o.listen.host === "::"
        ? undefined
        : o.listen.host,
      logLimited: limitedLog(log),
    };
  }

  /** The listening address (the real port once started with port 0). */
  get address(): HostPort {
    return this.#address;
  }

  /** Listens on `listen`; rejects with one line when the address cannot be bound. */
  async start(): Promise<void> {
    if (this.#closed) throw new TransportError("transport closed");
    if (this.#server !== null) return;
    const cannot = (e: unknown) =>
      new TransportError(
        `cluster: cannot listen on ${formatHostPort(this.#listen)}: ${errorText(e)}`,
      );
    const tls = this.#tls;
    let server: Server;
    if (tls === undefined) {
      server = createServer((socket) => this.#accept(socket));
    } else {
      let options: TlsOptions;
      try {
        tls.current();
        options = tls.serverOptions(HANDSHAKE_TIMEOUT_MS, (e) => {
          const line = `cluster: refused a connection: ${errorText(e)}`;
          this.#s.logLimited(line, line);
        });
      } catch (e) {
        throw cannot(e);
      }
      server = createTlsServer(options, (socket) => this.#accept(socket, socket));
      // Connections in their TLS handshake have limits of their own (HANDSHAKES_MAX, per IP).
      server.on("connection", (raw: Socket) => {
        if (!this.#closed) this.#admission.handshakeStarted(raw);
      });
      server.on("tlsClientError", (e: Error, socket: TLSSocket) => {
        socket.destroy();
        if (this.#admission.turnedAway(socket)) return;
        const parent = tlsParent(socket);
        const remote = remoteOf(
          socket.remoteAddress === undefined && parent !== null ? parent : socket,
        );
        this.#s.logLimited(
          `tls ${remote.host} ${e.message}`,
          `cluster: refused ${remote.text}: TLS handshake failed: ${errorText(e)}`,
        );
      });
    }
    await new Promise<void>((resolve, reject) => {
      const fail = (e: Error) => reject(cannot(e));
      server.once("error", fail);
      server.listen({ host: this.#listen.host, port: this.#listen.port }, () => {
        server.off("error", fail);
        resolve();
      });
    });
    server.on("error", (e) => this.#s.log(`cluster: listener error: ${errorText(e)}`));
    this.#server = server;
    const a = server.address();
    if (a !== null && typeof a === "object") {
      this.#address = { host: this.#listen.host, port: a.port };
    }
  }

  /**
   * One-way, best effort, ordered per peer (FIFO). Returns false when the frame was dropped
   * (queue full, bad address, too large, transport closed, or this node has not joined a
   * cluster) so the caller can report the peer unreachable to raft.
   */
  send(toAddress: string, body: unknown): boolean {
    const peer = this.#peer(toAddress);
    return peer === null ? false : peer.send(body);
  }

  /**
   * Request/response over the same per-peer connection. Rejects with a TransportError on
   * timeout (default requestTimeoutMs), connection failure or loss, and with a RemoteError
   * carrying the remote message when the peer's handler failed.
   */
  request(toAddress: string, body: unknown, opts: { timeoutMs?: number } = {}): Promise<unknown> {
    const peer = this.#peer(toAddress);
    if (peer === null) {
      return Promise.reject(
        new TransportError(
          this.#closed
            ? "transport closed"
            : `cannot send to "${toAddress}": bad or too many peers`,
        ),
      );
    }
    return peer.request(body, positive(opts.timeoutMs, this.#s.requestTimeoutMs));
  }

  /**
   * Peers with a live connection right now: addresses we dialed and were welcomed at, plus the
   * announced addresses of peers whose connections to us passed the handshake (not anonymous
   * ones: with TLS, a peer without a certificate is no member yet).
   */
  connected(): string[] {
    const out = new Set<string>();
    for (const p of this.#peers.values()) if (p.isOpen()) out.add(p.address);
    for (const c of this.#inbound) {
      const h = c.hello();
      if (h !== null && h.address !== "" && h.cert !== null) out.add(h.address);
    }
    return [...out];
  }

  /** Stops listening, fails pending requests, closes every connection; resolves once closed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const server = this.#server;
    this.#server = null;
    const serverClosed = server === null
      ? Promise.resolve()
      : new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([
      serverClosed,
      ...[...new Set(this.#peers.values())].map((p) => p.close()),
      ...[...this.#inbound].map((c) => c.close()),
    ]);
    this.#peers.clear();
  }

  /**
   * Closes at once every connection, inbound or dialed, whose peer certificate names `node`
   * (its certificates were revoked); a dialed one is re-dialed later and verified anew.
   */
  dropPeer(node: string): void {
    for (const c of this.#inbound) {
      if (c.certNode() === node) c.drop(`certificate of node ${node} dropped`);
    }
    for (const p of new Set(this.#peers.values())) {
      if (p.certNode() === node) p.drop(`certificate of node ${node} dropped`);
    }
  }

  #peer(toAddress: string): OutboundPeer | null {
    if (this.#closed) return null;
    const known = this.#peers.get(toAddress);
    if (known !== undefined) return known;
    let hp: HostPort;
    try {
      hp = parseHostPort(toAddress);
    } catch (e) {
      this.#logBadAddress(toAddress, `cluster: cannot send to "${toAddress}": ${errorText(e)}`);
      return null;
    }
    const address = formatHostPort(hp);
    const existing = this.#peers.get(address);
    if (existing !== undefined) return existing;
    if (this.#peers.size >= PEERS_MAX) {
      this.#logBadAddress(
        toAddress,
        `cluster: cannot send to ${address}: already talking to ${PEERS_MAX} peers`,
      );
      return null;
    }
    const peer = new OutboundPeer(hp.host, hp.port, address, this.#s, this.#tls);
    this.#peers.set(address, peer);
    if (toAddress !== address) this.#peers.set(toAddress, peer);
    return peer;
  }

  #logBadAddress(address: string, line: string): void {
    if (this.#badAddresses.has(address)) return;
    if (this.#badAddresses.size >= BAD_ADDRESSES_LOGGED_MAX) return;
    this.#badAddresses.add(address);
    this.#s.log(line);
  }

  /** Closes `socket` (true) when closed or `open` connections reach INBOUND_CONNECTIONS_MAX. */
  #tooMany(socket: Socket, open: number): boolean {
    if (!this.#closed && open < INBOUND_CONNECTIONS_MAX) return false;
    if (!this.#closed) {
      this.#turnAway(socket, `${INBOUND_CONNECTIONS_MAX} connections already open`);
    }
    socket.on("error", () => {});
    socket.destroy();
    return true;
  }

  /**
   * Logs a connection closed for a limit, at most once per LOG_REPEAT_MS per IP and limit (or
   * per `key`).
   */
  #turnAway(socket: Socket, why: string, key?: string): void {
    const remote = remoteOf(socket);
    this.#s.logLimited(
      key ?? `limit ${remote.host} ${why}`,
      `cluster: closed connection from ${remote.text}: ${why}`,
    );
  }

  /**
   * A new inbound connection; `tls` is the same socket once its TLS handshake completed. Members
   * (plain TCP, or a verified certificate) count against INBOUND_CONNECTIONS_MAX, anonymous ones
   * against their own limits.
   */
  #accept(socket: Socket, tls?: TLSSocket): void {
    if (tls !== undefined) this.#admission.handshakeCompleted(tls);
    let cert: CertInfo | null | undefined;
    if (tls !== undefined) {
      const peer = peerCert(tls, true);
      if ("refuse" in peer) {
        const remote = remoteOf(socket);
        this.#s.logLimited(
          `refuse ${remote.host} ${peer.refuse}`,
          `cluster: refused ${remote.text}: ${peer.refuse}`,
        );
        socket.on("error", () => {});
        socket.destroy();
        return;
      }
      cert = peer.cert;
    }
    const anonymous = tls !== undefined && cert === null;
    if (anonymous) {
      if (this.#closed) {
        socket.destroy();
        return;
      }
      if (!this.#admission.anonymous(socket)) return;
    } else if (this.#tooMany(socket, this.#inbound.size - this.#admission.anonymousOpen)) {
      return;
    }
    this.#inbound.add(
      new InboundConnection(
        socket,
        this.#s,
        (c) => this.#inbound.delete(c),
        this.#tls === undefined ? undefined : { cert: cert ?? null, tls: this.#tls.tls },
      ),
    );
  }
}

function positive(v: number | undefined, def: number): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : def;
}
