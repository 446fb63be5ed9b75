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
import { isIPv6, type Server } from "node:net";
import type { HostPort } from "../lib/host_port.ts";
import type { Store } from "../store/mod.ts";
import { Answerer } from "./answerer.ts";
import { Forwarder, type ForwarderOptions } from "./forwarder.ts";
import { dnsChanges, type DnsReload, RetiredForwarders } from "./reload.ts";
import { listenTcp, TcpConnections } from "./tcp.ts";
import type { ZoneFilter } from "./zone.ts";
import { ZoneView } from "./zone_view.ts";
import { errorText } from "../lib/error_text.ts";
import { settleWithin, TrackedSet } from "../lib/drain.ts";

export {
  TCP_CONNECTIONS_MAX,
  TCP_IDLE_TIMEOUT_MS,
  TCP_PIPELINE_MAX,
  TCP_QUERY_BYTES_MAX,
  TCP_WRITE_BYTES_MAX,
} from "./tcp.ts";
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
  #opts: DnsOptions;
  #forwarder: Forwarder | null;
  readonly #answerer: Answerer;
  readonly #connections: TcpConnections;
  readonly #view: ZoneView;
  /** Forwarded UDP queries waiting for their answer to be sent. */
  readonly #udpWaiting = new TrackedSet<Promise<unknown>>();
  #draining = false;
  /** Forwarders replaced by reconfigure(). */
  readonly #retired = new RetiredForwarders();
  #closed = false;
  #udp: UdpSocket | null = null;
  #tcp: Server | null = null;
  #address: { udp: HostPort; tcp: HostPort } | null = null;

  constructor(opts: DnsOptions) {
    this.#opts = opts;
    const random = opts.random ?? Math.random;
    const forwarder = opts.recursors.length === 0
      ? null
      : new Forwarder(opts.recursors, { random, ...opts.forward });
    this.#forwarder = forwarder;
    const { store, domain, datacenter, edgeDomain, ttl, serviceTtl, visible } = opts;
    this.#view = new ZoneView({
      store,
      zone: { domain, datacenter, edgeDomain, ttl, serviceTtl },
      visible,
      onChange: (deps) => this.#answerer.invalidate(deps),
    });
    this.#answerer = new Answerer({
      zone: () => this.#view.zone,
      forward: forwarder === null ? null : (q) => forwarder.forward(q),
      random,
    });
    this.#connections = new TcpConnections((bytes, tcp) => this.answer(bytes, tcp));
  }

  /**
   * Takes over settings a SIGHUP reloaded (README "Shutdown and reload"): other TTLs rebuild the
   * zone (its answers change once the new zone takes over); other recursors get a new forwarder,
   * its cache empty (queries forwarded before finish on the old one). Resolves once the zone
   * answers with the new TTLs.
   */
  reconfigure(o: DnsReload): Promise<void> {
    const opts = this.#opts;
    const changed = dnsChanges(opts, o);
    this.#opts = { ...opts, ttl: o.ttl, serviceTtl: o.serviceTtl, recursors: o.recursors };
    if (changed.recursors) {
      const old = this.#forwarder;
      if (old !== null) this.#retired.retire(old, opts.recursors.length, opts.forward?.timeoutMs);
      const random = opts.random ?? Math.random;
      const forwarder = o.recursors.length === 0
        ? null
        : new Forwarder(o.recursors, { random, ...opts.forward });
      this.#forwarder = forwarder;
      this.#answerer.setForward(forwarder === null ? null : (q) => forwarder.forward(q));
    }
    if (!changed.ttls) return Promise.resolve();
    const { domain, datacenter, edgeDomain } = opts;
    return this.#view.reconfigure({
      domain,
      datacenter,
      edgeDomain,
      ttl: o.ttl,
      serviceTtl: o.serviceTtl,
    });
  }

  /** The zone view answers come from (benchmarks read its figures). */
  get view(): ZoneView {
    return this.#view;
  }

  /** The forwarder of names outside the zone (DNS workers relay to it); null: none. */
  get forwarder(): Forwarder | null {
    return this.#forwarder;
  }

  /** Zone answers taken from the answer cache and built afresh so far (tests, benchmarks). */
  get answerCounts(): { cached: number; built: number } {
    return this.#answerer.counts;
  }

  /** Queries answered by rcode and type, and dropped (dns_metrics.ts layout; `/metrics`). */
  queryCounts(): Promise<{ counts: number[]; missing: number[] }> {
    return Promise.resolve({ counts: this.#answerer.queries.snapshot(), missing: [] });
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
        this.#tcp = await listenTcp(host, udpPort, {
          onConnection: (s) => this.#connections.accept(s),
        });
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

  /**
   * Graceful shutdown (README "Shutdown and reload"): stops reading queries (UDP) and accepting
   * connections (TCP), closes idle TCP connections at once and the others once their answers
   * are sent, lets forwarded queries get their answers for up to `timeoutMs`, then closes.
   * Resolves with how many queries were still waiting when cut.
   */
  async drain(timeoutMs: number): Promise<number> {
    if (this.#closed || this.#draining) return 0;
    this.#draining = true;
    this.#udp?.removeAllListeners("message");
    const tcp = this.#tcp;
    this.#tcp = null;
    const listening = tcp === null ? undefined : new Promise<void>((r) => tcp.close(() => r()));
    this.#connections.drain();
    await settleWithin(
      Promise.all([this.#connections.empty(), this.#udpWaiting.empty()]),
      timeoutMs,
    );
    const cut = this.#udpWaiting.size + this.#connections.waiting;
    await this.close();
    await listening;
    return cut;
  }

  /** Stops listening, drops open connections and in-flight forwards. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#view.close();
    this.#forwarder?.close();
    this.#retired.close();
    this.#connections.closeAll();
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
    return this.#answerer.answer(bytes, tcp);
  }

  #onDatagram(udp: UdpSocket, msg: Uint8Array, port: number, address: string): void {
    const send = (out: Uint8Array | null, sent?: () => void) => {
      if (out === null || this.#udp !== udp) return sent?.();
      udp.send(out, port, address, (e) => {
        if (e) console.error(`dns: UDP send to ${address}:${port} failed: ${errorText(e)}`);
        sent?.();
      });
    };
    const r = this.answer(msg, false);
    if (!(r instanceof Promise)) return send(r);
    // Waited for by drain() until sent: a socket closed meanwhile would drop the answer.
    const waiting = r.then((out) => new Promise<void>((resolve) => send(out, resolve)));
    this.#udpWaiting.add(waiting);
    waiting.finally(() => this.#udpWaiting.delete(waiting));
  }
}

/** Binds a node:dgram UDP socket (one thread only: it cannot share the port). */
export function bindUdp(host: string, port: number): Promise<UdpSocket> {
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
