/**
 * Every message between the main thread and a DNS worker thread (plain data: structured clone).
 *
 * main → worker: `init` (once, first), `zone` (the whole zone: at start and after a rebuild or a
 * `resync`), `delta` (one change; `from` is the version the worker must hold, else it asks for
 * `resync`), `forwarded` (the answer to a relayed query), `recursion` (a reload changed the
 * recursors: drop relayed answers kept, then relay other names or, with none, refuse them), `drain` (stop taking queries,
 * finish those in flight up to `timeoutMs`, close, then `closed`), `metrics` (answered with
 * `counts`: the queries answered by rcode and type, dns_metrics.ts).
 *
 * worker → main: `listening` (sockets bound; `udp` says which path serves UDP), `resync` (a
 * version gap: send the whole zone), `forward` (a query outside the zone, for the main thread's
 * Forwarder and its cache), `counts` (the answer to `metrics`), `closed`, `failed` (a start error, one line; the worker then exits).
 *
 * @module
 */
import type { ZoneOptions } from "../zone.ts";
import type { ZoneDelta } from "../zone_delta.ts";

/** How a worker serves UDP: its own SO_REUSEPORT socket (FFI), node:dgram alone, or not. */
export type UdpPath = "ffi" | "dgram" | "none";

export interface InitMessage {
  type: "init";
  /** Which worker this is (0-based), for log lines. */
  index: number;
  host: string;
  /** The port to bind (0: any; the pool then binds the others to the one worker 0 got). */
  port: number;
  /**
   * "ffi": an SO_REUSEPORT socket through FFI (falls back to "dgram" when FFI is missing and
   * `dgramFallback`, else to "none"); "dgram": node:dgram (one thread only); "none": TCP only.
   */
  udp: "ffi" | "dgram" | "none";
  /** Whether this worker takes UDP with node:dgram when FFI is not available. */
  dgramFallback: boolean;
  zone: Omit<ZoneOptions, "visible">;
  /** Recursors are configured: other names are relayed to the main thread (RA set). */
  recursion: boolean;
  /** Relayed queries awaiting answers at once; more get SERVFAIL. */
  forwardInflightMax: number;
  /**
   * The FFI UDP socket an earlier worker of this slot opened (`listening`'s `udpFd`): serve it
   * instead of opening one. The pool holds it: a worker that ends never closes it.
   */
  udpFd?: number;
}

export interface ZoneMessage {
  type: "zone";
  delta: ZoneDelta;
  /** The TTLs the zone answers with, when they may differ from init's (a reload changed them). */
  ttls?: { ttl: number; serviceTtl: ReadonlyMap<string, number> };
}

export interface RecursionMessage {
  type: "recursion";
  /** Whether other names are relayed (recursors configured); false: REFUSED. */
  on: boolean;
}

export interface DeltaMessage {
  type: "delta";
  /** The version the delta applies to (the previous one sent). */
  from: number;
  delta: ZoneDelta;
}

export interface ForwardedMessage {
  type: "forwarded";
  id: number;
  /** The upstream response with the query's id, or null (SERVFAIL). */
  response: Uint8Array | null;
}

export interface DrainMessage {
  type: "drain";
  timeoutMs: number;
}

/** Asks for the worker's query counts (dns_metrics.ts layout), answered with `counts`. */
export interface MetricsMessage {
  type: "metrics";
  id: number;
}

export type ToWorker =
  | InitMessage
  | MetricsMessage
  | ZoneMessage
  | DeltaMessage
  | ForwardedMessage
  | RecursionMessage
  | DrainMessage;

export interface ListeningMessage {
  type: "listening";
  port: number;
  udp: UdpPath;
  /** Why UDP is not on the FFI path (when asked for), for one log line. */
  why?: string;
  /** The FFI UDP socket's fd, from now on the pool's to keep (for a restart) and to close. */
  udpFd?: number;
}

export interface ForwardMessage {
  type: "forward";
  id: number;
  query: Uint8Array;
}

export type FromWorker =
  | ListeningMessage
  | { type: "resync" }
  | ForwardMessage
  | { type: "counts"; id: number; counts: number[] }
  | { type: "closed"; cut?: number }
  | { type: "failed"; error: string };
