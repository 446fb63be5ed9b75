/**
 * The proxy part of the composition root (agent.ts): the edge certificates with their keys
 * opened, the ACME challenge answers, and the proxy itself, on the main thread
 * (`--proxy-workers 1`) or on N worker threads sharing its ports (README "Proxy workers").
 *
 * @module
 */
import { threadsText } from "./agent_dns.ts";
import type { Config } from "./config.ts";
import { formatHostPort } from "./lib/host_port.ts";
import { type ClusterKeyBox, openEdgeKey } from "./pki/mod.ts";
import {
  HttpProxy,
  requestIdSources,
  type ReservedListener,
  type RoutesReport,
  type RouteTable,
  ServedCerts,
  trustedSources,
} from "./proxy/mod.ts";
import { ProxyWorkers, type WorkersMetrics } from "./proxy/workers/proxy_workers.ts";
import { ProxyMetrics } from "./proxy/proxy_metrics.ts";
import { openAccessLog } from "./proxy/access_log.ts";
import { AcmeAnswers, tlsAlpnChallengeCert, tlsAlpnHook } from "./acme/mod.ts";
import type { Store } from "./store/mod.ts";

/** What the agent uses of the proxy, on one thread or on workers. */
export interface ProxyFront {
  /** The route table (ACME's names). */
  readonly table: RouteTable;
  /** For `/v1/berth/routes`. */
  report(): RoutesReport | Promise<RoutesReport>;
  /** The request metrics (of every worker, summed), for `/metrics`. */
  metrics(): Promise<WorkersMetrics>;
}

export interface StartProxyOptions {
  config: Config;
  store: Store;
  keyBox: ClusterKeyBox;
  /** The agent's own listeners (no TCP route may take their ports). */
  reserved: ReservedListener[];
  log: (line: string) => void;
  /** Registers what stops a started part (the agent runs them in reverse). */
  onStop: (stop: () => Promise<void> | void) => void;
  /** Registers the proxy's drain (SIGTERM): resolves with the requests it cut. */
  onDrain: (drain: (timeoutMs: number) => Promise<number>) => void;
  /** Registers what SIGUSR1 does: the access log file opened again (after a rotation). */
  onReopen: (reopen: () => Promise<void>) => void;
}

/**
 * Whether the proxy will run (a proxy listener is configured) and so open `--access-log`.
 */
export function proxyConfigured(config: Config): boolean {
  return config.proxyHttp !== null || config.proxyHttps !== null;
}

/**
 * Opens and closes the `--access-log` file (created when missing) before anything else starts:
 * a path that cannot be opened stops the agent with one line before it bootstraps or joins a
 * cluster (a member that joined and then exited would count as a voter that never answers).
 * Throws `access log PATH: why`.
 */
export async function checkAccessLog(config: Config): Promise<void> {
  const target = config.accessLog;
  if (target === null || target === "stdout" || !proxyConfigured(config)) return;
  await (await openAccessLog(target, { format: config.accessLogFormat, log: () => {} })).close();
}

/** Starts the proxy as configured; throws (one line) when a listener cannot be bound. */
export async function startProxy(o: StartProxyOptions): Promise<ProxyFront> {
  const { config, store, keyBox, log } = o;
  // Edge certificates from the store, keys opened with the cluster key (none served while
  // this member has no cluster key; all re-read once it arrives).
  const served = new ServedCerts({
    edgeCerts: () => store.edgeCerts(),
    openKey: (c) => openEdgeKey(keyBox, c),
    keysReady: () => keyBox.key() !== undefined,
    log,
  });
  const accessLog = config.accessLog === null
    ? null
    : { target: config.accessLog, format: config.accessLogFormat };
  if (config.proxyWorkers >= 2) {
    // Each worker opens the file itself (workers/proxy_worker.ts); checkAccessLog made sure at
    // start that it can be opened.
    const workers = new ProxyWorkers({
      count: config.proxyWorkers,
      store,
      config: {
        listen: config.proxyHttp,
        https: config.proxyHttps,
        h2: config.proxyH2,
        edgeDomain: config.edgeDomain,
        reserved: o.reserved,
        proxyProtocolFrom: config.proxyProtocolFrom,
        requestIdFrom: config.requestIdFrom,
        member: config.node,
        accessLog,
      },
      certs: () => served.certs(),
      log,
      metrics: new ProxyMetrics(), // the main thread's UDP routes
    });
    await workers.start();
    o.onStop(() => workers.close());
    if (accessLog !== null) o.onReopen(() => workers.reopenAccessLog());
    o.onDrain((ms) => workers.drain(ms));
    keyBox.whenSet(() => workers.reloadCertificates());
    return workers;
  }
  // ACME challenges are answered by every member from the replicated tables (README "ACME").
  const acmeAnswers = new AcmeAnswers({ store, tlsAlpnCert: tlsAlpnChallengeCert, log });
  acmeAnswers.start();
  o.onStop(() => acmeAnswers.close());
  const metrics = new ProxyMetrics();
  const accessLogFile = accessLog === null
    ? null
    : await openAccessLog(accessLog.target, { ...accessLog, log });
  if (accessLogFile !== null) {
    o.onStop(() => accessLogFile.close()); // after the proxy's own stop (stops run in reverse)
    o.onReopen(() => accessLogFile.reopen());
  }
  const proxy = new HttpProxy({
    source: store,
    listen: config.proxyHttp,
    tls: config.proxyHttps === null ? undefined : {
      listen: config.proxyHttps,
      certs: () => served.certs(),
      acmeTlsAlpn: tlsAlpnHook(acmeAnswers, log),
    },
    h2: config.proxyH2,
    acmeHttp01: (token) => acmeAnswers.http01(token),
    edgeDomain: config.edgeDomain,
    log,
    reserved: o.reserved,
    proxyProtocolFrom: trustedSources(config.proxyProtocolFrom),
    requestIdFrom: requestIdSources(config.requestIdFrom),
    events: metrics,
    tcpObserver: metrics,
    udpObserver: metrics,
    requestMetrics: metrics,
    observers: accessLogFile === null ? [] : [accessLogFile],
    member: config.node,
  });
  metrics.read({ clientConnections: () => proxy.clientConnections });
  await proxy.start();
  o.onStop(() => proxy.close());
  o.onDrain((ms) => proxy.drain(ms));
  keyBox.whenSet(() => proxy.reloadCertificates());
  return {
    get table() {
      return proxy.table;
    },
    report: () => proxy.report(),
    metrics: () =>
      Promise.resolve({
        snapshot: metrics.snapshot(),
        missing: [],
        accessLogDropped: accessLogFile?.dropped ?? null,
      }),
  };
}

/** The proxy's listeners and threads, for the agent's "up" line. */
export function proxyNote(
  config: Pick<Config, "proxyHttp" | "proxyHttps" | "proxyWorkers">,
): string {
  const { proxyHttp, proxyHttps } = config;
  const threads = ` (${threadsText(Math.max(1, config.proxyWorkers))})`;
  return `proxy ${proxyHttp === null ? "off" : formatHostPort(proxyHttp)}${
    proxyHttp === null ? "" : threads
  }, https ${proxyHttps === null ? "off" : formatHostPort(proxyHttps)}${
    proxyHttp === null && proxyHttps !== null ? threads : ""
  }`;
}
