/**
 * A proxy worker's entry point (a Deno Worker started by ProxyWorkers, proxy_workers.ts): one
 * full HttpProxy (HTTP, HTTPS with HTTP/2, TCP routes) whose listeners bind with SO_REUSEPORT
 * beside the other workers', over a RouteReplica fed by the main thread's route messages. It
 * answers ACME challenges from its copy of the challenge rows and serves the certificates the
 * main thread sends. Ejections are reported to the main thread, which has every other worker
 * apply them. Its request metrics (ProxyMetrics) go to the main thread when it asks. Every
 * message is in protocol.ts.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { AcmeAnswers, tlsAlpnChallengeCert, tlsAlpnHook } from "../../acme/mod.ts";
import { errorText } from "../../lib/error_text.ts";
import type { HostPort } from "../../lib/host_port.ts";
import { AccessLog, FileSink, StdoutSink } from "../access_log.ts";
import { HttpProxy } from "../http_proxy.ts";
import { trustedSources } from "../proxy_protocol_in.ts";
import { requestIdSources } from "../request_id.ts";
import { ProxyMetrics } from "../proxy_metrics.ts";
import type { ServedCert } from "../sni_index.ts";
import type { ChallengeRow, FromProxyWorker, ToProxyWorker } from "./protocol.ts";
import { RouteReplica } from "./route_replica.ts";
import { workerLimits } from "./worker_limits.ts";
import { adoptRateBuckets } from "../middleware/rate_buckets.ts";
import { ConnSlots } from "../conn_slots.ts";

const post = (m: FromProxyWorker) => self.postMessage(m);
const log = (line: string) => post({ type: "log", line });

const replica = new RouteReplica();
let certs: ServedCert[] = [];
let proxy: HttpProxy | null = null;
let answers: AcmeAnswers | null = null;
/** This worker's request metrics; the main thread sums every worker's (`metrics`). */
const metrics = new ProxyMetrics();

/** The challenge rows the main thread sent, as the source AcmeAnswers reads. */
const challenges = {
  rows: [] as ChallengeRow[],
  listeners: new Set<(c: { tables: ReadonlySet<string> }) => void>(),
  acme: { challenges: () => challenges.rows },
  subscribe(fn: (c: { tables: ReadonlySet<string> }) => void): () => void {
    challenges.listeners.add(fn);
    return () => challenges.listeners.delete(fn);
  },
  set(rows: ChallengeRow[]): void {
    challenges.rows = rows;
    for (const fn of challenges.listeners) fn({ tables: new Set(["acme"]) });
  },
};

/**
 * This worker's access log (`--access-log`): each worker writes its own batches to the file,
 * opened O_APPEND, rather than shipping lines to the main thread. A batch is one write of whole
 * lines, which the kernel appends at the file's end as one piece, so workers' batches sit side
 * by side and never split a line; the main thread (Raft, the store) gets no extra work, and no
 * line is copied across threads. On stdout a batch is at most PIPE_BUF (4096) bytes, the size
 * a pipe writes atomically. Measured (scripts/access_log_ship_bench.ts, 2 workers × 300k lines,
 * 3 runs each, 2026-12-02 on a shared 2-core machine): the same lines/s either way within the
 * noise (157k–292k direct, 138k–203k shipped), every line whole both ways, and the main thread
 * spent 0 ms of CPU with direct writes against 200–240 ms (~0.4 µs a line) when it wrote the
 * shipped batches.
 */
let accessLog: AccessLog | null = null;

async function start(m: Extract<ToProxyWorker, { type: "start" }>): Promise<void> {
  const al = m.config.accessLog;
  if (al) {
    // A file that cannot be opened costs its lines, never this worker's share of the
    // requests: it serves with the lines dropped (counted) until a reopen opens it.
    let sink: FileSink | StdoutSink = new StdoutSink();
    if (al.target !== "stdout") {
      const lazy = await FileSink.openLazy(al.target);
      sink = lazy.sink;
      if (lazy.error !== null) {
        log(
          `proxy worker ${m.index}: ${lazy.error}; its lines are dropped until SIGUSR1 ` +
            `(or a retry each minute) opens it`,
        );
      }
    }
    accessLog = new AccessLog(sink, { format: al.format, log });
  }
  metrics.retentionMs = m.config.metricsRetentionMs ?? metrics.retentionMs;
  adoptRateBuckets(m.rateBuckets);
  replica.receive(m.routes);
  certs = m.certs;
  challenges.rows = m.challenges;
  const acme = answers = new AcmeAnswers({
    store: challenges,
    tlsAlpnCert: tlsAlpnChallengeCert,
    log,
  });
  acme.start();
  const c = m.config;
  const { handshakesMax, handshakesPerIpMax, ...limits } = workerLimits(m.workers);
  const p = proxy = new HttpProxy({
    ...limits,
    slots: new ConnSlots(m.connSlots, m.index),
    source: replica,
    listen: c.listen,
    tls: c.https === null ? undefined : {
      listen: c.https,
      handshakesMax,
      handshakesPerIpMax,
      certs: () => certs,
      acmeTlsAlpn: tlsAlpnHook(acme, log),
    },
    h2: c.h2,
    acmeHttp01: (token) => acme.http01(token),
    edgeDomain: c.edgeDomain,
    reserved: c.reserved,
    proxyProtocolFrom: trustedSources(c.proxyProtocolFrom ?? []),
    requestIdFrom: requestIdSources(c.requestIdFrom),
    reusePort: true,
    udpHost: null, // UDP routes are served on the main thread (udp_proxy.ts)
    log,
    routeLog: m.index === 0 ? log : () => {},
    onEject: (key, ms) => post({ type: "ejected", key, ms }),
    events: metrics,
    tcpObserver: metrics,
    requestMetrics: metrics,
    observers: accessLog === null ? [] : [accessLog],
    member: c.member,
  });
  metrics.read({ clientConnections: () => p.clientConnections });
  for (const e of m.ejections) p.eject(e.key, e.ms);
  try {
    await p.start();
  } catch (e) {
    post({ type: "failed", error: errorText(e) });
    return;
  }
  const report = p.report();
  const bound = (on: string | null, addr: () => HostPort) => on === null ? null : addr();
  post({
    type: "ready",
    listen: bound(report.listen, () => p.address),
    https: bound(report.https, () => p.httpsAddress),
  });
}

/** Stops the proxy (after draining it for `drainMs` when given) and says so. */
async function stop(drainMs: number | null): Promise<void> {
  const p = proxy;
  proxy = null;
  answers?.close();
  let cut = 0;
  if (p !== null) {
    if (drainMs !== null) cut = await p.drain(drainMs);
    else await p.close();
  }
  await accessLog?.close(); // the lines of the last requests first
  post({ type: "closed", cut });
}

async function handle(m: ToProxyWorker): Promise<void> {
  switch (m.type) {
    case "start":
      return await start(m);
    case "routes.full":
    case "routes.delta":
      if (replica.receive(m) === "resync") post({ type: "resync" });
      return;
    case "certs":
      certs = m.certs;
      proxy?.reloadCertificates();
      return;
    case "acme":
      return challenges.set(m.challenges);
    case "eject":
      return proxy?.eject(m.key, m.ms);
    case "report":
      return post({ type: "report", id: m.id, report: proxy?.report() ?? null });
    case "metrics":
      return post({
        type: "metrics",
        id: m.id,
        snapshot: metrics.snapshot(),
        accessLogDropped: accessLog?.dropped,
      });
    case "access-log.reopen": {
      let error: string | null = null;
      try {
        await accessLog?.reopen();
      } catch (e) {
        error = errorText(e);
      }
      return post({ type: "access-log.reopened", id: m.id, error });
    }
    case "drain":
      return await stop(m.timeoutMs);
    case "close":
      return await stop(null);
  }
}

self.onmessage = (e: MessageEvent<ToProxyWorker>) => {
  handle(e.data).catch((err) => log(`proxy worker: ${e.data.type}: ${errorText(err)}`));
};
