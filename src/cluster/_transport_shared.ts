/**
 * What the transport's inbound and outbound connections share: identity, errors, limits and the
 * resolved options. Private to src/cluster/; transport.ts re-exports the public parts.
 *
 * @module
 */
import type { Socket } from "node:net";
import { formatHostPort } from "../lib/host_port.ts";
import { ERROR_CODE_BYTES_MAX } from "./_wire.ts";
import type { CertInfo } from "../pki/mod.ts";

export type { CertInfo };

/** Version of the wire protocol in the hello frame; a listener rejects any other. */
export const PROTOCOL_VERSION = 1;
/** Default largest frame body accepted or sent. */
export const FRAME_BYTES_MAX_DEFAULT = 8 * 1024 * 1024;
/** Default frames queued per peer while (re)connecting or writing. */
export const SEND_QUEUE_MAX_DEFAULT = 4096;
/** Default bytes queued per peer (snapshot chunks are 1 MiB each). */
export const SEND_QUEUE_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/**
 * One-way message bytes queued for a peer that is not connected (down, or being dialed): raft
 * sends again what is dropped, so a member that is down costs this much, not a full queue.
 */
export const UNCONNECTED_QUEUE_BYTES_MAX = 4 * 1024 * 1024;
/** Default time to connect and be welcomed by a peer. */
export const CONNECT_TIMEOUT_MS_DEFAULT = 3000;
/** Default time a request waits for its response. */
export const REQUEST_TIMEOUT_MS_DEFAULT = 5000;
/** Default reconnect backoff bounds (doubling per failure, with jitter). */
export const BACKOFF_MS_MIN_DEFAULT = 50;
export const BACKOFF_MS_MAX_DEFAULT = 2000;
/** Requests awaiting a response per peer; more are rejected at once. */
export const PENDING_REQUESTS_MAX = 1024;
/** Requests being handled at once per inbound connection; more get a "busy" error. */
export const INBOUND_REQUESTS_MAX = 1024;
/** Inbound connections open at once; more are closed at once. */
export const INBOUND_CONNECTIONS_MAX = 1024;
/**
 * With TLS, connections without a client certificate (anonymous: enrolling nodes) open at once,
 * in all and per source IP; more are closed at once. They do not count against
 * INBOUND_CONNECTIONS_MAX's room for members.
 */
export const ANONYMOUS_CONNECTIONS_MAX = 64;
export const ANONYMOUS_CONNECTIONS_PER_HOST_MAX = 8;
/** An anonymous connection is closed this long after it was accepted, busy or not. */
export const ANONYMOUS_LIFETIME_MS = 10_000;
/** Requests handled at once on an anonymous connection; more get a "busy" error. */
export const ANONYMOUS_REQUESTS_MAX = 1;
/**
 * Largest frame body accepted before the hello, and from an anonymous peer at any time (a hello,
 * pki.ca and pki.enroll are a few hundred bytes): an unauthenticated peer cannot make this node
 * buffer more than this per connection.
 */
export const PRE_AUTH_FRAME_BYTES_MAX = 64 * 1024;
/**
 * With TLS, connections in their TLS handshake at once, in all and per source IP. Past the
 * total, the oldest one is closed to make room (a member's handshake takes milliseconds, a
 * flood's lasts until its timeout); past the per-IP count, the new one is closed.
 */
export const HANDSHAKES_MAX = 256;
export const HANDSHAKES_PER_HOST_MAX = 16;
/** Distinct peer addresses this transport dials; sends to more are dropped. */
export const PEERS_MAX = 1024;
/** An inbound connection that sends no hello for this long is closed. */
export const HANDSHAKE_TIMEOUT_MS = 5000;
/** Bytes of queued frames joined into one socket write (a single larger frame goes alone). */
export const BATCH_BYTES_MAX = 1024 * 1024;
/** Response bytes buffered unread on an inbound socket before it is closed. */
export const WRITE_BUFFER_BYTES_MAX = 64 * 1024 * 1024;
/** A dialed connection whose peer accepts no bytes for this long is closed and re-dialed. */
export const WRITE_STALL_TIMEOUT_MS = 15_000;
/** Idle time before TCP keepalive probes start (finds peers that vanished without a FIN). */
export const KEEPALIVE_DELAY_MS = 15_000;
/** A repeated diagnostic (same peer, same reason) is logged at most once per this long. */
export const LOG_REPEAT_MS = 60_000;
/** Distinct repeated diagnostics remembered for LOG_REPEAT_MS. */
export const LOG_KEYS_MAX = 256;

/** Who is at the other end (or this end) of a connection. */
export interface Hello {
  /** "" before the node has joined a cluster. */
  clusterId: string;
  /** 0 before the node has joined a cluster. */
  nodeId: number;
  /** "ip:port" of the sender's cluster listener. */
  address: string;
}

/** The member's current TLS material, PEM encoded. */
export interface TlsCredentials {
  keyPem: string;
  certPem: string;
  caPem: string;
}

/** Mutual TLS settings of a Transport (absent: plain TCP). */
export interface TransportTls {
  /** Current key/cert/CA PEMs; called for every new connection (renewal swaps them). */
  credentials(): TlsCredentials;
  /** Called after a verified handshake and the hello: null to accept, or a one-line reason to refuse. */
  verifyPeer(
    peer: {
      /** With the remote socket's address on inbound connections. */
      hello: Hello & { remoteHost?: string };
      cert: CertInfo | null /* null: no client cert */;
      inbound: boolean;
    },
  ): string | null;
}

/**
 * The identity of the peer a frame came from. `cert` is the peer's verified certificate with
 * TLS, null for a TLS peer that presented none (it may only send ANONYMOUS_REQUESTS), and
 * absent on plain TCP.
 */
export type Peer = Hello & {
  cert?: CertInfo | null;
  /** The remote socket's IP address (inbound connections), for rate-limiting log lines. */
  remoteHost?: string;
};

/**
 * The connection failed: cannot connect, connection lost, timed out, or transport closed.
 * `code` says whether a request could have reached the peer: `unsent` (it never left: closed,
 * queue full, cannot connect), `lost` (the connection broke after it was sent), `timeout`.
 */
export class TransportError extends Error {
  override name = "TransportError";
  readonly code: "unsent" | "lost" | "timeout";

  constructor(message: string, code: "unsent" | "lost" | "timeout" = "unsent") {
    super(message);
    this.code = code;
  }
}

/**
 * The remote request handler threw or rejected; `message` is its message and `code` the
 * thrown error's `code` when it had one (see `errorCode`).
 */
export class RemoteError extends Error {
  override name = "RemoteError";
  readonly code: string | undefined;

  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

/** The `code` of a thrown value when it is a short lower-case word (sent with the error). */
export function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.length <= ERROR_CODE_BYTES_MAX && /^[a-z_]+$/.test(code)
    ? code
    : undefined;
}

/** Options with defaults filled in, as connections see them. */
export interface Settings {
  self: () => Hello;
  onMessage: (from: Peer, body: unknown) => void;
  onRequest: (from: Peer, body: unknown) => Promise<unknown>;
  frameBytesMax: number;
  /** An anonymous connection is closed this long after it was accepted. */
  anonymousLifetimeMs: number;
  sendQueueMax: number;
  sendQueueBytesMax: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  backoffMsMin: number;
  backoffMsMax: number;
  log: (line: string) => void;
  /** Source address of dialed connections (the listen host), or undefined to let the OS pick. */
  localAddress: string | undefined;
  /** Logs `line` unless a line with the same `key` was logged within LOG_REPEAT_MS. */
  logLimited: (key: string, line: string) => void;
}

/**
 * A `logLimited` for `log`, remembering at most LOG_KEYS_MAX keys. When that many distinct keys
 * were logged within LOG_REPEAT_MS (a flood from many addresses), further new keys are dropped
 * with one line saying so per LOG_REPEAT_MS: at most LOG_KEYS_MAX + 1 lines a minute in all.
 */
export function limitedLog(
  log: (line: string) => void,
  now: () => number = Date.now,
): (key: string, line: string) => void {
  const last = new Map<string, number>();
  let overflowAt = -Infinity;
  return (key, line) => {
    const t = now();
    const at = last.get(key);
    if (at !== undefined && t - at < LOG_REPEAT_MS) return;
    if (at === undefined && last.size >= LOG_KEYS_MAX) {
      for (const [k, v] of last) if (t - v >= LOG_REPEAT_MS) last.delete(k);
      if (last.size >= LOG_KEYS_MAX) {
        if (t - overflowAt >= LOG_REPEAT_MS) {
          overflowAt = t;
          log(`cluster: too many distinct diagnostics; more are not logged for a while`);
        }
        return;
      }
    }
    last.set(key, t);
    log(line);
  };
}

/** The reason two identities cannot talk, or null: both in a cluster and not the same one. */
export function foreignCluster(ours: string, theirs: string): string | null {
  if (ours === "" || theirs === "" || ours === theirs) return null;
  return `foreign cluster ${theirs} (this node belongs to ${ours})`;
}

/** The peer's address of an accepted socket, for log lines: `127.0.0.1:4000`, `[::1]:4000`. */
export function remoteOf(socket: Socket): { host: string; text: string } {
  const host = socket.remoteAddress ?? "?";
  const port = socket.remotePort;
  return { host, text: port === undefined ? host : formatHostPort({ host, port }) };
}
