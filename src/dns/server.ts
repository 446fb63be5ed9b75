/**
 * DnsServer: the sockets around the request path. UDP and TCP (RFC 7766: 2-byte length framing,
 * several queries per connection, answers possibly out of order, idle timeout) on one address.
 * The zone is kept current from the store's change feed by a ZoneView (zone_view.ts: deltas,
 * chunked rebuilds on a reset); answering reads only memory, and encoded answers are kept until
 * a delta changes what they were built from (answer_cache.ts). Nothing a client sends can throw
 * out of a handler.
 *
 * @module
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, isIPv6, type Server, type Socket } from "node:net";
import type { HostPort } from "../lib/host_port.ts";
import type { Store } from "../store/mod.ts";
import { AnswerCache } from "./answer_cache.ts";
import { Forwarder, type ForwarderOptions } from "./forwarder.ts";
import {
  type EncodedReply,
  encodeReply,
  errorResponse,
  fitResponse,
  responseLimit,
  writeResponse,
} from "./reply.ts";
import { type Reply, resolveAnswer } from "./resolve.ts";
import { HEADER_BYTES, parseQuery, type Query, RCODE } from "./wire.ts";
import type { ZoneFilter } from "./zone.ts";
import { ZoneView } from "./zone_view.ts";
import { errorText } from "../lib/error_text.ts";

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
/** Attempts to find a port free for both UDP and TCP when listening on port 0. */
export const BIND_ATTEMPTS_MAX = 8;

export interface DnsOptions {
  /** The replica to answer from (read API and subscribe()). */
  store: Store;
  /** UDP and TCP listen address; port 0 picks a free port (the same one for both). */
  listen: HostPort;
  /** Lower case with trailing dot, e.g. `berth.`. */
  domain: string;
  /** Lower case: names may be qualified with it, `web.service.dc1.berth` (default `dc1`). */
  datacenter?: string;
  /** Names under it answer A/AAAA of the alive proxy members, TTL 0, rotated; null: none. */
  edgeDomain: string | null;
  /** TTL (seconds) of service, node and addr answers. */
  ttl: number;
  /** Service TTLs (seconds) by lower-cased service name, `*` for every other service. */
  serviceTtl?: ReadonlyMap<string, number>;
  /** Upstream resolvers for other names; empty: REFUSED. */
  recursors: HostPort[];
  /** [0, 1) randomness for answer shuffling and upstream ids (default Math.random). */
  random?: () => number;
  /** Forwarder tuning: timeoutMs, entriesMax, bytesMax, inflightMax, now. */
  forward?: ForwarderOptions;
  /**
   * `--dns-acl`: what the zone may name, asked at every rebuild (the zone is rebuilt when the
   * ACL tables change); absent: every name.
   */
  visible?: () => ZoneFilter;
}

export class DnsServer {
  readonly #opts: DnsOptions;
  readonly #random: () => number;
  readonly #forwarder: Forwarder | null;
  readonly #connections = new Set<Socket>();
  readonly #encoded = new WeakMap<Reply, EncodedReply>();
  readonly #answers = new AnswerCache();
  readonly #view: ZoneView;
  #cached = 0;
  #built = 0;
  #closed = false;
  #udp: UdpSocket | null = null;
  #tcp: Server | null = null;
  #address: { udp: HostPort; tcp: HostPort } | null = null;

  constructor(opts: DnsOptions) {
    this.#opts = opts;
    this.#random = opts.random ?? Math.random;
    this.#forwarder = opts.recursors.length === 0
      ? null
      : new Forwarder(opts.recursors, { random: this.#random, ...opts.forward });
    const { store, domain, datacenter, edgeDomain, ttl, serviceTtl, visible } = opts;
    this.#view = new ZoneView({
      store,
      zone: { domain, datacenter, edgeDomain, ttl, serviceTtl },
      visible,
      onChange: (deps) => deps === null ? this.#answers.clear() : this.#answers.invalidate(deps),
    });
  }

  /** The zone view answers come from (benchmarks read its figures). */
  get view(): ZoneView {
    return this.#view;
  }

  /** Zone answers taken from the answer cache and built afresh so far (tests, benchmarks). */
  get answerCounts(): { cached: number; built: number } {
    return { cached: this.#cached, built: this.#built };
  }

  /** The bound addresses; throws before start(). */
  get address(): { udp: HostPort; tcp: HostPort } {
    if (this.#address === null) throw new Error("dns: address read before start()");
    return this.#address;
  }

  /**
   * Subscribes to the store, builds the zone, and binds UDP and TCP. Rejects with one line on a
   * bind error.
   */
  async start(): Promise<void> {
    await this.#view.start();
    if (this.#closed) return; // close() came while the zone was being built
    const { host, port } = this.#opts.listen;
    for (let attempt = 1;; attempt++) {
      const udp = await bindUdp(host, port);
      const udpPort = udp.address().port;
      try {
        this.#tcp = await listenTcp(host, udpPort, (s) => this.#onConnection(s));
      } catch (e) {
        udp.close();
        if (port === 0 && attempt < BIND_ATTEMPTS_MAX) continue;
        this.#view.close();
        throw new Error(`dns: cannot listen on TCP ${host}:${udpPort}: ${errorText(e)}`);
      }
      this.#udp = udp;
      // No setRecvBufferSize(): under Deno 2.9's node:dgram it cut an echo server from ~19k to
      // ~330 queries/s here (dnsperf, loopback). The system default buffer is kept.
      udp.on("message", (msg, rinfo) => this.#onDatagram(udp, msg, rinfo.port, rinfo.address));
      udp.on("error", (e) => console.error(`dns: UDP socket error: ${errorText(e)}`));
      this.#address = { udp: { host, port: udpPort }, tcp: { host, port: udpPort } };
      return;
    }
  }

  /** Stops listening, drops open connections and in-flight forwards. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#view.close();
    this.#forwarder?.close();
    for (const c of this.#connections) c.destroy();
    this.#connections.clear();
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = null;
    this.#tcp = null;
    await Promise.all([
      udp === null ? undefined : new Promise<void>((r) => udp.close(() => r())),
      tcp === null ? undefined : new Promise<void>((r) => tcp.close(() => r())),
    ]);
  }

  /**
   * Answers one message: the response bytes, a promise of them (forwarded), or null to drop.
   * Exposed for benchmarks and tests; never throws.
   */
  answer(bytes: Uint8Array, tcp: boolean): Uint8Array | Promise<Uint8Array | null> | null {
    let q: ReturnType<typeof parseQuery>;
    try {
      q = parseQuery(bytes);
    } catch {
      return null;
    }
    if (q === null) return null;
    const recursion = this.#forwarder !== null;
    if (!("name" in q)) return errorResponse(q, q.rcode, { recursion });
    try {
      if (q.edns !== null && q.edns.version > 0) {
        return errorResponse(q, RCODE.BADVERS, { recursion });
      }
      const limitBytes = responseLimit(q, tcp);
      const key = `${q.type} ${q.name}`;
      let encoded = q.class === 1 ? this.#answers.get(key) : undefined;
      if (encoded !== undefined) this.#cached++;
      else {
        this.#built++;
        const answer = resolveAnswer(this.#view.zone, q, q.class);
        if (answer !== null) {
          const { reply, depends } = answer;
          encoded = this.#encoded.get(reply) ?? encodeReply(reply);
          if (reply.rcode === RCODE.NOERROR && q.class === 1) {
            this.#answers.set(key, encoded, depends);
          } else this.#encoded.set(reply, encoded);
        }
      }
      if (encoded !== undefined) {
        return writeResponse(q, encoded, { limitBytes, recursion, random: this.#random });
      }
      if (this.#forwarder === null) return errorResponse(q, RCODE.REFUSED, { recursion });
      return this.#forward(this.#forwarder, q, limitBytes);
    } catch (e) {
      console.error(`dns: failed to answer ${q.name}: ${errorText(e)}`);
      return errorResponse(q, RCODE.SERVFAIL, { recursion });
    }
  }

  async #forward(f: Forwarder, q: Query, limitBytes: number): Promise<Uint8Array | null> {
    try {
      const r = await f.forward(q);
      if (r === null) return errorResponse(q, RCODE.SERVFAIL, { recursion: true });
      return fitResponse(q, r, limitBytes);
    } catch (e) {
      console.error(`dns: forwarding ${q.name} failed: ${errorText(e)}`);
      return errorResponse(q, RCODE.SERVFAIL, { recursion: true });
    }
  }

  #onDatagram(udp: UdpSocket, msg: Uint8Array, port: number, address: string): void {
    const send = (out: Uint8Array | null) => {
      if (out === null || this.#udp !== udp) return;
      udp.send(out, port, address, (e) => {
        if (e) console.error(`dns: UDP send to ${address}:${port} failed: ${errorText(e)}`);
      });
    };
    const r = this.answer(msg, false);
    if (r instanceof Promise) r.then(send);
    else send(r);
  }

  #onConnection(socket: Socket): void {
    if (this.#connections.size >= TCP_CONNECTIONS_MAX) {
      socket.destroy();
      return;
    }
    this.#connections.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(TCP_IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.#connections.delete(socket));
    let buffered: Uint8Array = new Uint8Array(0);
    let waiting = 0;
    const send = (out: Uint8Array | null) => {
      if (out === null || socket.destroyed) return;
      if (socket.writableLength > TCP_WRITE_BYTES_MAX) {
        socket.destroy();
        return;
      }
      const framed = new Uint8Array(2 + out.length);
      framed[0] = out.length >>> 8;
      framed[1] = out.length & 0xff;
      framed.set(out, 2);
      socket.write(framed);
    };
    socket.on("data", (chunk: Uint8Array) => {
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
        const r = this.answer(msg, true);
        if (!(r instanceof Promise)) {
          send(r);
          continue;
        }
        if (++waiting >= TCP_PIPELINE_MAX) socket.pause();
        r.then((out) => {
          if (waiting-- === TCP_PIPELINE_MAX) socket.resume();
          send(out);
        });
      }
    });
  }
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function bindUdp(host: string, port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(host) ? "udp6" : "udp4");
    const fail = (e: Error) => {
      socket.close();
      reject(new Error(`dns: cannot listen on UDP ${host}:${port}: ${errorText(e)}`));
    };
    socket.once("error", fail);
    socket.bind(port, host, () => {
      socket.off("error", fail);
      resolve(socket);
    });
  });
}

function listenTcp(host: string, port: number, onConnection: (s: Socket) => void) {
  return new Promise<Server>((resolve, reject) => {
    const server = createServer({ pauseOnConnect: false }, onConnection);
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      server.on("error", (e) => console.error(`dns: TCP server error: ${errorText(e)}`));
      resolve(server);
    });
  });
}
