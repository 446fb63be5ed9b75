/**
 * The one connection this node dials to a peer address: lazily connected, re-dialed with backoff,
 * carrying one-way messages and requests (FIFO) and reading responses. With TLS the hello is
 * sent once the handshake verified the listener's chain, and the welcome is checked by
 * `verifyPeer` before any queued frame is written. Private to src/cluster/.
 *
 * @module
 */
import { connect, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { decodeBody, encodeBody, FrameReader, joinFrames } from "./_frame.ts";
import { type Frame, parseFrame } from "./_wire.ts";
import { peerCert, type TlsContexts } from "./_tls.ts";
import {
  BATCH_BYTES_MAX,
  type CertInfo,
  foreignCluster,
  type Hello,
  KEEPALIVE_DELAY_MS,
  PENDING_REQUESTS_MAX,
  PROTOCOL_VERSION,
  RemoteError,
  type Settings,
  TransportError,
  UNCONNECTED_QUEUE_BYTES_MAX,
  WRITE_STALL_TIMEOUT_MS,
} from "./_transport_shared.ts";
import { errorText } from "../lib/error_text.ts";

/** A frame waiting to be written; `reqId` 0 for a one-way message. */
interface Queued {
  body: Uint8Array;
  reqId: number;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

type State = "idle" | "connecting" | "open" | "backoff" | "closed";

export class OutboundPeer {
  /** Normalised "host:port" this peer is dialed at. */
  readonly address: string;
  readonly #host: string;
  readonly #port: number;
  readonly #s: Settings;
  readonly #tls: TlsContexts | undefined;
  #state: State = "idle";
  /** With TLS: the certificate the listener presented on the current connection. */
  #peerCert: CertInfo | null = null;
  #socket: Socket | null = null;
  #socketClosed: Promise<void> = Promise.resolve();
  #reader: FrameReader | null = null;
  /** Why this side is closing the current socket (already logged when `#reasonLogged`). */
  #reason: string | null = null;
  #reasonLogged = false;
  #socketError: string | null = null;
  /** Connect timeout while connecting; backoff delay while in backoff. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #queue: Queued[] = [];
  /** Bytes of the frames in #queue (bounded by sendQueueBytesMax as well as by count). */
  #queueBytes = 0;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #failures = 0;
  #nextDialAt = 0;
  #downLogged = false;
  #flushScheduled = false;
  #waitingDrain = false;
  /** Identity last announced on the current connection. */
  #helloSent: Hello | null = null;

  constructor(
    host: string,
    port: number,
    address: string,
    settings: Settings,
    tls?: TlsContexts,
  ) {
    this.#host = host;
    this.#port = port;
    this.address = address;
    this.#s = settings;
    this.#tls = tls;
  }

  isOpen(): boolean {
    return this.#state === "open" && this.#reason === null;
  }

  /** The node named by the listener's certificate on the current connection (TLS). */
  certNode(): string | null {
    return this.#socket === null ? null : this.#peerCert?.node ?? null;
  }

  /** Closes the current connection now with one log line; queued messages wait for a redial. */
  drop(reason: string): void {
    if (this.#socket !== null) this.#drop(reason, true);
  }

  send(body: unknown): boolean {
    if (this.#state === "closed" || this.#s.self().clusterId === "") return false;
    if (this.#queue.length >= this.#s.sendQueueMax) return false;
    const frame = this.#encode({ k: "msg", b: body });
    if (typeof frame === "string") {
      this.#s.logLimited(
        `drop ${this.address} ${frame}`,
        `cluster: dropped a message to ${this.address}: ${frame}`,
      );
      return false;
    }
    const bytesMax = this.#state === "open"
      ? this.#s.sendQueueBytesMax
      : Math.min(this.#s.sendQueueBytesMax, UNCONNECTED_QUEUE_BYTES_MAX);
    if (this.#queueBytes + frame.byteLength > bytesMax) return false;
    this.#queueBytes += frame.byteLength;
    this.#queue.push({ body: frame, reqId: 0 });
    this.#kick();
    return true;
  }

  request(body: unknown, timeoutMs: number): Promise<unknown> {
    if (this.#state === "closed") return Promise.reject(new TransportError("transport closed"));
    if (this.#pending.size >= PENDING_REQUESTS_MAX) {
      return Promise.reject(
        new TransportError(`${PENDING_REQUESTS_MAX} requests to ${this.address} already pending`),
      );
    }
    if (this.#queue.length >= this.#s.sendQueueMax) {
      return Promise.reject(new TransportError(`send queue to ${this.address} is full`));
    }
    const id = this.#nextId++;
    const frame = this.#encode({ k: "req", id, b: body });
    if (typeof frame === "string") {
      return Promise.reject(new TransportError(`request to ${this.address}: ${frame}`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.#settle(
            id,
            new TransportError(
              `request to ${this.address} timed out after ${timeoutMs} ms`,
              "timeout",
            ),
          ),
        timeoutMs,
      );
      this.#pending.set(id, { resolve, reject, timer });
      this.#queueBytes += frame.byteLength;
      this.#queue.push({ body: frame, reqId: id });
      this.#kick();
    });
  }

  /** Fails pending requests, drops the queue and closes the connection; no redial after. */
  close(): Promise<void> {
    this.#state = "closed";
    clearTimeout(this.#timer);
    this.#queue = [];
    this.#queueBytes = 0;
    this.#failPending(new TransportError("transport closed"));
    this.#socket?.destroy();
    return this.#socketClosed;
  }

  #encode(frame: Frame): Uint8Array | string {
    try {
      const body = encodeBody(frame);
      if (body.byteLength > this.#s.frameBytesMax) {
        return `${body.byteLength} bytes exceed the frame limit of ${this.#s.frameBytesMax} bytes`;
      }
      return body;
    } catch (e) {
      return `cannot encode (${errorText(e)})`;
    }
  }

  /** Gets queued frames moving: flush if open, dial if idle and the backoff has passed. */
  #kick(): void {
    if (this.#state === "open") {
      this.#scheduleFlush();
    } else if (this.#state === "idle") {
      const wait = this.#nextDialAt - Date.now();
      if (wait <= 0) this.#dial();
      else this.#waitBackoff(wait);
    }
  }

  #waitBackoff(ms: number): void {
    this.#state = "backoff";
    this.#timer = setTimeout(() => {
      this.#state = "idle";
      this.#timer = undefined;
      if (this.#queue.length > 0) this.#kick();
    }, ms);
  }

  #dial(): void {
    this.#state = "connecting";
    this.#reason = null;
    this.#reasonLogged = false;
    this.#socketError = null;
    this.#helloSent = null;
    this.#waitingDrain = false;
    this.#peerCert = null;
    this.#reader = new FrameReader(this.#s.frameBytesMax);
    let socket: Socket;
    try {
      socket = this.#tls === undefined
        ? connect({
          host: this.#host,
          port: this.#port,
          ...(this.#s.localAddress === undefined ? {} : { localAddress: this.#s.localAddress }),
        })
        : this.#tls.dial(this.#host, this.#port, this.#s.localAddress);
    } catch (e) {
      // No usable credentials: fails like a connection that could not be made (backoff).
      this.#reason = errorText(e);
      this.#onClose();
      return;
    }
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
    this.#timer = setTimeout(
      () => this.#drop(`no welcome within ${this.#s.connectTimeoutMs} ms`, false),
      this.#s.connectTimeoutMs,
    );
    // With TLS the hello waits for the handshake (the listener's chain is verified by then).
    socket.on(this.#tls === undefined ? "connect" : "secureConnect", () => {
      if (socket !== this.#socket) return;
      if (this.#tls !== undefined) {
        const peer = peerCert(socket as TLSSocket, false);
        if ("refuse" in peer) {
          this.#s.logLimited(
            `refuse ${this.address} ${peer.refuse}`,
            `cluster: refused connection to ${this.address}: ${peer.refuse}`,
          );
          this.#drop(peer.refuse, false, true);
          return;
        }
        this.#peerCert = peer.cert;
      }
      const hello = this.#s.self();
      this.#helloSent = hello;
      socket.write(joinFrames([encodeBody({ k: "hello", v: PROTOCOL_VERSION, ...pick(hello) })]));
    });
    socket.on("data", (chunk: Uint8Array) => {
      if (socket !== this.#socket || this.#reason !== null) return;
      const bad = this.#reader!.push(chunk, (body) => this.#onFrame(body));
      if (bad !== null) this.#drop(bad, true);
    });
    socket.on("error", (e) => {
      if (socket === this.#socket) this.#socketError = errorText(e);
    });
    this.#socketClosed = new Promise((resolve) => {
      socket.on("close", () => {
        if (socket === this.#socket) this.#onClose();
        resolve();
      });
    });
  }

  /** Handles one frame; false stops reading (the connection is closing). */
  #onFrame(body: Uint8Array): boolean {
    if (this.#reason !== null) return false;
    let frame: Frame | string;
    try {
      frame = parseFrame(decodeBody(body));
    } catch (e) {
      frame = `malformed frame (${errorText(e)})`;
    }
    if (typeof frame === "string") return this.#drop(frame, true);
    switch (frame.k) {
      case "welcome": {
        const foreign = foreignCluster(this.#s.self().clusterId, frame.clusterId);
        if (foreign !== null) {
          this.#s.logLimited(
            `refuse ${this.address} ${foreign}`,
            `cluster: refused connection to ${this.address}: ${foreign}`,
          );
          return this.#drop(foreign, false, true);
        }
        if (this.#tls !== undefined) {
          const refused = this.#verify(frame);
          if (refused !== null) {
            this.#s.logLimited(
              `refuse ${this.address} ${refused}`,
              `cluster: refused connection to ${this.address}: ${refused}`,
            );
            return this.#drop(refused, false, true);
          }
        }
        if (this.#state === "connecting") this.#onOpen();
        return true;
      }
      case "reject":
        this.#s.logLimited(
          `rejected ${this.address} ${frame.reason}`,
          `cluster: connection to ${this.address} rejected: ${frame.reason}`,
        );
        return this.#drop(`rejected: ${frame.reason}`, false, true);
      case "res":
        if (this.#state === "open") {
          this.#settle(
            frame.id,
            frame.err === undefined ? undefined : new RemoteError(frame.err, frame.code),
            frame.b,
          );
          return true;
        }
        return this.#drop("a response before the welcome", true);
      default:
        return this.#drop(`unexpected ${frame.k} frame from a listening peer`, true);
    }
  }

  /** `verifyPeer` on the listener's welcome; a throwing verifier refuses with its message. */
  #verify(welcome: Hello): string | null {
    try {
      return this.#tls!.tls.verifyPeer({
        hello: pick(welcome),
        cert: this.#peerCert,
        inbound: false,
      });
    } catch (e) {
      return `peer verification failed: ${errorText(e)}`;
    }
  }

  #onOpen(): void {
    this.#state = "open";
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#failures = 0;
    if (this.#downLogged) {
      this.#downLogged = false;
      this.#s.log(`cluster: connected to ${this.address} again`);
    }
    this.#scheduleFlush();
  }

  /**
   * Closes the current socket for `reason` (logged now when `log`, or already logged when
   * `logged`); `#onClose` follows. Always false (stop reading).
   */
  #drop(reason: string, log: boolean, logged = false): false {
    if (this.#reason !== null) return false;
    this.#reason = reason;
    this.#reasonLogged = log || logged;
    if (log) this.#s.log(`cluster: closed connection to ${this.address}: ${reason}`);
    this.#socket?.destroy();
    return false;
  }

  #onClose(): void {
    const wasOpen = this.#state === "open";
    this.#socket = null;
    this.#reader = null;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#state === "closed") return;
    const reason = this.#reason ?? this.#socketError ?? "closed by the peer";
    this.#failPending(
      new TransportError(
        wasOpen
          ? `connection to ${this.address} lost: ${reason}`
          : `cannot connect to ${this.address}: ${reason}`,
        wasOpen ? "lost" : "unsent",
      ),
    );
    // Requests already failed; one-way messages wait for the next connection.
    this.#queue = this.#queue.filter((q) => q.reqId === 0);
    this.#queueBytes = this.#queue.reduce((n, q) => n + q.body.byteLength, 0);
    this.#failures++;
    if (!this.#downLogged && !this.#reasonLogged) {
      this.#s.log(
        wasOpen
          ? `cluster: lost connection to ${this.address}: ${reason} (reconnecting)`
          : `cluster: cannot reach ${this.address}: ${reason} (retrying)`,
      );
    }
    this.#downLogged = true;
    const delay = this.#backoffMs();
    this.#nextDialAt = Date.now() + delay;
    if (this.#queue.length > 0) this.#waitBackoff(delay);
    else this.#state = "idle";
  }

  /** Doubling from backoffMsMin per failure, capped at backoffMsMax, jittered to [½d, d]. */
  #backoffMs(): number {
    const { backoffMsMin: min, backoffMsMax: max } = this.#s;
    const d = Math.min(max, min * 2 ** Math.min(this.#failures - 1, 30));
    return Math.round(d / 2 + Math.random() * d / 2);
  }

  #settle(id: number, error: Error | undefined, value?: unknown): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (error === undefined) p.resolve(value);
    else p.reject(error);
  }

  #failPending(error: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(error);
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  /**
   * Writes queued frames as one buffer (up to BATCH_BYTES_MAX), announcing a changed identity
   * first; waits for 'drain' when the socket pushes back. Requests that timed out are skipped.
   */
  #flush(): void {
    this.#flushScheduled = false;
    const socket = this.#socket;
    if (this.#state !== "open" || socket === null || this.#reason !== null) return;
    if (this.#waitingDrain || this.#queue.length === 0) return;
    const bodies: Uint8Array[] = [];
    let bytes = 0;
    const self = this.#s.self();
    if (!sameHello(self, this.#helloSent)) {
      this.#helloSent = self;
      const hello = encodeBody({ k: "hello", v: PROTOCOL_VERSION, ...pick(self) });
      bodies.push(hello);
      bytes += hello.byteLength;
    }
    let taken = 0;
    for (const q of this.#queue) {
      if (bytes > 0 && bytes + q.body.byteLength > BATCH_BYTES_MAX) break;
      taken++;
      this.#queueBytes -= q.body.byteLength;
      if (q.reqId !== 0 && !this.#pending.has(q.reqId)) continue;
      bodies.push(q.body);
      bytes += q.body.byteLength;
    }
    this.#queue.splice(0, taken);
    if (bodies.length === 0) return;
    const flowing = socket.write(joinFrames(bodies));
    if (this.#queue.length === 0) return;
    if (flowing) {
      this.#scheduleFlush();
      return;
    }
    this.#waitingDrain = true;
    // Invariant: #timer is unused while open (connect and backoff timers are cleared).
    this.#timer = setTimeout(
      () => this.#drop(`peer accepted no data for ${WRITE_STALL_TIMEOUT_MS} ms`, true),
      WRITE_STALL_TIMEOUT_MS,
    );
    socket.once("drain", () => {
      if (socket !== this.#socket) return;
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#waitingDrain = false;
      this.#flush();
    });
  }
}

function pick(h: Hello): Hello {
  return { clusterId: h.clusterId, nodeId: h.nodeId, address: h.address };
}

function sameHello(a: Hello, b: Hello | null): boolean {
  return b !== null && a.clusterId === b.clusterId && a.nodeId === b.nodeId &&
    a.address === b.address;
}
