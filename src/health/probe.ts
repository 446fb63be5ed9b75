/**
 * One run of one check: an HTTP GET, a TCP connect, a gRPC health call (grpc_health.ts) or a UDP
 * datagram (udp_check.ts) against an instance, bounded by a timeout,
 * turned into a status and a short output line. The output is the same text for the same kind of
 * outcome (no timings, no response body), so the checker can compare it with the stored output
 * and propose only on a real change.
 *
 * The default HTTP client is `node:http`, not `fetch`: Deno's fetch refuses the browsers' "bad
 * ports" (5060, 6000, 6667, 10080, …), which are ordinary service ports on a Docker host.
 * Redirects are not followed (a 3xx is critical), keep-alive is off (one connection per run, as
 * Consul does), and the response body is never read: the socket is destroyed once the status line
 * and headers have arrived.
 *
 * @module
 */
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { CheckDefinition, CheckStatus, RegisteredCheck } from "../store/mod.ts";
import {
  type GrpcHealthAnswer,
  type GrpcHealthCall,
  nodeGrpcHealthCall,
  SERVING,
  SERVING_STATUS_NAMES,
} from "./grpc_health.ts";
import { connectWithLocalHeader, proxiedHttpGet, proxyVersionOfMeta } from "./proxy_local.ts";
import {
  defaultUdpProber,
  payloadOf,
  udpAddressOf,
  udpAnswerResult,
  type UdpProber,
  udpSilenceResult,
  type UdpTarget,
} from "./udp_check.ts";

/** Longest output line proposed; longer lines are cut with an ellipsis. */
export const OUTPUT_CHARS_MAX = 200;
/** Largest response header block accepted from a checked service. */
export const HEADER_BYTES_MAX = 16 * 1024;
/** Longest reason phrase kept from a response status line. */
const REASON_CHARS_MAX = 40;

/**
 * Where a check goes: the instance's address and port plus what to do there; `proxyProtocol`:
 * the connection starts with a PROXY protocol LOCAL header of that version (proxy_local.ts).
 */
export type ProbeTarget =
  & (
    | {
      kind: "http";
      address: string;
      port: number;
      path: string;
      /** The URL as registered (a registered check's): shown in the output, `https:` uses TLS. */
      url?: string;
    }
    | { kind: "tcp"; address: string; port: number }
    | {
      kind: "grpc";
      address: string;
      port: number;
      /** The gRPC service asked about; absent: the whole server (a registered check's `/service`). */
      service?: string;
    }
    | ({ kind: "udp" } & UdpTarget)
  )
  & {
    proxyProtocol?: 1 | 2;
    /** The definition's `failClosed`: each run is critical with this text, nothing is sent. */
    failClosed?: string;
  };

export interface ProbeResult {
  status: CheckStatus;
  output: string;
}

/** Sends GET `path` to `address:port`; resolves with the status line once headers arrive. */
export type HttpGet = (
  target: { address: string; port: number; path: string; url?: string; proxyProtocol?: 1 | 2 },
  signal: AbortSignal,
) => Promise<{ statusCode: number; statusText: string }>;

/**
 * Opens a TCP connection to `address:port` (first writing a PROXY LOCAL header of
 * `proxyProtocol`) and closes it at once; rejects on failure.
 */
export type TcpConnect = (
  address: string,
  port: number,
  signal: AbortSignal,
  proxyProtocol?: 1 | 2,
) => Promise<void>;

export interface ProbeOptions {
  timeoutMs: number;
  /** Aborts the run (the checker stopping or the definition changing). */
  signal?: AbortSignal;
  httpGet?: HttpGet;
  tcpConnect?: TcpConnect;
  grpcHealth?: GrpcHealthCall;
  /** How UDP checks send (default: FFI with ICMP refusals where it runs, else node:dgram). */
  udp?: UdpProber;
  timers?: Timers;
}

/** The timer functions the health code uses; injectable so tests can drive time. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as number),
};

/**
 * The target a check definition describes for an instance, or null when the definition names
 * no HTTP path, gRPC, TCP nor UDP (nothing to run). HTTP wins over gRPC, gRPC over TCP, TCP over
 * UDP. An instance with `berth.proxy-protocol` in its meta is checked with that PROXY
 * protocol's LOCAL header (not a UDP check: the proxy sends no header on datagrams). A
 * definition's `failClosed` goes with the target: its runs fail at once with that text.
 */
export function targetOf(
  instance: { address: string; port: number; meta?: Readonly<Record<string, string>> },
  check: CheckDefinition,
): ProbeTarget | null {
  const { address, port } = instance;
  const v = proxyVersionOfMeta(instance.meta);
  const pp = {
    ...(v === undefined ? {} : { proxyProtocol: v }),
    ...(check.failClosed === undefined ? {} : { failClosed: check.failClosed }),
  };
  if (check.http !== undefined && check.http !== "") {
    const path = check.http.startsWith("/") ? check.http : `/${check.http}`;
    return { kind: "http", address, port, path, ...pp };
  }
  if (check.grpc === true) return { kind: "grpc", address, port, ...pp };
  if (check.tcp === true) return { kind: "tcp", address, port, ...pp };
  if (check.udp !== undefined) {
    const expect = check.udpExpect === undefined ? {} : { expect: check.udpExpect };
    const closed = check.failClosed === undefined ? {} : { failClosed: check.failClosed };
    return { kind: "udp", address, port, payload: check.udp, ...expect, ...closed };
  }
  return null;
}

/**
 * The target of a registered check (src/store/checks.ts): an HTTP check's URL, a TCP or UDP
 * check's `host:port` (UDP: an empty datagram, as Consul) or a gRPC check's `host:port[/service]`, requested exactly as given, whatever the service's own address and port; null
 * for kinds that are not probed (TTL, reported).
 */
export function targetOfRegistered(c: RegisteredCheck): ProbeTarget | null {
  if (c.kind === "http") {
    const u = new URL(c.target);
    const address = u.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = u.port !== "" ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
    return { kind: "http", address, port, path: `${u.pathname}${u.search}`, url: c.target };
  }
  if (c.kind === "grpc") {
    const slash = c.target.indexOf("/");
    const hostPort = slash < 0 ? c.target : c.target.slice(0, slash);
    const at = hostPort.lastIndexOf(":");
    const address = hostPort.slice(0, at).replace(/^\[(.*)\]$/, "$1");
    const port = Number(hostPort.slice(at + 1));
    return slash < 0
      ? { kind: "grpc", address, port }
      : { kind: "grpc", address, port, service: c.target.slice(slash + 1) };
  }
  if (c.kind === "tcp" || c.kind === "udp") {
    const at = c.target.lastIndexOf(":");
    const address = c.target.slice(0, at).replace(/^\[(.*)\]$/, "$1");
    const port = Number(c.target.slice(at + 1));
    return c.kind === "tcp"
      ? { kind: "tcp", address, port }
      : { kind: "udp", address, port, payload: "" };
  }
  return null;
}

/** `10.0.0.5:80`, `[fd00::5]:80`. */
export function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * The fixed start of a target's output line: `HTTP GET /health`, `TCP connect 10.0.0.5:80`,
 * `gRPC health 10.0.0.5:80` or `UDP 10.0.0.5:53`.
 */
export function describeTarget(t: ProbeTarget): string {
  if (t.kind === "udp") return `UDP ${hostPort(t.address, t.port)}`;
  if (t.kind === "tcp") return `TCP connect ${hostPort(t.address, t.port)}`;
  if (t.kind === "grpc") {
    return `gRPC health ${hostPort(t.address, t.port)}${t.service ? `/${t.service}` : ""}`;
  }
  return `HTTP GET ${t.url ?? t.path}`;
}

/** Runs one probe. Never rejects: every failure becomes a critical result with a reason. */
export async function probe(target: ProbeTarget, options: ProbeOptions): Promise<ProbeResult> {
  if (target.failClosed !== undefined) {
    return { status: "critical", output: clip(`${describeTarget(target)}: ${target.failClosed}`) };
  }
  const timers = options.timers ?? REAL_TIMERS;
  const ac = new AbortController();
  let timedOut = false;
  const onAbort = () => ac.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) ac.abort();
  const timer = timers.setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, options.timeoutMs);
  const what = describeTarget(target);
  const udp = target.kind === "udp" ? options.udp ?? defaultUdpProber() : null;
  /** The UDP datagram went out before the timeout: silence can pass (not if the lookup ate it). */
  let sent = false;
  try {
    if (target.kind === "udp") {
      const to = { address: await udpAddressOf(target.address), port: target.port };
      ac.signal.throwIfAborted();
      sent = true; // the exchange sends at once with a live signal
      const answer = await udp!.exchange(to, payloadOf(target), ac.signal);
      return clipped(udpAnswerResult(target, what, answer));
    }
    if (target.kind === "http") {
      const get = options.httpGet ?? nodeHttpGet;
      const { statusCode, statusText } = await get(target, ac.signal);
      const reason = (statusText || http.STATUS_CODES[statusCode] || "").slice(0, REASON_CHARS_MAX);
      return {
        status: httpStatus(statusCode),
        output: clip(`${what}: ${statusCode}${reason === "" ? "" : ` ${reason}`}`),
      };
    }
    if (target.kind === "grpc") {
      const answer = await (options.grpcHealth ?? nodeGrpcHealthCall)(target, ac.signal);
      return { status: grpcHealthStatus(answer), output: clip(`${what}: ${grpcText(answer)}`) };
    }
    await (options.tcpConnect ?? nodeTcpConnect)(
      target.address,
      target.port,
      ac.signal,
      target.proxyProtocol,
    );
    return { status: "passing", output: clip(`${what}: success`) };
  } catch (e) {
    if (target.kind === "udp" && timedOut) {
      if (sent) {
        return clipped(udpSilenceResult(target, what, options.timeoutMs, udp!.seesRefusals));
      }
      // Nothing went out, so silence says nothing: fails as Consul's does when it cannot send.
      const why = `host lookup timed out after ${options.timeoutMs}ms, nothing sent`;
      return { status: "critical", output: clip(`${what}: ${why}`) };
    }
    const why = timedOut
      ? `timed out after ${options.timeoutMs}ms`
      : ac.signal.aborted
      ? "stopped"
      : describeError(e);
    return { status: "critical", output: clip(`${what}: ${why}`) };
  } finally {
    timers.clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/** Consul's mapping: 2xx passes, 429 Too Many Requests warns, anything else fails. */
export function httpStatus(code: number): CheckStatus {
  if (code >= 200 && code <= 299) return "passing";
  if (code === 429) return "warning";
  return "critical";
}

/** SERVING with grpc-status 0 passes; anything else fails. */
export function grpcHealthStatus(a: GrpcHealthAnswer): CheckStatus {
  return a.kind === "status" && a.status === SERVING ? "passing" : "critical";
}

function grpcText(a: GrpcHealthAnswer): string {
  if (a.kind === "status") return SERVING_STATUS_NAMES[a.status] ?? `status ${a.status}`;
  return `grpc-status ${a.code}${a.message === "" ? "" : ` (${a.message})`}`;
}

const ERROR_CODES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  EPIPE: "connection reset",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  EADDRNOTAVAIL: "address not available",
  ETIMEDOUT: "timed out",
  ENOTFOUND: "cannot resolve host",
  EAI_AGAIN: "cannot resolve host",
  HPE_INVALID_CONSTANT: "not an HTTP response",
  HPE_HEADER_OVERFLOW: `response headers over ${HEADER_BYTES_MAX} bytes`,
};

/** A short, stable reason for a failed probe: `connection refused`, not a stack trace. */
export function describeError(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code in ERROR_CODES) return ERROR_CODES[code]!;
  const name = (e as { name?: unknown } | null)?.name;
  if (name === "ConnectionRefused") return "connection refused";
  if (name === "ConnectionReset") return "connection reset";
  const message = e instanceof Error ? e.message : String(e);
  return message.split("\n")[0]!.replace(/\s+\(os error \d+\)$/, "").toLowerCase() || "failed";
}

function clipped(r: ProbeResult): ProbeResult {
  return { status: r.status, output: clip(r.output) };
}

function clip(s: string): string {
  return s.length <= OUTPUT_CHARS_MAX ? s : `${s.slice(0, OUTPUT_CHARS_MAX - 1)}…`;
}

/**
 * The default HttpGet: one `node:http` request without keep-alive; the body is never read. With
 * a PROXY header to send first, proxy_local.ts's GET over a plain socket.
 */
const nodeHttpGet: HttpGet = (target, signal) =>
  target.proxyProtocol !== undefined && !target.url?.startsWith("https:")
    ? proxiedHttpGet(target, target.proxyProtocol, HEADER_BYTES_MAX, signal)
    : new Promise((resolve, reject) => {
      const client = target.url?.startsWith("https:") ? https : http;
      const req = client.request({
        host: target.address,
        port: target.port,
        path: target.path,
        method: "GET",
        agent: false,
        maxHeaderSize: HEADER_BYTES_MAX,
        headers: { "user-agent": "berth-health-check", accept: "*/*", connection: "close" },
      });
      const onAbort = () => req.destroy(new Error("aborted"));
      signal.addEventListener("abort", onAbort, { once: true });
      const done = () => signal.removeEventListener("abort", onAbort);
      req.on("response", (res) => {
        done();
        resolve({ statusCode: res.statusCode ?? 0, statusText: res.statusMessage ?? "" });
        res.destroy();
        req.destroy();
      });
      req.on("error", (e) => {
        done();
        reject(e);
      });
      if (signal.aborted) onAbort();
      req.end();
    });

/** The default TcpConnect: a `node:net` connection closed as soon as it is established. */
const nodeTcpConnect: TcpConnect = (address, port, signal, proxyProtocol) =>
  new Promise((resolve, reject) => {
    const socket = proxyProtocol === undefined
      ? net.connect({ host: address, port })
      : connectWithLocalHeader(address, port, proxyProtocol);
    const onAbort = () => socket.destroy(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => {
      signal.removeEventListener("abort", onAbort);
      // With a header: closed once it is written (`end`), not reset before it leaves.
      if (proxyProtocol === undefined) socket.destroy();
      else socket.end();
      resolve();
    });
    socket.once("error", (e) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(e);
    });
    if (signal.aborted) onAbort();
  });
