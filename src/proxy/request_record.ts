/**
 * One record per finished HTTP request (`RequestRecord`), handed to the proxy's observers (the
 * access log, the metrics): the proxy's own answers (404, 503, 413, 502, 401, …) included, and
 * requests whose client went away before the response ended (status 499, as nginx logs them).
 *
 * `RecordingSink` makes the record of a request: it sits between the proxy and the client's
 * sink, counts the body bytes sent and reports once when the response ends, is cut, or the
 * client leaves. The proxy makes one only when an observer wants records (the access log):
 * with the metrics alone, the client's sink itself tells a `RequestMeter` (request_meter.ts)
 * when the response is over, and no record is made.
 *
 * @module
 */
import type { ClientRequest, SinkMeter } from "./client_conn.ts";
import type { ConnInfo, DispatchSink } from "./conn_info.ts";

/** What the proxy knows about a finished request. */
export interface RequestRecord {
  /** When the request was dispatched, ms since the epoch. */
  readonly time: number;
  /** The member (node name) whose proxy served it. */
  readonly member: string;
  /** Client IP address. */
  readonly client: string;
  readonly method: string;
  /** The Host header (null: none). */
  readonly host: string | null;
  /** Path and query as the client sent them. */
  readonly path: string;
  /** `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`. */
  readonly proto: string;
  /** Status sent; 499: the client went away first. */
  readonly status: number;
  /** Request body bytes received. */
  readonly bytesIn: number;
  /** Response body bytes sent (an upgrade: every byte sent to the client). */
  readonly bytesOut: number;
  /** The routed service (null: no route). */
  readonly service: string | null;
  /** The route it matched: host and path prefix, `app.example.com/api` (`*` for any host). */
  readonly route: string | null;
  /** The instance of the last attempt (null: none was tried). */
  readonly instance: string | null;
  /** Instances tried (retries included). */
  readonly attempts: number;
  readonly durationMs: number;
  /** Over HTTPS: the TLS version (`TLSv1.3`) and the server name the client sent. */
  readonly tlsVersion: string | null;
  readonly sni: string | null;
  /** The X-Request-Id. */
  readonly requestId: string;
  /**
   * The client's request headers [name, value, …] (Referer and User-Agent for the combined
   * log format). Read them within `end`: the record is not to be kept with them.
   */
  readonly rawHeaders: readonly string[];
}

/** Told of every request the proxy routes and finishes. */
export interface RequestObserver {
  /** Once when a request is routed (service and route null: no route matched). */
  begin?(service: string | null, route?: string | null): void;
  /** Once when the request is finished. */
  end(r: RequestRecord): void;
}

/** What the metrics read of a finished request. */
export type MetricsRecord = Pick<
  RequestRecord,
  "service" | "route" | "status" | "bytesIn" | "bytesOut" | "attempts" | "durationMs"
>;

/**
 * Counts requests without records (the metrics, proxy_metrics.ts): told `begin` as an observer
 * is, then `end` with what a record would say. When no observer wants records, the proxy's
 * `RequestMeter` (request_meter.ts) hands it only those counts, else `end` has the record.
 */
export interface RequestCounter extends RequestObserver {
  begin(service: string | null, route?: string | null): void;
  end(r: MetricsRecord): void;
}

/** What the record reads from the exchange when it is made (set once the request is routed). */
export interface RecordSource {
  readonly attempts: number;
  /** Targets tried, in order. */
  readonly tried: readonly { readonly id: string }[];
}

/** What a request's record takes from when it arrived. */
export interface RequestStart {
  readonly observers: readonly RequestObserver[];
  readonly member: string;
  readonly req: ClientRequest;
  readonly conn: ConnInfo;
  /** ms since the epoch. */
  readonly startedMs: number;
  readonly requestId: string;
}

/** What a request's record takes from when it finished. */
interface RequestEnd {
  status: number;
  bytesIn: number;
  bytesOut: number;
  service: string | null;
  route: string | null;
  instance: string | null;
  attempts: number;
  /** From the start, on the monotonic clock (a wall-clock step moves neither way). */
  durationMs: number;
}

/** The request's protocol as a log names it. */
export function protoOf(req: ClientRequest, conn: ConnInfo): string {
  return req.proto ?? (conn.alpn === "h2" ? "HTTP/2" : "HTTP/1.1");
}

/** The record of a request (`s`) that finished (`e`), handed to every observer. */
function report(s: RequestStart, e: RequestEnd): void {
  const { req, conn } = s;
  notifyEnd(s.observers, {
    time: s.startedMs,
    member: s.member,
    client: req.remoteAddress,
    method: req.method,
    host: hostOf(req.rawHeaders),
    path: req.url,
    proto: protoOf(req, conn),
    status: e.status,
    bytesIn: e.bytesIn,
    bytesOut: e.bytesOut,
    service: e.service,
    route: e.route,
    instance: e.instance,
    attempts: e.attempts,
    durationMs: e.durationMs,
    tlsVersion: conn.secure ? conn.tlsVersion ?? null : null,
    sni: conn.secure ? conn.servername ?? null : null,
    requestId: s.requestId,
    rawHeaders: req.rawHeaders,
  });
}

/**
 * The record of a request the client connection answered itself: after reading its whole head
 * (a 400 for a missing or repeated Host, a 417), or before (400, 431, 408; method and path as
 * far as read, no headers): no route, nothing forwarded.
 */
export function recordRefused(
  start: RequestStart,
  status: number,
  bytesOut: number,
  durationMs = 0,
): void {
  notifyBegin(start.observers, null, null);
  report(start, {
    status,
    bytesIn: 0,
    bytesOut,
    service: null,
    route: null,
    instance: null,
    attempts: 0,
    durationMs,
  });
}

/** Calls every observer's `begin`. */
function notifyBegin(
  observers: readonly RequestObserver[],
  service: string | null,
  route: string | null,
): void {
  for (const o of observers) o.begin?.(service, route);
}

/** Hands `r` to every observer; one that throws does not keep it from the others. */
export function notifyEnd(observers: readonly RequestObserver[], r: RequestRecord): void {
  for (const o of observers) {
    try {
      o.end(r);
    } catch {
      // An observer's bug must not cost the request or the other observers.
    }
  }
}

/** The first Host header (HTTP/2: `:authority`, which the frontend hands on as `host`). */
function hostOf(raw: readonly string[]): string | null {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === "host") return raw[i + 1]!;
  }
  return null;
}

/**
 * Between the proxy and a client's sink while observers want records: counts body bytes out
 * and ends the record once (response ended, cut, or the client gone: 499). A client sink with
 * a `meter` field takes this as its meter: the status of a response the frontend ends or cuts
 * itself (not through this wrapper) is then the one a `RequestMeter` gets, so that the metrics
 * are the same with or without an access log.
 */
export class RecordingSink implements DispatchSink, SinkMeter {
  readonly #inner: DispatchSink;
  readonly #start: RequestStart;
  #service: string | null = null;
  #route: string | null = null;
  #source: RecordSource | null = null;
  #status = 0;
  #bytesOut = 0;
  /** HEAD, 204, 304, 1xx: the frontends send no body, so none is counted. */
  #noBody = false;
  readonly #mono0 = performance.now();
  #done = false;
  #begun = false;
  #outerAbort: (() => void) | null = null;
  declare writeTrailers?: (headers: readonly string[]) => void;

  constructor(inner: DispatchSink, start: RequestStart) {
    this.#inner = inner;
    this.#start = start;
    if (inner.writeTrailers !== undefined) {
      this.writeTrailers = (headers) => inner.writeTrailers!(headers);
    }
    if (inner.meter !== undefined) inner.meter = this;
    inner.onAbort = () => {
      const fn = this.#outerAbort;
      this.#outerAbort = null;
      // Told of an abort while the client's side is still open: the frontend answers the
      // request itself (HTTP/2's idle request body: 408, h2_frontend.ts); else the client left.
      this.#finish(inner.destroyed ? 499 : 408);
      fn?.();
    };
  }

  /** The request is routed (`service` null: no route): observers' `begin`. */
  routed(service: string | null, route: string | null, source: RecordSource | null): void {
    this.#service = service;
    this.#route = route;
    this.#source = source;
    this.#begun = true;
    notifyBegin(this.#start.observers, service, route);
  }

  get destroyed(): boolean {
    return this.#inner.destroyed;
  }
  get headersSent(): boolean {
    return this.#inner.headersSent;
  }
  get writableEnded(): boolean {
    return this.#inner.writableEnded;
  }
  get shouldKeepAlive(): boolean {
    return this.#inner.shouldKeepAlive;
  }
  set shouldKeepAlive(v: boolean) {
    this.#inner.shouldKeepAlive = v;
  }
  get forwarded(): boolean {
    return this.#inner.forwarded ?? false;
  }
  set forwarded(v: boolean) {
    this.#inner.forwarded = v;
  }
  get onAbort(): (() => void) | null {
    return this.#outerAbort;
  }
  set onAbort(fn: (() => void) | null) {
    this.#outerAbort = fn;
  }

  writeHead(status: number, reason: string, headers: readonly string[]): void {
    this.#inner.writeHead(status, reason, headers);
    this.#status = status;
    this.#noBody = this.#start.req.method === "HEAD" || status === 204 || status === 304 ||
      status < 200;
  }

  write(chunk: Uint8Array): boolean {
    if (!this.#noBody) this.#bytesOut += chunk.length;
    return this.#inner.write(chunk);
  }

  end(chunk?: Uint8Array): void {
    if (chunk !== undefined && !this.#noBody) this.#bytesOut += chunk.length;
    this.#inner.end(chunk);
    this.#finish(this.#status);
  }

  destroy(): void {
    this.#inner.destroy();
    // Cut by the proxy: what the client saw began with the status sent, if any.
    this.#finish(this.#status === 0 ? 502 : this.#status);
  }

  once(event: "drain", fn: () => void): void {
    this.#inner.once(event, fn);
  }

  /** Told by the client's sink that the response is over (its status; the bytes counted here). */
  done(status: number): void {
    this.#finish(status);
  }

  #finish(status: number): void {
    if (this.#done) return;
    this.#done = true;
    if (!this.#begun) this.routed(null, null, null); // answered before routing (ACME)
    const tried = this.#source?.tried;
    report(this.#start, {
      status,
      bytesIn: this.#start.req.body?.bytes ?? 0,
      bytesOut: this.#bytesOut,
      service: this.#service,
      route: this.#route,
      instance: tried === undefined || tried.length === 0 ? null : tried[tried.length - 1]!.id,
      attempts: this.#source?.attempts ?? 0,
      durationMs: performance.now() - this.#mono0,
    });
  }
}

/**
 * The record of an Upgrade request (WebSocket), made when its client connection closes: the
 * status the proxy or the instance answered (101 for a tunnel), the bytes either way.
 */
export class UpgradeRecorder {
  readonly #start: RequestStart;
  readonly #socket: { readonly bytesRead: number; readonly bytesWritten: number };
  readonly #in0: number;
  readonly #out0: number;
  #service: string | null = null;
  #route: string | null = null;
  #begun = false;
  #tried: string | null = null;
  #attempts = 0;
  readonly #mono0 = performance.now();
  /** The status answered (0: none yet; the client left first: 499). */
  status = 0;

  /** `headBytes`: bytes the connection read after the request head before the upgrade. */
  constructor(
    socket: {
      readonly bytesRead: number;
      readonly bytesWritten: number;
      once(event: "close", fn: () => void): unknown;
    },
    start: RequestStart,
    headBytes: number,
  ) {
    this.#start = start;
    this.#socket = socket;
    this.#in0 = socket.bytesRead - headBytes;
    this.#out0 = socket.bytesWritten;
    socket.once("close", () => this.#finish());
  }

  /** Routed (`service` null: no route): observers' `begin`. */
  routed(service: string | null, route: string | null): void {
    this.#service = service;
    this.#route = route;
    this.#begun = true;
    notifyBegin(this.#start.observers, service, route);
  }

  /** An instance was tried. */
  tried(instance: string): void {
    this.#tried = instance;
    this.#attempts++;
  }

  #finish(): void {
    if (!this.#begun) this.routed(null, null);
    report(this.#start, {
      status: this.status === 0 ? 499 : this.status,
      bytesIn: this.#socket.bytesRead - this.#in0,
      bytesOut: this.#socket.bytesWritten - this.#out0,
      service: this.#service,
      route: this.#route,
      instance: this.#tried,
      attempts: this.#attempts,
      durationMs: performance.now() - this.#mono0,
    });
  }
}
