/**
 * One connection a peer dialed to this node's listener: handshake, then one-way messages in and
 * requests in / responses out. With TLS the socket's handshake is done and its client
 * certificate checked (transport.ts); here the hello is verified (`verifyPeer`) and an anonymous
 * peer (no certificate) is held to ANONYMOUS_REQUESTS, one at a time, frames of at most
 * PRE_AUTH_FRAME_BYTES_MAX (the limit of every peer before its hello) and a lifetime.
 * With TLS, what an anonymous peer makes this node log goes through `logLimited` keyed by its IP
 * address, so a flood of connections logs a bounded number of lines.
 * Private to src/cluster/.
 *
 * @module
 */
import type { Socket } from "node:net";
import { decodeBody, encodeBody, FrameReader, joinFrames } from "./_frame.ts";
import { type Frame, parseFrame } from "./_wire.ts";
import { anonymousAllowed, requestKind } from "./_tls.ts";
import {
  ANONYMOUS_REQUESTS_MAX,
  type CertInfo,
  errorCode,
  foreignCluster,
  HANDSHAKE_TIMEOUT_MS,
  type Hello,
  INBOUND_REQUESTS_MAX,
  KEEPALIVE_DELAY_MS,
  type Peer,
  PRE_AUTH_FRAME_BYTES_MAX,
  PROTOCOL_VERSION,
  remoteOf,
  type Settings,
  type TransportTls,
  WRITE_BUFFER_BYTES_MAX,
} from "./_transport_shared.ts";
import { errorText } from "../lib/error_text.ts";

export class InboundConnection {
  /** "ip:port" of the remote socket, for log lines. */
  readonly remote: string;
  /** The remote socket's IP address. */
  readonly remoteHost: string;
  readonly #socket: Socket;
  readonly #s: Settings;
  readonly #reader: FrameReader;
  #from: Peer | null = null;
  /** With TLS: the peer's verified certificate, or null (anonymous); undefined on plain TCP. */
  readonly #cert: CertInfo | null | undefined;
  readonly #tls: TransportTls | undefined;
  /** TLS without a client certificate: only ANONYMOUS_REQUESTS are served. */
  readonly anonymous: boolean;
  /** Set once this side decided to close; no frame is handled after it. */
  #done = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Closes an anonymous connection ANONYMOUS_LIFETIME_MS after it was accepted. */
  #lifetime: ReturnType<typeof setTimeout> | undefined;
  #inflight = 0;
  #out: Uint8Array[] = [];
  #flushScheduled = false;
  #droppedLogged = false;
  readonly #closed: Promise<void>;

  constructor(
    socket: Socket,
    settings: Settings,
    onClosed: (c: InboundConnection) => void,
    tls?: { cert: CertInfo | null; tls: TransportTls },
  ) {
    this.#socket = socket;
    this.#s = settings;
    this.#cert = tls?.cert;
    this.#tls = tls?.tls;
    this.anonymous = tls !== undefined && tls.cert === null;
    // Until the hello is accepted (for an anonymous peer: ever), only small frames.
    this.#reader = new FrameReader(Math.min(PRE_AUTH_FRAME_BYTES_MAX, settings.frameBytesMax));
    const remote = remoteOf(socket);
    this.remote = remote.text;
    this.remoteHost = remote.host;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
    this.#timer = setTimeout(
      () => this.#fail(`no hello within ${HANDSHAKE_TIMEOUT_MS} ms`),
      HANDSHAKE_TIMEOUT_MS,
    );
    if (this.anonymous) {
      const ms = settings.anonymousLifetimeMs;
      this.#lifetime = setTimeout(
        () => this.#fail(`connection without a certificate open for ${ms} ms`),
        ms,
      );
    }
    let error: string | null = null;
    socket.on("error", (e) => error = errorText(e));
    socket.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    this.#closed = new Promise((resolve) => {
      socket.on("close", () => {
        clearTimeout(this.#timer);
        clearTimeout(this.#lifetime);
        if (!this.#done) {
          const { have, want } = this.#reader.partial();
          if (have > 0) {
            this.#log(
              "mid-frame",
              `cluster: connection from ${this.remote} closed mid-frame ` +
                `(${have} bytes of a ${want > 0 ? `${want}-byte ` : ""}frame)`,
            );
          } else if (error !== null) {
            this.#log("failed", `cluster: connection from ${this.remote} failed: ${error}`);
          }
        }
        this.#done = true;
        onClosed(this);
        resolve();
      });
    });
  }

  /** The peer's identity once its hello was accepted. */
  hello(): Peer | null {
    return this.#done ? null : this.#from;
  }

  /** The node named by the peer's certificate (TLS), while the connection is open. */
  certNode(): string | null {
    return this.#done ? null : this.#cert?.node ?? null;
  }

  /** Closes the connection now with one log line naming `reason`. */
  drop(reason: string): void {
    this.#fail(reason);
  }

  close(): Promise<void> {
    this.#done = true;
    this.#socket.destroy();
    return this.#closed;
  }

  #onData(chunk: Uint8Array): void {
    if (this.#done) return;
    const bad = this.#reader.push(chunk, (body) => this.#onFrame(body));
    if (bad !== null) this.#fail(bad);
  }

  /** Handles one frame; false stops reading (the connection is closing). */
  #onFrame(body: Uint8Array): boolean {
    if (this.#done) return false;
    let frame: Frame | string;
    try {
      frame = parseFrame(decodeBody(body));
    } catch (e) {
      frame = `malformed frame (${errorText(e)})`;
    }
    if (typeof frame === "string") return this.#fail(frame);
    if (frame.k === "hello") return this.#onHello(frame.v, frame);
    const from = this.#from;
    if (from === null) return this.#fail(`expected a hello first, got a ${frame.k} frame`);
    switch (frame.k) {
      case "msg":
        if (this.anonymous) return this.#fail("a message from a peer without a certificate");
        this.#onMsg(from, frame.b);
        return true;
      case "req":
        if (this.anonymous && !anonymousAllowed(frame.b)) {
          return this.#fail(`request ${requestKind(frame.b)} from a peer without a certificate`);
        }
        this.#onReq(from, frame.id, frame.b);
        return true;
      default:
        return this.#fail(`unexpected ${frame.k} frame from a dialing peer`);
    }
  }

  /** First hello, or a later one after the peer's identity changed (it joined a cluster). */
  #onHello(version: number, hello: Hello): boolean {
    if (version !== PROTOCOL_VERSION) {
      return this.#reject(
        `protocol version ${version}, this node speaks ${PROTOCOL_VERSION}`,
        hello.address,
      );
    }
    const self = this.#s.self();
    const foreign = foreignCluster(self.clusterId, hello.clusterId);
    if (foreign !== null) return this.#reject(foreign, hello.address);
    const from: Peer = {
      clusterId: hello.clusterId,
      nodeId: hello.nodeId,
      address: hello.address,
      remoteHost: this.remoteHost,
    };
    if (this.#tls !== undefined) {
      const refused = verify(this.#tls, { ...from }, this.#cert ?? null);
      if (refused !== null) return this.#reject(refused, hello.address);
      from.cert = this.#cert ?? null;
    }
    this.#from = from;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.anonymous) this.#reader.limit = this.#s.frameBytesMax;
    this.#write({
      k: "welcome",
      clusterId: self.clusterId,
      nodeId: self.nodeId,
      address: self.address,
    });
    return true;
  }

  #onMsg(from: Peer, body: unknown): void {
    const ours = this.#s.self().clusterId;
    if (from.clusterId === "" || (ours !== "" && ours !== from.clusterId)) {
      if (!this.#droppedLogged) {
        this.#droppedLogged = true;
        this.#s.log(
          `cluster: dropping messages from ${from.address} (${this.remote}): ` +
            (from.clusterId === ""
              ? "it has not joined a cluster"
              : `foreign cluster ${from.clusterId}`),
        );
      }
      return;
    }
    try {
      this.#s.onMessage(from, body);
    } catch (e) {
      this.#s.log(
        `cluster: message handler failed on a message from ${from.address}: ${errorText(e)}`,
      );
    }
  }

  #onReq(from: Peer, id: number, body: unknown): void {
    const max = this.anonymous ? ANONYMOUS_REQUESTS_MAX : INBOUND_REQUESTS_MAX;
    if (this.#inflight >= max) {
      this.#respond(id, undefined, `busy: ${max} request${max === 1 ? "" : "s"} in flight`);
      return;
    }
    this.#inflight++;
    let handled: Promise<unknown>;
    try {
      handled = Promise.resolve(this.#s.onRequest(from, body));
    } catch (e) {
      handled = Promise.reject(e);
    }
    handled.then(
      (result) => this.#respond(id, result, undefined),
      (e) => this.#respond(id, undefined, errorText(e), errorCode(e)),
    ).finally(() => this.#inflight--);
  }

  #respond(id: number, result: unknown, err: string | undefined, code?: string): void {
    if (this.#done) return;
    let body: Uint8Array;
    try {
      body = encodeBody(
        err === undefined
          ? { k: "res", id, b: result }
          : { k: "res", id, err, ...(code === undefined ? {} : { code }) },
      );
      if (body.byteLength > this.#s.frameBytesMax) {
        throw new Error(
          `${body.byteLength} bytes exceed the frame limit of ${this.#s.frameBytesMax} bytes`,
        );
      }
    } catch (e) {
      body = encodeBody({ k: "res", id, err: `response could not be sent: ${errorText(e)}` });
    }
    this.#push(body);
  }

  #write(frame: Frame): void {
    this.#push(encodeBody(frame));
  }

  #push(body: Uint8Array): void {
    this.#out.push(body);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  /** One socket write per tick for everything answered in it. */
  #flush(): void {
    this.#flushScheduled = false;
    const out = this.#out;
    this.#out = [];
    if (out.length === 0 || this.#done) return;
    this.#socket.write(joinFrames(out));
    if (this.#socket.writableLength > WRITE_BUFFER_BYTES_MAX) {
      this.#fail(`peer is not reading its responses (${this.#socket.writableLength} bytes queued)`);
    }
  }

  /** Tells the dialer why, then closes once the reply is out (or the handshake timer fires). */
  #reject(reason: string, peerAddress: string): boolean {
    // A misconfigured peer retries every few seconds: one line per peer and reason a minute.
    this.#s.logLimited(
      this.#member()
        ? `reject ${this.remoteHost} ${peerAddress} ${reason}`
        : this.#limitKey(reason),
      `cluster: rejected connection from ${this.remote}: ${reason}`,
    );
    this.#done = true;
    this.#from = null;
    this.#socket.end(joinFrames([encodeBody({ k: "reject", reason })]));
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#socket.destroy(), HANDSHAKE_TIMEOUT_MS);
    }
    return false;
  }

  /** Closes the connection with one log line; always false (stop reading). */
  #fail(reason: string): false {
    if (this.#done) return false;
    this.#done = true;
    this.#log(reason, `cluster: closed connection from ${this.remote}: ${reason}`);
    this.#socket.destroy();
    return false;
  }

  /** True for a peer with a verified certificate, and on plain TCP (dev mode: log all). */
  #member(): boolean {
    return this.#cert !== null;
  }

  /**
   * Logs `line`; for a peer that is not a known member, at most once per LOG_REPEAT_MS per remote
   * IP and kind of `reason` (numbers and quoted, peer-chosen words do not make a new kind).
   */
  #log(reason: string, line: string): void {
    if (this.#member()) this.#s.log(line);
    else this.#s.logLimited(this.#limitKey(reason), line);
  }

  #limitKey(reason: string): string {
    const kind = reason.replace(/"[^"]*"/g, '""').replace(/[0-9a-f:.]*[0-9][0-9a-f:.]*/gi, "#");
    return `inbound ${this.remoteHost} ${kind.slice(0, 80)}`;
  }
}

/** `verifyPeer` for an inbound hello; a throwing verifier refuses with its message. */
function verify(
  tls: TransportTls,
  hello: Hello & { remoteHost?: string },
  cert: CertInfo | null,
): string | null {
  try {
    return tls.verifyPeer({ hello, cert, inbound: true });
  } catch (e) {
    return `peer verification failed: ${errorText(e)}`;
  }
}
