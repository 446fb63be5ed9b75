/**
 * PROXY protocol on the proxy's listeners (`--proxy-protocol-from CIDR,…`; README "PROXY
 * protocol"): a connection from a trusted source must begin with a PROXY header (v1 or v2,
 * proxy_protocol.ts); the address it declares becomes the connection's client address for
 * everything that reads one (X-Forwarded-For, access log, allow lists, hashing, per-address
 * limits). A connection from any other source is served as it is, and a PROXY header from it
 * is not honoured (it reaches the request parser or the instance as data).
 *
 * How the declared ends reach the rest of the proxy: they are set on the socket itself as own
 * `remoteAddress`/`remotePort`/`localAddress`/`localPort` properties, which shadow the socket's
 * getters, so every reader of the socket's ends sees the client's; the balancer's own address
 * (the socket's peer, which sent the header) stays readable as `proxiedBy`. A LOCAL header (the
 * balancer's own health check) and `UNKNOWN`/UNSPEC/UNIX ones keep the socket's real ends.
 *
 * A trusted connection whose header is bad (not one, truncated by a close, oversized, an unknown
 * version, family or command) or does not arrive whole within `timeoutMs` is closed. Such
 * closes are logged at most once per `LOG_INTERVAL_MS`, with their count. At most `pendingMax`
 * connections wait for their header at once; more are closed at once.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type net from "node:net";
import { CidrList, parseCidr } from "../lib/cidr.ts";
import { errorText } from "../lib/error_text.ts";
import { type Endpoint, parseProxyHeader } from "./proxy_protocol.ts";

/** How long a trusted connection may take to send its whole PROXY header. */
export const PROXY_HEADER_TIMEOUT_MS = 5_000;
/** Trusted connections waiting for their header at once. */
export const PROXY_HEADERS_PENDING_MAX = 1024;
/** At most one log line about bad headers per this period. */
export const LOG_INTERVAL_MS = 60_000;

/** The ends of a client connection as a socket reports them (the PROXY header's when trusted). */
export interface ConnEnds {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
  /** The address of the balancer that sent the PROXY header declaring the others; unset: none. */
  readonly proxiedBy?: string;
}

export interface ProxyHeaderGateOptions {
  /** Sources that must send a PROXY header. */
  from: CidrList;
  /** Which listener, for the log line: "http", "https", "tcp 5432". */
  log: (line: string) => void;
  /** Default PROXY_HEADER_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Default PROXY_HEADERS_PENDING_MAX. */
  pendingMax?: number;
  /** Clock (ms) for the log interval. Default Date.now. */
  now?: () => number;
}

/** `--proxy-protocol-from`'s CIDRs (checked by config.ts) as a list; none → null. */
export function trustedSources(cidrs: readonly string[]): CidrList | null {
  if (cidrs.length === 0) return null;
  return new CidrList(cidrs.map((c) => {
    const cidr = parseCidr(c);
    if (cidr === null) throw new Error(`--proxy-protocol-from: "${c}" is not a CIDR`);
    return cidr;
  }));
}

/** Sets the declared ends on a socket (see the module comment). */
export function setConnEnds(socket: object, source: Endpoint, dest: Endpoint | null): void {
  const own = (name: string, value: unknown) =>
    Object.defineProperty(socket, name, { value, configurable: true, enumerable: true });
  own("proxiedBy", (socket as ConnEnds).remoteAddress);
  own("remoteAddress", source.address);
  own("remotePort", source.port);
  if (dest !== null) {
    own("localAddress", dest.address);
    own("localPort", dest.port);
  }
}

/** Copies a socket's ends onto another object (a TLS socket over a relay of the raw one). */
export function copyConnEnds(to: object, from: ConnEnds): void {
  const names = ["remoteAddress", "remotePort", "localAddress", "localPort", "proxiedBy"] as const;
  for (const name of names) {
    Object.defineProperty(to, name, { value: from[name], configurable: true, enumerable: true });
  }
}

/** Reads the PROXY header of trusted connections for one proxy (all its listeners). */
export class ProxyHeaderGate {
  readonly #o: ProxyHeaderGateOptions;
  readonly #timeoutMs: number;
  readonly #pendingMax: number;
  readonly #now: () => number;
  readonly #pending = new Set<net.Socket>();
  /** Bad headers since the last log line, and the last one's text. */
  #bad = 0;
  #lastBad = "";
  #loggedAt = -Infinity;

  constructor(opts: ProxyHeaderGateOptions) {
    this.#o = opts;
    this.#timeoutMs = opts.timeoutMs ?? PROXY_HEADER_TIMEOUT_MS;
    this.#pendingMax = opts.pendingMax ?? PROXY_HEADERS_PENDING_MAX;
    this.#now = opts.now ?? Date.now;
  }

  /** Connections waiting for their header. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Bad headers (and timeouts) seen in all, for tests. */
  badHeaders = 0;

  /** Whether a connection from the socket's peer must start with a PROXY header. */
  trusts(socket: ConnEnds): boolean {
    return this.#o.from.has(socket.remoteAddress ?? "");
  }

  /**
   * Reads the PROXY header of a trusted connection (`trusts`), sets the ends it declares on the
   * socket and calls `then` with the bytes that came after it; the socket is left paused (the
   * caller resumes it or puts the bytes back). A bad or late header closes the socket and
   * `then` is never called.
   */
  accept(socket: net.Socket, listener: string, then: (rest: Buffer) => void): void {
    if (this.#pending.size >= this.#pendingMax) {
      this.#refused(socket, listener, `over ${this.#pendingMax} connections await a header`);
      return;
    }
    this.#pending.add(socket);
    let head: Buffer = Buffer.alloc(0);
    const peer = socket.remoteAddress ?? "?";
    const done = () => {
      clearTimeout(timer);
      this.#pending.delete(socket);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("close", onClose);
    };
    const fail = (why: string) => {
      done();
      this.#bad++;
      this.badHeaders++;
      this.#lastBad = `${listener} from ${peer}: ${why}`;
      this.#maybeLog();
      socket.destroy();
    };
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      let r;
      try {
        r = parseProxyHeader(head);
      } catch (e) {
        return fail(errorText(e));
      }
      if (r === "more") return;
      done();
      socket.pause();
      const { source, dest } = r.header;
      if (source !== null) setConnEnds(socket, source, dest);
      then(head.subarray(r.length));
    };
    // A connection closed before sending a byte (a port check) is no bad header.
    const onEnd = () => head.length === 0 ? (done(), socket.destroy()) : fail("closed mid-header");
    const onClose = () => head.length === 0 ? done() : fail("closed mid-header");
    const timer = setTimeout(
      () => fail(`no whole PROXY header within ${this.#timeoutMs} ms`),
      this.#timeoutMs,
    );
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("close", onClose);
    socket.on("error", () => socket.destroy());
  }

  /** Closes every connection still waiting for its header. */
  close(): void {
    for (const s of [...this.#pending]) s.destroy();
    this.#pending.clear();
  }

  #refused(socket: net.Socket, listener: string, why: string): void {
    this.#bad++;
    this.badHeaders++;
    this.#lastBad = `${listener} from ${socket.remoteAddress ?? "?"}: ${why}`;
    this.#maybeLog();
    socket.destroy();
  }

  #maybeLog(): void {
    const now = this.#now();
    if (now - this.#loggedAt < LOG_INTERVAL_MS) return;
    this.#loggedAt = now;
    this.#o.log(
      `proxy: closed ${this.#bad} connection(s) from --proxy-protocol-from sources without a ` +
        `good PROXY header (last: ${this.#lastBad})`,
    );
    this.#bad = 0;
  }
}
