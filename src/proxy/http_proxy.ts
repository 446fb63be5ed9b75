/**
 * The HTTP load balancer: a `node:net` server whose connections (`ClientConn`) parse requests
 * with llhttp; each request is routed by the current route table and streamed to a target over
 * a pooled keep-alive connection (`Attempt`).
 *
 * The request path (dispatch, middlewares, attempts, retries) reads best in one place; the
 * options and their defaults (proxy_options.ts), the HTTPS listener, HTTP/2, h2c, upgrades, TCP
 * routes, the middlewares (middleware/) and request records are modules of their own. Over 700
 * lines: the request path and the proxy's start, drain and close share its private state (pool,
 * clock, route feed, the attempt and upgrade contexts); split apart, each would reach into the
 * other's.
 *
 * @module
 */
import net from "node:net";
import type { Duplex } from "node:stream";
import type { HostPort } from "../lib/host_port.ts";
import { formatHostPort } from "../lib/host_port.ts";
import type { Change } from "../store/mod.ts";
import type { Target } from "./balancer.ts";
import { Attempt, type AttemptContext, type Failure } from "./attempt.ts";
import { ClientConn, type ClientRequest } from "./client_conn.ts";
import { type ConnInfo, type DispatchSink, PLAIN_CONN } from "./conn_info.ts";
import { CoarseClock, tickFor } from "./coarse_clock.ts";
import { loadRequestParser } from "./_llhttp.ts";
import {
  answer,
  type Exchange,
  limitChunkedBody,
  type PlainAnswer,
  sendPlain,
} from "./exchange.ts";
import { hasGrpcContentType, sendProxyError, wantsGrpcErrors } from "./grpc_status.ts";
import { H2cSessions } from "./h2c_sessions.ts";
import { forwardH2c, type H2cContext } from "./h2c_upstream.ts";
import { readRequestHead } from "./headers.ts";
import { TcpProxy } from "./tcp_proxy.ts";
import type { PathRoute, RouteTable } from "./routes.ts";
import { RouteFeed, type RouteSource } from "./route_feed.ts";
import { UPSTREAM_QUEUE_TIMEOUT_MS, UpstreamPool } from "./upstream_pool.ts";
import { listenOn } from "./listen.ts";
import { HttpsListener } from "./https_listener.ts";
import { lbSettings } from "./lb_settings.ts";
import { ensureStickyCookie, pickTarget } from "./sticky_cookie.ts";
import { H2Frontend } from "./h2_frontend.ts";
import { answeredAcme, routeOrAnswer, withHstsSink } from "./edge_rules.ts";
import { forwardUpgrade, type UpgradeContext } from "./upgrade.ts";
import { settleWithin, TrackedSet } from "../lib/drain.ts";
import { ProxyHeaderGate } from "./proxy_protocol_in.ts";
import { UdpProxy } from "./udp_proxy.ts";
import { type Chain, EMPTY_CHAIN, runRequestStages, wrapResponse } from "./middleware/pipeline.ts";
import { chainOf, chainsOf } from "./middleware/order.ts";
import type { RouteSettings } from "./route_settings.ts";
import {
  RecordingSink,
  recordRefused,
  type RequestCounter,
  type RequestObserver,
} from "./request_record.ts";
import { RequestMeter } from "./request_meter.ts";
import { RequestIdPolicy } from "./request_id.ts";
import { normalizeTarget, saneHost } from "./request_path.ts";

import * as defaults from "./proxy_options.ts";
import type { ProxyOptions, RoutesReport } from "./proxy_options.ts";

export type { ProxyOptions, RoutesReport } from "./proxy_options.ts";

/**
 * HTTP load balancer over the store's routes. `start()` listens; `close()` stops listening and
 * ends every connection, pool and timer.
 */
export class HttpProxy {
  readonly #opts: ProxyOptions;
  readonly #source: RouteSource;
  readonly #pool: UpstreamPool;
  readonly #server: net.Server;
  readonly #https: HttpsListener | null;
  readonly #h2: H2Frontend | null; // HTTP/2 on the HTTPS listener (opts.h2)
  readonly #headerBytesMax: number;
  readonly #headersTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #keepAliveTimeoutMs: number;
  readonly #clients = new TrackedSet<ClientConn>();
  readonly #retriesMax: number;
  readonly #connectTimeoutMs: number;
  readonly #responseTimeoutMs: number;
  readonly #connectionsMax: number;
  readonly #bodyBytesMax: number;
  readonly #tunnelIdleTimeoutMs: number;
  readonly #streamIdleTimeoutMs: number;
  readonly #log: (line: string) => void;
  readonly #clientTunnels = new TrackedSet<Duplex>();
  /** Response and stream-idle deadlines of requests in flight (no timer per request). */
  readonly #clock: CoarseClock;
  readonly #tcp: TcpProxy | null;
  readonly #udp: UdpProxy | null;
  /** PROXY headers of connections from `proxyProtocolFrom` sources; null: none trusted. */
  readonly #proxyIn: ProxyHeaderGate | null;
  /** Routes with `proto` h2c/grpc: pooled HTTP/2 cleartext sessions (h2c_upstream.ts). */
  readonly #h2c: H2cContext;
  /** The route table, following the store's change feed. */
  readonly #routes: RouteFeed;
  #unsubscribe: (() => void) | null = null;
  #address: HostPort | null = null;
  /** The latest TCP listener update; updates run one after another, in table order. */
  #tcpUpdating: Promise<void> = Promise.resolve();
  /** Holds TCP listener updates back until start() has bound the proxy's own ports. */
  #listening: PromiseWithResolvers<void> | null = null;
  #closed = false;
  /** Told of every request: the metrics, then the observers (null: none). */
  readonly #observers: readonly RequestObserver[] | null;
  /**
   * The metrics when no observer wants records: a request is counted by a `RequestMeter` its
   * client's sink tells, with no record made (null: records for `#observers`, or nothing).
   */
  readonly #meterFor: RequestCounter | null;
  readonly #member: string;
  /** Whose own X-Request-Id is kept (`requestIdFrom`), new ids. */
  readonly #requestIds: RequestIdPolicy;
  /** A route's middleware chain by its settings (order.ts). */
  readonly #chainOf: (s: RouteSettings) => Chain;
  /** drain() began: listeners closed (their close promises), no new connection served. */
  #draining: Promise<void>[] | null = null;

  constructor(opts: ProxyOptions) {
    this.#opts = opts;
    this.#source = opts.source;
    this.#pool = new UpstreamPool(opts);
    this.#retriesMax = opts.retriesMax ?? defaults.RETRIES_MAX;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? defaults.CONNECT_TIMEOUT_MS;
    this.#responseTimeoutMs = opts.responseTimeoutMs ?? defaults.RESPONSE_TIMEOUT_MS;
    this.#connectionsMax = opts.connectionsMax ?? defaults.CONNECTIONS_MAX;
    this.#bodyBytesMax = opts.bodyBytesMax ?? defaults.BODY_BYTES_MAX;
    this.#tunnelIdleTimeoutMs = opts.tunnelIdleTimeoutMs ?? defaults.TUNNEL_IDLE_TIMEOUT_MS;
    this.#streamIdleTimeoutMs = opts.streamIdleTimeoutMs ?? defaults.STREAM_IDLE_TIMEOUT_MS;
    this.#log = opts.log ?? console.error;
    const recorders = opts.observers ?? [];
    const counter = opts.requestMetrics ?? null;
    const told = counter === null ? recorders : [counter, ...recorders];
    this.#observers = told.length > 0 ? told : null;
    this.#meterFor = recorders.length === 0 ? counter : null;
    this.#member = opts.member ?? "";
    this.#chainOf = opts.middlewares === undefined ? chainOf : chainsOf(opts.middlewares);
    this.#headerBytesMax = opts.headerBytesMax ?? defaults.HEADER_BYTES_MAX;
    this.#headersTimeoutMs = opts.headersTimeoutMs ?? defaults.HEADERS_TIMEOUT_MS;
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? defaults.REQUEST_TIMEOUT_MS;
    this.#keepAliveTimeoutMs = opts.keepAliveTimeoutMs ?? defaults.KEEP_ALIVE_TIMEOUT_MS;
    this.#clock = new CoarseClock(
      tickFor(
        Math.min(
          this.#responseTimeoutMs,
          this.#streamIdleTimeoutMs,
          this.#headersTimeoutMs,
          this.#requestTimeoutMs,
          this.#keepAliveTimeoutMs,
        ),
      ),
      { now: opts.now },
    );
    Object.assign(this.#upgradeContext, {
      pool: this.#pool,
      connectTimeoutMs: this.#connectTimeoutMs,
      retriesMax: this.#retriesMax,
      idleTimeoutMs: this.#tunnelIdleTimeoutMs,
      observers: this.#observers,
      member: this.#member,
      chainOf: this.#chainOf,
    });
    Object.assign(this.#attemptContext, {
      pool: this.#pool,
      clock: this.#clock,
      connectTimeoutMs: this.#connectTimeoutMs,
      responseTimeoutMs: this.#responseTimeoutMs,
      streamIdleTimeoutMs: this.#streamIdleTimeoutMs,
    });
    this.#h2c = {
      pool: this.#pool,
      sessions: new H2cSessions({
        connectTimeoutMs: this.#connectTimeoutMs,
        // Private sessions count as the pool's connections per instance do.
        privateSessionsPerTargetMax: opts.socketsMax,
        drainMs: opts.drainMs,
        now: opts.now,
        onConnectFailed: (t) => this.#pool.connectFailed(t),
      }),
      clock: this.#clock,
      retriesMax: this.#retriesMax,
      responseTimeoutMs: this.#responseTimeoutMs,
      streamIdleTimeoutMs: this.#streamIdleTimeoutMs,
      queueTimeoutMs: opts.queueTimeoutMs ?? UPSTREAM_QUEUE_TIMEOUT_MS,
    };
    this.#requestIds = new RequestIdPolicy(opts.requestIdFrom ?? null, this.#log);
    const from = opts.proxyProtocolFrom;
    this.#proxyIn = from == null ? null : new ProxyHeaderGate({ from, log: this.#log });
    const tcpHost = defaults.tcpHostOf(opts);
    this.#tcp = tcpHost == null ? null : new TcpProxy(this.#pool, {
      host: tcpHost,
      connectTimeoutMs: this.#connectTimeoutMs,
      retriesMax: this.#retriesMax,
      idleTimeoutMs: this.#tunnelIdleTimeoutMs,
      connectionsMax: this.#connectionsMax,
      log: opts.routeLog ?? this.#log,
      reserved: opts.reserved,
      reusePort: opts.reusePort,
      proxyIn: this.#proxyIn,
      observer: opts.tcpObserver,
    });
    const udpHost = opts.udpHost === undefined ? tcpHost : opts.udpHost;
    this.#udp = udpHost == null ? null : new UdpProxy({
      host: udpHost,
      log: opts.routeLog ?? this.#log,
      reserved: opts.reserved,
      observer: opts.udpObserver,
    });
    this.#routes = new RouteFeed({
      source: opts.source,
      edgeDomain: opts.edgeDomain,
      load: this.#pool.load,
      random: opts.random,
      rampedWeight: this.#pool.slowStart.weight,
      sliceSize: opts.routeSliceSize,
      targetsChanged: (gone, back) => {
        this.#pool.retainChanged(gone, back);
        this.#h2c.sessions.retainChanged(gone, back);
      },
      targetsReset: (live) => {
        this.#pool.retain(live);
        this.#h2c.sessions.retain(live);
      },
      tcpChanged: (ports) => {
        const tcp = this.#tcp;
        if (tcp === null) return;
        this.#tcpUpdating = this.#tcpUpdating.then(() =>
          this.#closed ? undefined : tcp.update(this.#routes.table, ports)
        );
      },
      udpChanged: (ports) => {
        const udp = this.#udp;
        if (udp === null) return;
        // In the same chain as the TCP updates: held back until start() bound the proxy's ports.
        this.#tcpUpdating = this.#tcpUpdating.then(() =>
          this.#closed ? undefined : udp.update(this.#routes.table, ports)
        );
      },
      log: opts.routeLog ?? this.#log,
    });
    // Half-open: a client that shuts down its sending side still gets its responses.
    this.#server = net.createServer({ allowHalfOpen: true }, this.#onConnection);
    this.#h2 = !opts.h2 ? null : new H2Frontend({
      dispatch: (req, res, conn) => this.dispatch(req, res, conn),
      onRefused: (req, status, bytes, conn) =>
        this.#refused(req, status, bytes, conn, Date.now(), 0),
      headerListBytesMax: this.#headerBytesMax,
      requestTimeoutMs: this.#requestTimeoutMs,
      log: this.#log,
    });
    this.#https = opts.tls === undefined ? null : new HttpsListener({
      reusePort: opts.reusePort,
      ...opts.tls,
      admit: () => this.#connections() < this.#connectionsMax,
      serveHttp1: (socket, conn) => this.#serveHttp1(socket, conn),
      h2: this.#h2,
      proxyIn: this.#proxyIn,
      log: this.#log,
    });
  }

  /**
   * Client connections open (HTTP/1.1 and HTTP/2), TLS handshakes and PROXY headers in progress
   * included.
   */
  /** Client connections open now (HTTP/1.1, HTTP/2, TLS handshakes); for the metrics. */
  get clientConnections(): number {
    return this.#connections();
  }

  #connections(): number {
    return this.#clients.size + (this.#h2?.sessions ?? 0) + (this.#https?.handshaking ?? 0) +
      (this.#proxyIn?.pending ?? 0);
  }

  /** The bound address (the real port when `listen.port` was 0). Throws before start(). */
  get address(): HostPort {
    if (this.#address === null) throw new Error("HttpProxy: not started");
    return this.#address;
  }

  /** The HTTPS listener's bound address. Throws before start() or without `tls`. */
  get httpsAddress(): HostPort {
    if (this.#https === null) throw new Error("HttpProxy: no HTTPS listener");
    return this.#https.address;
  }

  /** Skips a target another proxy worker ejected (UpstreamPool `eject`). */
  eject(key: string, ms: number): void {
    this.#pool.eject(key, ms);
  }

  /** Resolves when the routes are built and TCP listeners match them (tests, orderly start). */
  async settled(): Promise<void> {
    await this.#routes.settled();
    await this.#tcpUpdating;
  }

  /**
   * Re-reads the certificates the HTTPS listener serves (the proxy does on a change of
   * `edge_certs` from its source; a proxy worker when the main thread sends new ones).
   */
  reloadCertificates(): void {
    this.#https?.reload();
  }

  /**
   * The route table in use: updated in place by each change, a new object after a full rebuild
   * (start, snapshot install, restore).
   */
  get table(): RouteTable {
    return this.#routes.table;
  }

  /** Ports with a TCP route listener. */
  get tcpPorts(): number[] {
    return this.#tcp?.ports ?? [];
  }

  /** The routes in use and each TCP route's listener state (for the routes API and /ui). */
  report(): RoutesReport {
    return {
      listen: this.#opts.listen === null
        ? null
        : formatHostPort(this.#address ?? this.#opts.listen),
      https: this.#opts.tls === undefined
        ? null
        : formatHostPort(this.#https?.bound ?? this.#opts.tls.listen),
      http: this.#routes.table.httpRoutes(),
      tcp: this.#tcp?.report(this.#routes.table.tcpClashes) ?? [],
      ...(this.#udp === null ? {} : { udp: this.#udp.report(this.#routes.table.udpClashes) }),
      conflicts: this.#routes.table.conflicts,
      ejected: this.#pool.ejected(),
    };
  }

  /**
   * Builds the routes and follows the change feed, listens, then opens the TCP route listeners:
   * the proxy's own port is bound before any route can claim it.
   */
  async start(): Promise<void> {
    await loadRequestParser();
    if (this.#closed) return;
    // The routes are built (in slices, see route_feed.ts) before a client can connect; the
    // TCP route listeners open only once the proxy's own ports are bound.
    const listening = this.#listening = Promise.withResolvers<void>();
    this.#tcpUpdating = listening.promise;
    this.#routes.start();
    this.#unsubscribe = this.#source.subscribe(this.#onChange);
    try {
      await this.#routes.settled();
      if (this.#closed) return listening.resolve(); // close() came while the routes were built
      if (this.#opts.listen !== null) {
        this.#address = await listenOn(this.#server, this.#opts.listen, {
          flag: "proxy-http",
          log: this.#log,
          reusePort: this.#opts.reusePort,
        });
      }
      await this.#https?.start();
    } catch (e) {
      await this.close();
      throw e;
    }
    listening.resolve();
    await this.#tcpUpdating;
  }

  /**
   * Graceful shutdown (README "Shutdown and reload"): stops accepting on every listener (HTTP,
   * HTTPS, TCP routes), closes idle keep-alive connections at once, lets requests, HTTP/2
   * streams (after GOAWAY), tunnels and TCP relays under way finish for up to `timeoutMs`, then
   * closes the rest (`close()`). Resolves with how many were still in flight when cut.
   */
  async drain(timeoutMs: number): Promise<number> {
    if (this.#closed || this.#draining !== null) return 0;
    const listeners: Promise<void>[] = [];
    this.#draining = listeners;
    if (this.#server.listening) {
      listeners.push(new Promise<void>((resolve) => this.#server.close(() => resolve())));
    }
    if (this.#https !== null) listeners.push(this.#https.close());
    const tcp = this.#tcp?.drain(timeoutMs) ?? 0;
    const h2 = this.#h2?.close(timeoutMs) ?? 0;
    for (const c of this.#clients) c.drain();
    await settleWithin(
      Promise.all([this.#clients.empty(), this.#clientTunnels.empty()]),
      timeoutMs,
    );
    let cut = this.#clientTunnels.size + (await tcp) + (await h2);
    for (const c of this.#clients) cut += c.requests;
    await this.close();
    return cut;
  }

  /** Stops listening, closes every connection (HTTP/2: GOAWAY first), tunnel and pool. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#listening?.resolve(); // held TCP updates run and do nothing
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#routes.close();
    const httpsClosed = this.#https?.close(); // done once its connections are gone
    await this.#h2?.close(); // streams under way get H2_CLOSE_GRACE_MS to finish
    this.#proxyIn?.close();
    for (const s of this.#clientTunnels) s.destroy();
    this.#clientTunnels.clear();
    for (const c of this.#clients) c.destroy();
    this.#clients.clear();
    this.#clock.close();
    await httpsClosed;
    await this.#tcpUpdating;
    await this.#tcp?.close();
    this.#udp?.close();
    this.#pool.close();
    this.#h2c.sessions.close();
    if (this.#draining !== null) await Promise.all(this.#draining);
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #onChange = (c: Change): void => {
    if (c.tables.has("edge_certs")) this.#https?.reload();
  };

  #onConnection = (socket: net.Socket): void => {
    const gate = this.#proxyIn;
    if (gate === null || !gate.trusts(socket)) return this.#serveHttp1(socket, PLAIN_CONN);
    if (this.#draining !== null || this.#connections() >= this.#connectionsMax) {
      socket.destroy();
      return;
    }
    gate.accept(socket, "http", (rest) => {
      if (rest.length > 0) socket.unshift(rest);
      this.#serveHttp1(socket, PLAIN_CONN);
      socket.resume();
    });
  };

  /**
   * Serves HTTP/1.1 on a client connection (plain, or a TLS socket after its handshake); the
   * connection counts against `connectionsMax` (closed at once above it).
   */
  #serveHttp1(socket: net.Socket, info: ConnInfo): void {
    if (this.#draining !== null || this.#connections() >= this.#connectionsMax) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const conn = new ClientConn(socket, {
      clock: this.#clock,
      headerBytesMax: this.#headerBytesMax,
      headersTimeoutMs: this.#headersTimeoutMs,
      requestTimeoutMs: this.#requestTimeoutMs,
      keepAliveTimeoutMs: this.#keepAliveTimeoutMs,
      onRequest: info === PLAIN_CONN
        ? this.#onPlainRequest
        : (req, res) => this.dispatch(req, res, info),
      onUpgrade: (req, s, head) => forwardUpgrade(this.#upgradeContext, req, s, head, info),
      onRefused: (req, status, bytes) => this.#refused(req, status, bytes, info, Date.now(), 0),
      onHeadRefused: (r) => {
        const req: ClientRequest = {
          method: r.method,
          url: r.url,
          rawHeaders: [],
          remoteAddress: socket.remoteAddress ?? "",
          ends: socket,
          body: null,
        };
        this.#refused(req, r.status, r.bodyBytes, info, r.startedMs, r.durationMs);
      },
    });
    this.#clients.add(conn);
    socket.once("close", () => this.#clients.delete(conn));
  }

  /** The record of a request a frontend answered itself (with observers). */
  #refused(
    req: ClientRequest,
    status: number,
    bytes: number,
    conn: ConnInfo,
    startedMs: number,
    durationMs: number,
  ): void {
    const observers = this.#observers;
    if (observers === null) return;
    const start = { observers, member: this.#member, req, conn, startedMs };
    recordRefused({ ...start, requestId: this.#requestIds.ids.next() }, status, bytes, durationMs);
  }

  /** What an upgrade needs; built once. */
  readonly #upgradeContext: UpgradeContext = {
    pool: null as unknown as UpstreamPool,
    connectTimeoutMs: 0,
    retriesMax: 0,
    idleTimeoutMs: 0,
    tunnels: this.#clientTunnels,
    route: (host, url, conn) => this.#route(host, url, conn),
    requestId: (own, req) => this.#requestIdOf(own, req),
    log: (line) => this.#log(line),
    observers: null,
    member: "",
    chainOf,
  };

  /** The client's own sane id when its source is trusted (request_id.ts), else a new one. */
  #requestIdOf(
    own: string | undefined,
    req: Pick<ClientRequest, "remoteAddress" | "ends">,
  ): string {
    return this.#requestIds.idOf(own, req.remoteAddress, req.ends?.proxiedBy);
  }

  #route(host: string | undefined, url: string, conn: ConnInfo): PathRoute | PlainAnswer {
    return routeOrAnswer(this.#routes.table, host, url, conn, this.#https?.bound ?? null);
  }

  #onPlainRequest = (req: ClientRequest, res: DispatchSink): void => {
    this.dispatch(req, res, PLAIN_CONN);
  };

  /**
   * Answers one client request, from any frontend (HTTP/1.1 plain or over TLS, HTTP/2): routes
   * it by the current table, runs the route's middlewares (middleware/pipeline.ts) and forwards
   * it (retries included), or answers 404/503/413 itself. `conn` says how the client connected
   * (`X-Forwarded-Proto`). With observers, every request ends in one `RequestRecord`.
   */
  dispatch(req: ClientRequest, sink: DispatchSink, conn: ConnInfo): void {
    const head = readRequestHead(req, conn.secure);
    const requestId = this.#requestIdOf(head.requestId, req);
    let res: DispatchSink = sink;
    let rec: RecordingSink | RequestMeter | null = null;
    const observers = this.#observers;
    if (observers !== null) {
      const counter = this.#meterFor;
      if (counter !== null && sink.meter !== undefined) {
        rec = sink.meter = new RequestMeter(counter, req);
      } else {
        res = rec = new RecordingSink(sink, {
          observers,
          member: this.#member,
          req,
          conn,
          startedMs: Date.now(),
          requestId,
        });
      }
    }
    const acme = this.#opts.acmeHttp01;
    if (acme && !conn.secure && answeredAcme(req, res, acme, this.#log)) return;
    const target = normalizeTarget(req.url);
    const badHost = head.host !== undefined && !saneHost(head.host);
    if ("refused" in target || badHost) {
      rec?.routed(null, null, null);
      req.body?.resume();
      const why = badHost ? "malformed Host header" : (target as { refused: string }).refused;
      return sendPlain(res, 400, `bad request: ${why}`, ["x-request-id", requestId]);
    }
    const url = target.url;
    const found = this.#route(head.host, url, conn);
    const answered = "status" in found;
    const hsts = conn.secure ? (answered ? found.route : found.svc.route)?.hsts : null;
    if (hsts) res = withHstsSink(res, hsts);
    if (answered) {
      rec?.routed(found.path?.svc.service ?? null, found.path?.name ?? null, null);
      req.body?.resume();
      const { status, text } = found;
      // gRPC errors for a gRPC request no route matches (12) or whose service has none (14).
      if (status === 404 || status === 503) {
        const raw = req.rawHeaders;
        const grpc = found.route ? wantsGrpcErrors(found.route, raw) : hasGrpcContentType(raw);
        if (grpc) return sendProxyError(res, true, status, text);
      }
      return sendPlain(res, status, text, [...found.headers ?? [], "x-request-id", requestId]);
    }
    const route = found.svc.route;
    const cl = head.contentLength;
    // Whether the request carries a body (RFC 9112 §6.3).
    const body = req.body;
    const headers = head.headers;
    headers.push("x-request-id", requestId);
    const x: Exchange = {
      req,
      res,
      conn,
      route,
      client: req.remoteAddress,
      host: head.host,
      prefix: found.prefix,
      url,
      headers,
      requestId,
      contentLength: cl,
      withBody: body !== null,
      tried: [],
      attempts: 0,
      staleRetried: false,
      bodyStarted: false,
      current: null,
    };
    rec?.routed(route.service, found.name, x);
    if (cl !== undefined && Number(cl) > this.#bodyBytesMax) {
      body?.resume();
      res.shouldKeepAlive = false;
      return answer(x, 413, `request body over ${this.#bodyBytesMax} bytes`);
    }
    // The body waits until a connection can take it (a retry must still have all of it).
    body?.pause();
    res.onAbort = () => x.current?.abort();
    // A client that half-closes while its request waits in an instance's queue gave up (a
    // browser's navigation, a timeout): it is withdrawn, never sent (HAProxy's abortonclose).
    if (sink.onClientEnd !== undefined) {
      sink.onClientEnd = () => x.current?.queued === true;
    }
    if (body !== null && cl === undefined) limitChunkedBody(body, x, this.#bodyBytesMax);
    const chain = this.#chainOf(route.settings);
    if (chain === EMPTY_CHAIN) return this.#forward(x);
    runRequestStages(chain, x, (a) => {
      if (x.res.destroyed || x.res.writableEnded) return; // the client left or got a 413
      if (a !== null) {
        x.req.body?.resume();
        return sendPlain(x.res, a.status, a.text, [...a.headers ?? [], "x-request-id", requestId]);
      }
      x.res = wrapResponse(chain, x, res);
      this.#forward(x);
    }, { log: this.#log, abort: () => res.destroy() });
  }

  /** Sends an exchange on to its route's instances. */
  #forward(x: Exchange): void {
    if (x.route.proto !== "http1") return forwardH2c(this.#h2c, x);
    this.#attempt(x, null);
  }

  #attempt(x: Exchange, lastError: string | null): void {
    const route = x.route;
    const sticky = route.balancer.policy === "sticky_cookie";
    const target = !sticky && x.tried.length === 0 && route.targets.length === 1 &&
        !this.#pool.isEjected(route.targets[0]!)
      ? route.targets[0]!
      : pickTarget(this.#pool, x, x.client);
    if (sticky && x.attempts === 0) ensureStickyCookie(x);
    if (target === null) {
      x.req.body?.resume();
      return answer(
        x,
        502,
        `bad gateway: service ${x.route.service}: ${lastError ?? "no instance to try"}`,
      );
    }
    x.tried.push(target);
    x.attempts++;
    const attempt = new Attempt(this.#attemptContext, x, target);
    x.current = attempt;
    attempt.start();
  }

  /** What an `Attempt` needs from the proxy; built once. */
  readonly #attemptContext: AttemptContext = {
    pool: null as unknown as UpstreamPool,
    clock: null as unknown as CoarseClock,
    connectTimeoutMs: 0,
    responseTimeoutMs: 0,
    streamIdleTimeoutMs: 0,
    failed: (x, target, why, outcome) => this.#attemptFailed(x, target, why, outcome),
  };

  /** An attempt failed before any of the response reached the client: retry or answer. */
  #attemptFailed(x: Exchange, target: Target, why: string, outcome: Failure): void {
    if (x.res.destroyed || x.res.writableEnded) return; // the client left or got a 413
    const lb = lbSettings(x.route);
    if (outcome === "response timeout") {
      x.req.body?.resume();
      return answer(
        x,
        504,
        `gateway timeout: service ${x.route.service}: instance ${target.id} sent no ` +
          `response within ${lb.timeoutMs ?? this.#responseTimeoutMs} ms`,
      );
    }
    if (outcome === "stale" && !x.staleRetried) {
      // Once, on a new connection to the same instance; it is not an instance failure.
      x.staleRetried = true;
      const attempt = new Attempt(this.#attemptContext, x, target, true);
      x.current = attempt;
      return attempt.start();
    }
    if (outcome !== "final" && x.attempts <= (lb.retries ?? this.#retriesMax)) {
      return this.#attempt(x, `instance ${target.id}: ${why}`);
    }
    x.req.body?.resume();
    answer(x, 502, `bad gateway: service ${x.route.service}: instance ${target.id}: ${why}`);
  }
}
