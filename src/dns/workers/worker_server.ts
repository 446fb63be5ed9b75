/**
 * WorkerDns: what one DNS worker thread runs. Answers from a ZoneReplica (replica.ts) through
 * the same Answerer as the single-thread server, UDP and TCP on the shared `--dns` port:
 *
 * - TCP: node:net with `reusePort` in every worker (the kernel spreads connections).
 * - UDP, fast path: a socket of its own with SO_REUSEPORT made through FFI (src/lib/ffi_udp.ts),
 *   datagrams taken and answered in batches (recvmmsg/sendmmsg), a non-blocking FFI poll when
 *   idle (udp_ffi.ts).
 * - UDP, portable path (FFI not permitted or libc lacking a symbol): runtime UDP sockets cannot
 *   share a port between threads (the last one bound gets every datagram), so only the worker
 *   told `dgramFallback` (worker 0) takes UDP, with node:dgram; the others serve TCP only.
 *
 * Names outside the zone are relayed to the main thread (its Forwarder and response cache),
 * at most `forwardInflightMax` at once (more: SERVFAIL), and the answers kept in a response cache
 * of the worker's own: a hit costs no trip to the main thread (relaying every forwarded query
 * measured 0.6× the single-thread server's q/s for a cached name; see README "DNS workers").
 *
 * @module
 */
import type { Socket as UdpSocket } from "node:dgram";
import type { Server } from "node:net";
import { errorText } from "../../lib/error_text.ts";
import { Answerer } from "../answerer.ts";
import { BIND_ATTEMPTS_MAX, bindUdp } from "../server.ts";
import { listenTcp, TcpConnections } from "../tcp.ts";
import { forwardKey } from "../forwarder.ts";
import { ResponseCache } from "../response_cache.ts";
import { HEADER_BYTES, type Query } from "../wire.ts";
import type { FromWorker, InitMessage, ToWorker, UdpPath } from "./protocol.ts";
import { ZoneReplica } from "./replica.ts";
import { openFfiUdp, type UdpLoop } from "./udp_ffi.ts";

/** How often a drain looks whether the work in flight is done. */
const DRAIN_POLL_MS = 20;

export class WorkerDns {
  readonly #init: InitMessage;
  readonly #post: (m: FromWorker) => void;
  readonly #replica: ZoneReplica;
  readonly #answerer: Answerer;
  readonly #connections: TcpConnections;
  readonly #relayed = new Map<number, (r: Uint8Array | null) => void>();
  /** Forwarded answers relayed before (the main thread caches them too; a hit here saves the trip). */
  readonly #forwarded = new ResponseCache();
  #nextId = 1;
  #tcp: Server | null = null;
  #dgram: UdpSocket | null = null;
  #ffi: UdpLoop | null = null;
  #closed = false;
  /** A drain began: datagrams that still arrive on the node:dgram socket are not answered. */
  #udpDraining = false;
  #zoneCame: () => void = () => {};
  /**
   * Settles when the first whole zone came. start() waits for it: a restarted worker's UDP
   * socket (kept by the pool) holds the queries sent while it was down, and they must not be
   * answered from the empty zone a replica starts with.
   */
  readonly #zoneReady = new Promise<void>((resolve) => this.#zoneCame = resolve);

  constructor(init: InitMessage, post: (m: FromWorker) => void) {
    this.#init = init;
    this.#post = post;
    this.#replica = new ZoneReplica({
      zone: init.zone,
      onInvalidate: (deps) => this.#answerer.invalidate(deps),
      resync: () => post({ type: "resync" }),
    });
    this.#answerer = new Answerer({
      zone: () => this.#replica.zone,
      forward: init.recursion ? (q) => this.#relay(q) : null,
    });
    this.#connections = new TcpConnections((bytes, tcp) => this.answer(bytes, tcp));
  }

  /** The replica (tests). */
  get replica(): ZoneReplica {
    return this.#replica;
  }

  /** Answers one message (the Answerer's); for tests and the UDP loops. */
  answer(bytes: Uint8Array, tcp: boolean): Uint8Array | Promise<Uint8Array | null> | null {
    return this.#answerer.answer(bytes, tcp);
  }

  /** Handles one message from the main thread (init aside). Never throws. */
  onMessage(m: ToWorker): void {
    switch (m.type) {
      case "zone":
        this.#replica.setZone(m.delta, m.ttls);
        this.#zoneCame();
        return;
      case "recursion": // other recursors: what they answered before is not kept
        this.#forwarded.clear();
        this.#answerer.setForward(m.on ? (q) => this.#relay(q) : null);
        return;
      case "delta":
        this.#replica.applyDelta(m.from, m.delta);
        return;
      case "forwarded": {
        const done = this.#relayed.get(m.id);
        this.#relayed.delete(m.id);
        done?.(m.response);
        return;
      }
      case "metrics":
        this.#post({ type: "counts", id: m.id, counts: this.#answerer.queries.snapshot() });
        return;
      case "drain":
        void this.drain(m.timeoutMs).then((cut) => this.#post({ type: "closed", cut }));
        return;
    }
  }

  /** Once the zone came, binds TCP and UDP; reports `listening` (or throws one line). */
  async start(): Promise<void> {
    await this.#zoneReady;
    const { host, port, index } = this.#init;
    for (let attempt = 1;; attempt++) {
      const udp = await this.#bindUdp(host, port);
      const bound = udp.port ?? port;
      try {
        this.#tcp = await listenTcp(host, bound, {
          onConnection: (s) => this.#connections.accept(s),
          reusePort: true,
        });
      } catch (e) {
        this.#closeUdp(this.#init.udpFd === undefined); // not the pool's yet: close it here
        if (port === 0 && attempt < BIND_ATTEMPTS_MAX) continue;
        throw new Error(
          `dns worker ${index}: cannot listen on TCP ${host}:${bound}: ${errorText(e)}`,
        );
      }
      const udpFd = this.#ffi?.fd;
      this.#post({ type: "listening", port: bound, udp: udp.path, why: udp.why, udpFd });
      return;
    }
  }

  /**
   * Stops taking queries (closes the listeners, UDP reads no more; idle TCP connections close at
   * once, the others once their answers are sent), lets relayed queries finish for up to
   * `timeoutMs`, then closes the rest. Resolves with how many relayed queries that cut.
   */
  async drain(timeoutMs: number): Promise<number> {
    // UDP takes no new query, but the socket stays open until the end so that the answers of
    // queries relayed meanwhile still reach their clients.
    this.#ffi?.stopReceiving();
    this.#udpDraining = true;
    const tcp = this.#tcp;
    this.#tcp = null;
    tcp?.close();
    this.#connections.drain();
    const deadline = Date.now() + timeoutMs;
    while (
      (this.#connections.size > 0 || this.#relayed.size > 0) && Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    }
    const cut = this.#relayed.size;
    this.close();
    return cut;
  }

  /** Closes everything at once; relayed queries in flight get no answer. */
  close(): void {
    this.#closed = true;
    this.#closeUdp();
    this.#tcp?.close();
    this.#tcp = null;
    this.#connections.closeAll();
    for (const done of this.#relayed.values()) done(null);
    this.#relayed.clear();
  }

  /** Binds UDP on the path asked for; `port` is the bound one (null when none is bound). */
  async #bindUdp(
    host: string,
    port: number,
  ): Promise<{ path: UdpPath; port: number | null; why?: string }> {
    let why: string | undefined;
    if (this.#init.udp === "ffi") {
      let opened: ReturnType<typeof openFfiUdp>;
      try {
        const at = { host, port, fd: this.#init.udpFd };
        opened = openFfiUdp(
          at,
          (bytes) => this.answer(bytes, false),
          () => this.#answerer.queries.dropped(),
        );
      } catch (e) {
        throw new Error(`dns: cannot listen on UDP ${host}:${port}: ${errorText(e)}`);
      }
      if ("loop" in opened) {
        this.#ffi = opened.loop;
        return { path: "ffi", port: opened.loop.port };
      }
      why = opened.why;
    }
    // node:dgram sockets cannot share a port: only the worker told `dgramFallback` binds one.
    if (this.#init.dgramFallback && (this.#init.udp === "dgram" || why !== undefined)) {
      const udp = await bindUdp(host, port);
      this.#dgram = udp;
      udp.on("message", (msg, rinfo) => this.#onDatagram(udp, msg, rinfo.port, rinfo.address));
      udp.on("error", (e) => console.error(`dns: UDP socket error: ${errorText(e)}`));
      return { path: "dgram", port: udp.address().port, why };
    }
    return { path: "none", port: null, why };
  }

  /** Stops serving UDP; `closeFd`: also closes the FFI socket (one the pool was not told of). */
  #closeUdp(closeFd = false): void {
    this.#ffi?.close(closeFd);
    this.#ffi = null;
    const udp = this.#dgram;
    this.#dgram = null;
    try {
      udp?.close();
    } catch { /* already closed */ }
  }

  #onDatagram(udp: UdpSocket, msg: Uint8Array, port: number, address: string): void {
    if (this.#udpDraining) return;
    const send = (out: Uint8Array | null) => {
      if (out === null || this.#dgram !== udp) return;
      udp.send(out, port, address, (e) => {
        if (e) console.error(`dns: UDP send to ${address}:${port} failed: ${errorText(e)}`);
      });
    };
    const r = this.answer(msg, false);
    if (r instanceof Promise) r.then(send);
    else send(r);
  }

  /**
   * A forwarded answer from this worker's cache, else relayed to the main thread's forwarder
   * (and cached here as it comes back); null (SERVFAIL) when too many wait.
   */
  #relay(q: Query): Uint8Array | null | Promise<Uint8Array | null> {
    const key = forwardKey(q);
    const hit = this.#forwarded.get(key, q.id, q.bytes.subarray(HEADER_BYTES, q.questionEnd));
    if (hit !== null) return hit;
    if (this.#closed || this.#relayed.size >= this.#init.forwardInflightMax) return null;
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#relayed.set(id, (r) => {
        if (r !== null) this.#forwarded.put(key, r);
        resolve(r);
      });
      this.#post({ type: "forward", id, query: q.bytes.slice() });
    });
  }
}
